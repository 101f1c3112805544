package bi_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/infrawatch/infrawatch/internal/bi"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
)

// world is a migrated database with two tenants, alpha and bravo, with data in every table a BI view
// reads, and the BI service. Every name of a tenant's data starts with its slug, and every value it
// measures is its marker (alpha 42, bravo 1042), so that a row of the other tenant is easy to spot.
type world struct {
	d     *dbtest.DB
	svc   *bi.Service
	alpha tenantData
	bravo tenantData
}

type tenantData struct {
	id     uuid.UUID
	slug   string
	marker float64
	// seriesID is one of its series, checkID one of its checks.
	seriesID, checkID int64
}

// actor is who the tests act as, for the audit log.
var actor = bi.Actor{Kind: "system", ID: "bi-test"}

func newWorld(t *testing.T, flavor db.Flavor) *world {
	t.Helper()
	d := dbtest.New(t, flavor)
	svc, err := bi.NewService(bi.Config{PublicDSN: publicDSN(t, d)}, d.System())
	if err != nil {
		t.Fatal(err)
	}
	w := &world{d: d, svc: svc}
	w.alpha = seed(t, d, "alpha", 42)
	w.bravo = seed(t, d, "bravo", 1042)
	return w
}

// publicDSN is the test database's address without its user, as an operator would give it.
func publicDSN(t *testing.T, d *dbtest.DB) string {
	t.Helper()
	u, err := url.Parse(d.URL)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("postgres://%s%s?sslmode=disable", u.Host, u.Path)
}

// seed writes a tenant with two hosts, three series each (cpu, disk, memory) with a sample every 5
// minutes for 8 days, two checks (one down for the last hour) with a result every 5 minutes, and error
// log lines, all as system work writes them.
func seed(t *testing.T, d *dbtest.DB, slug string, marker float64) tenantData {
	t.Helper()
	ctx := context.Background()
	td := tenantData{slug: slug, marker: marker}
	tx, err := d.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if err := tx.QueryRow(ctx, `INSERT INTO app.tenants (slug, name) VALUES ($1, $1) RETURNING id`, slug).Scan(&td.id); err != nil {
		t.Fatal(err)
	}
	statements := []string{
		`INSERT INTO app.hosts (tenant_id, name, labels, last_seen_at) VALUES
		     ($1, $2 || '-web-1', '{"region": "eu"}', now() - interval '1 hour'),
		     ($1, $2 || '-web-2', '{"region": "us"}', now())`,
		`INSERT INTO app.series (tenant_id, host_id, name, labels)
		 SELECT $1, h.id, m.name, m.labels || jsonb_build_object('host', h.name)
		   FROM app.hosts h,
		        (VALUES ('cpu.usage_pct', '{"cpu": "total"}'::jsonb), ('disk.used_pct', '{"mount": "/"}'),
		                ('mem.used_pct', '{}')) AS m (name, labels)
		  WHERE h.tenant_id = $1 AND $2 <> ''`,
		`INSERT INTO ts.samples (time, tenant_id, series_id, value)
		 SELECT t, $1, s.id, $3
		   FROM app.series s,
		        generate_series(date_bin('5 minutes', now(), 'epoch') - interval '8 days', now(), interval '5 minutes') AS t
		  WHERE s.tenant_id = $1 AND $2 <> ''`,
		`INSERT INTO app.checks (tenant_id, host_id, name, kind, target, location, status, status_reason, status_since)
		 SELECT $1, h.id, $2 || c.name, c.kind, c.target, c.location, c.status, c.reason, now() - interval '1 hour'
		   FROM (VALUES ('-ping', 'icmp', '192.0.2.1', 'eu-west', 'up', '', '-web-1'),
		                ('-shop', 'http', 'https://shop.example/health', NULL, 'down', 'timeout', '-web-2'))
		        AS c (name, kind, target, location, status, reason, host)
		   JOIN app.hosts h ON h.tenant_id = $1 AND h.name = $2 || c.host`,
		`INSERT INTO ts.check_results (time, tenant_id, check_id, status, latency)
		 SELECT t, $1, c.id,
		        CASE WHEN c.status = 'down' AND t > now() - interval '1 hour' THEN 'down' ELSE 'up' END,
		        make_interval(secs => $3 / 1000.0)
		   FROM app.checks c,
		        generate_series(date_bin('5 minutes', now(), 'epoch') - interval '8 days', now(), interval '5 minutes') AS t
		  WHERE c.tenant_id = $1 AND $2 <> ''`,
		`INSERT INTO ts.logs (time, tenant_id, host_id, source, severity, message)
		 SELECT now() - d * interval '1 day', $1, h.id, 'app', s, $2 || ' secret of ' || $2 || ' ' || $3::float8
		   FROM app.hosts h, generate_series(0, 3) AS d, unnest(ARRAY['error', 'info']) AS s
		  WHERE h.tenant_id = $1`,
		// A check rule whose alert on the down check fired an hour ago and was acknowledged, and one on
		// the other check that fired and resolved a day ago, each with its history.
		`INSERT INTO app.alert_rules (tenant_id, name, kind, severity, settings, eval)
		 VALUES ($1, $2 || ' check down', 'check', 'critical', '{}', '{}')`,
		`INSERT INTO app.alerts (tenant_id, rule_id, fingerprint, state, severity, host_id, check_id, summary, value,
		                         started_at, resolved_at, acked_at, acked_by)
		 SELECT $1, r.id, c.id::text, c.status_state, 'critical', c.host_id, c.id, c.name || ' is ' || c.status, $3,
		        now() - c.since, c.resolved, c.acked, c.acked_by
		   FROM app.alert_rules r,
		        (SELECT ch.*, CASE ch.status WHEN 'down' THEN 'firing' ELSE 'resolved' END AS status_state,
		                CASE ch.status WHEN 'down' THEN interval '1 hour' ELSE interval '1 day' END AS since,
		                CASE ch.status WHEN 'down' THEN NULL ELSE now() - interval '23 hours' END AS resolved,
		                CASE ch.status WHEN 'down' THEN now() - interval '50 minutes' END AS acked,
		                CASE ch.status WHEN 'down' THEN 'ops@' || $2 || '.example' END AS acked_by
		           FROM app.checks ch WHERE ch.tenant_id = $1) AS c
		  WHERE r.tenant_id = $1`,
		`INSERT INTO app.alert_events (tenant_id, alert_id, time, kind, from_state, to_state, reason, actor)
		 SELECT $1, a.id, a.started_at, 'state', 'pending', 'firing', 'check is down', '' FROM app.alerts a WHERE a.tenant_id = $1
		 UNION ALL
		 SELECT $1, a.id, a.resolved_at, 'state', 'firing', 'resolved', 'check is up', '' FROM app.alerts a
		  WHERE a.tenant_id = $1 AND a.resolved_at IS NOT NULL
		 UNION ALL
		 SELECT $1, a.id, a.acked_at, 'ack', NULL, NULL, '', a.acked_by FROM app.alerts a
		  WHERE a.tenant_id = $1 AND a.acked_at IS NOT NULL AND $2 <> ''`,
	}
	for _, s := range statements {
		args := []any{td.id, slug, marker}
		if !strings.Contains(s, "$3") {
			args = args[:2]
		}
		if _, err := tx.Exec(ctx, s, args...); err != nil {
			t.Fatalf("seed %s: %v\n%s", slug, err, s)
		}
	}
	if err := tx.QueryRow(ctx, `SELECT min(id) FROM app.series WHERE tenant_id = $1`, td.id).Scan(&td.seriesID); err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRow(ctx, `SELECT min(id) FROM app.checks WHERE tenant_id = $1`, td.id).Scan(&td.checkID); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	return td
}

