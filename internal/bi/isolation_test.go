package bi_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
	sqlscripts "github.com/infrawatch/infrawatch/sql"
)

// tenantRows says, for every view of schema bi, how to count a tenant's rows as the owner, from the
// tables behind it ($1 is the tenant). A view missing here fails the test: add it.
var tenantRows = map[string]string{
	"bi.hosts":           `SELECT count(*) FROM app.hosts WHERE tenant_id = $1`,
	"bi.checks":          `SELECT count(*) FROM app.checks WHERE tenant_id = $1`,
	"bi.series":          `SELECT count(*) FROM app.series WHERE tenant_id = $1`,
	"bi.samples":         `SELECT count(*) FROM ts.samples WHERE tenant_id = $1`,
	"bi.samples_5m":      `SELECT count(*) FROM ts.samples_5m WHERE tenant_id = $1`,
	"bi.samples_1h":      `SELECT count(*) FROM ts.samples_1h WHERE tenant_id = $1`,
	"bi.samples_1d":      `SELECT count(*) FROM ts.samples_1d WHERE tenant_id = $1`,
	"bi.check_results":   `SELECT count(*) FROM ts.check_results WHERE tenant_id = $1`,
	"bi.availability_1h": `SELECT count(*) FROM ts.check_results_1h WHERE tenant_id = $1`,
	"bi.availability_1d": `SELECT count(*) FROM ts.check_results_1d WHERE tenant_id = $1`,
	"bi.logs":            `SELECT count(*) FROM ts.logs WHERE tenant_id = $1`,
	"bi.alerts":          `SELECT count(*) FROM app.alerts WHERE tenant_id = $1`,
	"bi.alert_events":    `SELECT count(*) FROM app.alert_events WHERE tenant_id = $1`,
}

func biViews(t *testing.T, d *dbtest.DB) []string {
	t.Helper()
	views, err := rows(context.Background(), d.Pool, `SELECT format('%I.%I', table_schema, table_name) FROM information_schema.views
	                                                    WHERE table_schema = 'bi' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	if want := slices.Sorted(maps.Keys(tenantRows)); !slices.Equal(views, want) {
		t.Fatalf("schema bi has the views %v; the tests know %v", views, want)
	}
	return views
}

// A BI login sees exactly its tenant's rows in every view, whatever it does to its session: a tenant
// setting (the API role's mechanism, which BI views ignore), SET ROLE, RESET ROLE, a new transaction.
// Each view's host, check and metric names are its tenant's only.
func TestLoginSeesOnlyItsTenantInEveryView(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		ctx := context.Background()
		w := newWorld(t, flavor)
		// Part of the rollups materialized, part real-time: both paths are read.
		dbtest.MaterializeRollups(t, w.d, time.Now().Add(-48*time.Hour))
		conn := connect(t, w.issue(t, w.alpha))

		want := map[string]int64{}
		for _, view := range biViews(t, w.d) {
			var own, other int64
			if err := w.d.Pool.QueryRow(ctx, tenantRows[view], w.alpha.id).Scan(&own); err != nil {
				t.Fatal(err)
			}
			if err := w.d.Pool.QueryRow(ctx, tenantRows[view], w.bravo.id).Scan(&other); err != nil {
				t.Fatal(err)
			}
			if own == 0 || other == 0 {
				t.Fatalf("%s: alpha has %d rows, bravo %d; the fixture must give both some", view, own, other)
			}
			want[view] = own
		}

		check := func(state string, q interface {
			QueryRow(context.Context, string, ...any) pgx.Row
			Query(context.Context, string, ...any) (pgx.Rows, error)
		}) {
			t.Helper()
			for view, n := range want {
				var got int64
				if err := q.QueryRow(ctx, "SELECT count(*) FROM "+view).Scan(&got); err != nil {
					t.Fatalf("%s: %s: %v", state, view, err)
				}
				if got != n {
					t.Errorf("%s: %s shows %d rows, alpha has %d", state, view, got, n)
				}
				names, err := rows(ctx, q, "SELECT to_jsonb(v)::text FROM "+view+" v")
				if err != nil {
					t.Fatal(err)
				}
				for _, row := range names {
					if strings.Contains(row, "bravo") {
						t.Fatalf("%s: %s shows a row of bravo: %s", state, view, row)
					}
				}
			}
		}
		check("plain", conn)
		if _, err := conn.Exec(ctx, "SELECT set_config('infrawatch.tenant_id', $1, false)", w.bravo.id.String()); err != nil {
			t.Fatal(err)
		}
		check("after set_config('infrawatch.tenant_id', bravo)", conn)
		if _, err := conn.Exec(ctx, "SET ROLE infrawatch_bi"); err != nil {
			t.Fatal(err)
		}
		check("after SET ROLE infrawatch_bi", conn)
		if _, err := conn.Exec(ctx, "RESET ROLE"); err != nil {
			t.Fatal(err)
		}
		check("after RESET ROLE", conn)
		if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			check("in a new transaction", tx)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		for _, escape := range []string{"SET ROLE infrawatch_api", "SET ROLE infrawatch_bi_manager",
			"SET SESSION AUTHORIZATION postgres", "SET ROLE " + pgx.Identifier{w.d.Name}.Sanitize()} {
			if _, err := conn.Exec(ctx, escape); sqlState(err) != "42501" && sqlState(err) != "22023" && sqlState(err) != "42704" {
				t.Errorf("%s: %v, want it refused", escape, err)
			}
		}
		check("after the refused escapes", conn)
	})
}

// Both flavors expose the same columns, of the same types, in the same order; sql/bi/README.md
// documents each of them, and nothing else.
func TestViewsHaveTheDocumentedColumnsInBothFlavors(t *testing.T) {
	columns := map[db.Flavor][]string{}
	for _, flavor := range dbtest.Flavors(t) {
		d := dbtest.New(t, flavor)
		biViews(t, d)
		cols, err := rows(context.Background(), d.Pool, `
			SELECT table_name || '.' || column_name || ' ' || data_type FROM information_schema.columns
			 WHERE table_schema = 'bi' ORDER BY table_name, ordinal_position`)
		if err != nil {
			t.Fatal(err)
		}
		columns[flavor] = cols
	}
	if len(columns) == 1 {
		t.Log("TimescaleDB is not available: the columns are compared with the README only")
	}
	if pg, ts := columns[db.FlavorPostgres], columns[db.FlavorTimescale]; ts != nil && !slices.Equal(pg, ts) {
		t.Errorf("the flavors differ:\npostgres:  %v\ntimescale: %v", pg, ts)
	}

	raw, err := os.ReadFile("../../sql/bi/README.md")
	if err != nil {
		t.Fatal(err)
	}
	// Each view is a "### bi.name" section with a table whose rows start | `column` | type |.
	var documented []string
	view := ""
	heading := regexp.MustCompile("^### `?bi\\.([a-z0-9_]+)`?")
	row := regexp.MustCompile("^\\| `([a-z0-9_]+)` \\| ([a-z ]+) \\|")
	for _, line := range strings.Split(string(raw), "\n") {
		if m := heading.FindStringSubmatch(line); m != nil {
			view = m[1]
		} else if m := row.FindStringSubmatch(line); m != nil && view != "" {
			documented = append(documented, view+"."+m[1]+" "+strings.TrimSpace(m[2]))
		} else if strings.HasPrefix(line, "## ") {
			view = ""
		}
	}
	catalog := columns[db.FlavorPostgres]
	for _, c := range catalog {
		if !slices.Contains(documented, c) {
			t.Errorf("sql/bi/README.md does not document %s (as | `column` | type |)", c)
		}
	}
	for _, c := range documented {
		if !slices.Contains(catalog, c) {
			t.Errorf("sql/bi/README.md documents %s, which no view has", c)
		}
	}
}

// The catalog test: with live BI logins, the isolation audit finds no hole, and each mutation that
// would open one is reported.
func TestIsolationAuditCoversBI(t *testing.T) {
	ctx := context.Background()
	flavor := dbtest.Flavors(t)[0]
	w := newWorld(t, flavor)
	login := w.issue(t, w.alpha).Login
	w.issue(t, w.bravo)
	audit := func(q interface {
		Query(context.Context, string, ...any) (pgx.Rows, error)
	}) []string {
		holes, err := rows(ctx, q, sqlscripts.IsolationAudit)
		if err != nil {
			t.Fatal(err)
		}
		return holes
	}
	if holes := audit(w.d.Pool); len(holes) > 0 {
		t.Fatalf("isolation audit found holes:\n%s", strings.Join(holes, "\n"))
	}
	quoted := pgx.Identifier{login}.Sanitize()
	mutations := []struct{ name, sql, want string }{
		{"no security barrier", `ALTER VIEW bi.logs RESET (security_barrier)`, "bi.logs tenant-facing view without security_barrier"},
		{"filtered on a setting", `CREATE OR REPLACE VIEW bi.hosts WITH (security_barrier) AS
			SELECT h.id AS host_id, h.name AS host_name, h.labels, h.metadata, h.monitored_by, h.last_seen_at, h.created_at, h.updated_at
			  FROM app.hosts h WHERE h.tenant_id = app.current_tenant_id()`, "bi.hosts BI view not filtered on session_user"},
		{"writable view", `GRANT INSERT ON bi.hosts TO infrawatch_bi`, "bi.hosts infrawatch_bi may write through it"},
		{"schema app", `GRANT USAGE ON SCHEMA app TO infrawatch_bi`, "schema app infrawatch_bi may use it"},
		{"temporary tables", fmt.Sprintf(`GRANT TEMPORARY ON DATABASE %s TO PUBLIC`, pgx.Identifier{w.d.Name}.Sanitize()),
			"infrawatch_bi may create temporary tables"},
		{"large objects", `GRANT EXECUTE ON FUNCTION pg_catalog.lo_from_bytea(oid, bytea) TO PUBLIC`, "infrawatch_bi may create large objects"},
		{"manager function", `GRANT EXECUTE ON FUNCTION infrawatch.bi_drop_login(text) TO infrawatch_api`,
			"function infrawatch.bi_drop_login(text) infrawatch_api may call it"},
		{"api as manager", `GRANT infrawatch_bi_manager TO infrawatch_api`, "infrawatch_api tenant-facing role can create roles or act as infrawatch_bi_manager"},
		{"login creates databases", `ALTER ROLE ` + quoted + ` CREATEDB`, login + " tenant-facing role can create roles"},
		{"login in another role", `GRANT infrawatch_api TO ` + quoted, login + " BI login is a member of infrawatch_api"},
		{"login without limit", `ALTER ROLE ` + quoted + ` CONNECTION LIMIT -1`, login + " BI login has no connection limit"},
		{"login without timeout", fmt.Sprintf(`ALTER ROLE %s IN DATABASE %s RESET statement_timeout`, quoted, pgx.Identifier{w.d.Name}.Sanitize()),
			login + " BI login lacks statement_timeout= in this database"},
		{"login bypasses", `ALTER ROLE ` + quoted + ` BYPASSRLS`, login + " BI login is a superuser or bypasses row-level security"},
	}
	for _, m := range mutations {
		t.Run(m.name, func(t *testing.T) {
			// In a transaction rolled back: role changes are the server's, and the rollback undoes them too.
			tx, err := w.d.Pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				t.Fatalf("%s: %v", m.sql, err)
			}
			if holes := audit(tx); !strings.Contains(strings.Join(holes, "\n"), m.want) {
				t.Errorf("after %q the audit reported %q, want a line containing %q", m.sql, holes, m.want)
			}
		})
	}
}