// issue makes a BI login for the tenant.
func (w *world) issue(t *testing.T, td tenantData) bi.Issued {
	t.Helper()
	issued, err := w.svc.Create(context.Background(), td.id, "tests of "+td.slug, actor)
	if err != nil {
		t.Fatalf("create a BI login for %s: %v", td.slug, err)
	}
	return issued
}

// connect logs in as a BI login, as a BI tool would, with the address and password it was given.
func connect(t *testing.T, issued bi.Issued) *pgx.Conn {
	t.Helper()
	conn, err := dial(issued)
	if err != nil {
		t.Fatalf("log in as %s: %v", issued.Login, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func dial(issued bi.Issued) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return pgx.Connect(ctx, issued.Endpoint.URL(issued.Login, issued.Password))
}

// sqlState is the SQLSTATE of a server error, "" for any other error.
func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// rows runs a query and answers its rows as text, one string per row.
func rows(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, sql string, args ...any) ([]string, error) {
	r, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(r, func(row pgx.CollectableRow) (string, error) {
		values, err := row.Values()
		parts := make([]string, len(values))
		for i, v := range values {
			parts[i] = fmt.Sprint(v)
		}
		return strings.Join(parts, " "), err
	})
}

// roleExists says whether a role of that name exists on the server.
func roleExists(t *testing.T, d *dbtest.DB, login string) bool {
	t.Helper()
	var exists bool
	if err := d.Pool.QueryRow(context.Background(), `SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)`, login).
		Scan(&exists); err != nil {
		t.Fatal(err)
	}
	return exists
}

// waitFor polls cond until it holds. PostgreSQL sends no signal when another session's statement
// starts, so a test that needs one running asks pg_stat_activity; the deadline only guards against a hang.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 30 s for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))
