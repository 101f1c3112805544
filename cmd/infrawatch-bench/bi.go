package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/infrawatch/infrawatch/internal/bi"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/tenant"
)

// runBI is `infrawatch-bench bi`: a Grafana time-series panel's query as a BI login, through the
// security_barrier views of schema bi, against the way the dashboard API answers the same question as
// the owning login (the series looked up by host and metric, then the rollup read by their ids and the
// range, no view, no barrier): what the views cost, and whether the series and time conditions still
// reach the indexes.
//
// It loads --hosts hosts × --metrics series × --days days at one sample every --interval (100 × 10 ×
// 7 days at 10 s is 60.48 M rows) for the tenant measured, and --other-hosts hosts of the same shape for
// a second tenant, so that the tables hold another tenant's rows as they do in production; materializes
// the rollups up to 10 minutes before the end (the newest buckets stay real-time, as they are between
// two refreshes), vacuums and analyzes. Then, for a 6-hour panel on bi.samples_5m and a 7-day panel on
// bi.samples_1h, both of one host and metric, it prints the EXPLAIN (ANALYZE, BUFFERS) of the login's
// query, whether an index of the rollup served it, and the median times of both queries over --reps
// repetitions, interleaved.
//
// With the defaults it takes 10 to 20 minutes on 2 CPUs, nearly all of it loading and refreshing.
func runBI(args []string) int {
	fs := flag.NewFlagSet("infrawatch-bench bi", flag.ContinueOnError)
	databaseURL := fs.String("database-url", "", "superuser URL of an empty database to use (default: start a throwaway cluster)")
	flavorName := fs.String("flavor", "", "storage flavor: timescale or postgres (default: detect)")
	hosts := fs.Int("hosts", 100, "hosts of the tenant measured")
	otherHosts := fs.Int("other-hosts", 20, "hosts of another tenant in the same tables")
	metrics := fs.Int("metrics", 10, "series per host")
	days := fs.Int("days", 7, "days of data")
	interval := fs.Duration("interval", 10*time.Second, "time between two samples of a series")
	reps := fs.Int("reps", 7, "repetitions of every measurement; the table shows medians")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *hosts < 1 || *metrics < 1 || *days < 7 || *interval < time.Second {
		fmt.Fprintln(os.Stderr, "--hosts and --metrics must be at least 1, --days at least 7, --interval at least 1s")
		return 2
	}
	ctx := context.Background()
	began := time.Now()
	pool, built, version, closeDB, err := openDatabase(ctx, *databaseURL, *flavorName)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer closeDB()
	perSeries := int(time.Duration(*days) * 24 * time.Hour / *interval)
	fmt.Printf("infrawatch BI benchmark: %s flavor, PostgreSQL %s, %d CPUs\n"+
		"tenant measured: %d hosts × %d series × %d days at %s = %.2f M rows; another tenant: %d hosts (%.2f M rows)\n\n",
		built, version, runtime.NumCPU(), *hosts, *metrics, *days, *interval, float64(*hosts**metrics*perSeries)/1e6,
		*otherHosts, float64(*otherHosts**metrics*perSeries)/1e6)

	bb := &biBench{pool: pool, flavor: built, end: time.Now().Truncate(time.Hour), interval: *interval}
	bb.start = bb.end.Add(-time.Duration(*days) * 24 * time.Hour)
	measured, err := bb.tenant(ctx, "measured", *hosts, *metrics)
	if err != nil {
		fmt.Fprintln(os.Stderr, "setup:", err)
		return 1
	}
	other, err := bb.tenant(ctx, "other", *otherHosts, *metrics)
	if err != nil {
		fmt.Fprintln(os.Stderr, "setup:", err)
		return 1
	}
	if !step("partitions", func() error {
		_, err := pool.Exec(ctx, "SELECT infrawatch.ensure_partitions('ts.samples', $1, $2)", bb.start, bb.end.Add(24*time.Hour))
		return err
	}) || !step("load the measured tenant", func() error { return bb.load(ctx, measured) }) ||
		!step("load the other tenant", func() error { return bb.load(ctx, other) }) ||
		!step("refresh rollups up to 10 minutes before the end", func() error {
			qb := &queryBench{pool: pool, flavor: built}
			return qb.refresh(ctx, bb.end.Add(-10*time.Minute))
		}) {
		return 1
	}
	if built == db.FlavorTimescale && !step("compress raw chunks older than 7 days", func() error {
		_, err := pool.Exec(ctx, "SELECT count(compress_chunk(c, if_not_compressed => true)) FROM show_chunks('ts.samples', older_than => $1::timestamptz) c",
			bb.end.Add(-7*24*time.Hour))
		return err
	}) {
		return 1
	}
	if !step("vacuum and analyze", func() error { _, err := pool.Exec(ctx, "VACUUM ANALYZE"); return err }) {
		return 1
	}

	// The login, as a tenant's admin would make it, and a session of it as Grafana would hold.
	u, err := url.Parse(pool.Config().ConnString())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	svc, err := bi.NewService(bi.Config{PublicDSN: fmt.Sprintf("postgres://%s%s?sslmode=disable", u.Host, u.Path)}, db.NewSystem(pool))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	issued, err := svc.Create(ctx, measured.id, "bench", bi.Actor{Kind: "system", ID: "bench"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "create a BI login:", err)
		return 1
	}
	// The login is a role of the whole server: drop it, whatever happens.
	defer func() {
		_ = svc.Revoke(context.Background(), measured.id, issued.ID, bi.Actor{Kind: "system", ID: "bench"})
	}()
	login, err := pgx.Connect(ctx, issued.Endpoint.URL(issued.Login, issued.Password))
	if err != nil {
		fmt.Fprintln(os.Stderr, "log in as the BI login:", err)
		return 1
	}
	defer login.Close(ctx)

	host := fmt.Sprintf("measured-host-%03d", *hosts/2)
	panels := []struct{ name, view, tier string }{
		{"6 hours, 5-minute buckets", "bi.samples_5m", "ts.samples_5m"},
		{"7 days, hourly buckets", "bi.samples_1h", "ts.samples_1h"},
	}
	type result struct {
		name         string
		login, owner time.Duration
		rows         int
		index        bool
	}
	var results []result
	for _, p := range panels {
		from := bb.end.Add(-6 * time.Hour)
		if strings.Contains(p.name, "7 days") {
			from = bb.end.Add(-7 * 24 * time.Hour)
		}
		// Grafana's $__timeFilter(bucket) becomes bucket BETWEEN '<from>' AND '<to>' in RFC 3339.
		filter := fmt.Sprintf("bucket BETWEEN '%s' AND '%s'", from.UTC().Format(time.RFC3339), bb.end.UTC().Format(time.RFC3339))
		grafana := fmt.Sprintf(`SELECT bucket AS time, host_name AS metric, sum(sum_value) / sum(sample_count) AS value
  FROM %s
 WHERE %s AND host_name = '%s' AND metric = 'cpu.usage_pct'
 GROUP BY 1, 2
 ORDER BY 1`, p.view, filter, host)
		// The baseline is what the dashboard API does, the fastest way to the answer: find the series by
		// host and metric, then read the rollup by their ids and the range, as the owning login.
		lookup := `SELECT s.id FROM app.series s JOIN app.hosts h ON h.id = s.host_id
		            WHERE h.tenant_id = $1 AND h.name = $2 AND s.name = 'cpu.usage_pct'`
		baseline := fmt.Sprintf(`SELECT r.bucket AS time, sum(r.sum) / sum(r.count) AS value
  FROM %s r
 WHERE r.series_id = ANY ($1) AND r.%s
 GROUP BY 1
 ORDER BY 1`, p.tier, filter)
		owner := func() (int, error) {
			rows, err := pool.Query(ctx, lookup, measured.id, host)
			if err != nil {
				return 0, err
			}
			ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
			if err != nil {
				return 0, err
			}
			return count(ctx, pool, baseline, ids)
		}
		plan, err := explain(ctx, login, grafana)
		if err != nil {
			fmt.Fprintln(os.Stderr, "explain:", err)
			return 1
		}
		fmt.Printf("── %s: the Grafana query as the BI login ──\n%s\n\nEXPLAIN (ANALYZE, BUFFERS):\n%s\n\n", p.name, grafana, plan)
		var loginRows, ownerRows int
		m, err := measure(*reps,
			func() error { n, err := count(ctx, login, grafana); loginRows = n; return err },
			func() error { n, err := owner(); ownerRows = n; return err })
		if err != nil {
			fmt.Fprintln(os.Stderr, "measure:", err)
			return 1
		}
		if loginRows != ownerRows || loginRows == 0 {
			fmt.Fprintf(os.Stderr, "%s: the login's query answers %d rows, the owner's %d\n", p.name, loginRows, ownerRows)
			return 1
		}
		results = append(results, result{name: p.name, login: m[0], owner: m[1], rows: loginRows, index: usesRollupIndex(plan)})
	}
	fmt.Printf("one host's cpu.usage_pct, medians of %d, interleaved\n", *reps)
	fmt.Printf("%-28s %6s %14s %20s %8s %s\n", "panel", "rows", "BI login ms", "API-style SQL ms", "ratio", "rollup index used")
	for _, r := range results {
		used := "no"
		if r.index {
			used = "yes"
		}
		fmt.Printf("%-28s %6d %14.2f %20.2f %7.2fx %s\n", r.name, r.rows, msOf(r.login), msOf(r.owner), float64(r.login)/float64(r.owner), used)
	}
	fmt.Printf("\ntotal run time %s\n", time.Since(began).Round(time.Second))
	return 0
}

// biBench holds the dataset: its time range and the tenants.
type biBench struct {
	pool       *pgxpool.Pool
	flavor     db.Flavor
	start, end time.Time
	interval   time.Duration
}

type biTenant struct {
	id     uuid.UUID
	series []int64
}

// biMetrics are the series of a host: an agent's usual ones, then numbered extras.
var biMetrics = []string{"cpu.usage_pct", "mem.used_pct", "disk.used_pct", "net.rx_bytes_per_s", "net.tx_bytes_per_s",
	"swap.used_pct", "cpu.usage_iowait_pct", "disk.inodes_used_pct", "system.uptime_seconds", "cpu.usage_system_pct"}

// tenant makes a tenant with n hosts named <name>-host-000…, each with metrics series.
func (bb *biBench) tenant(ctx context.Context, name string, n, metrics int) (biTenant, error) {
	created, err := tenant.Create(ctx, db.NewSystem(bb.pool), tenant.NewTenant{Name: name, Slug: name + "-" + uuid.NewString()[:8],
		AdminEmail: name + "@bench.invalid", AdminPassword: "bench-password-long"})
	if err != nil {
		return biTenant{}, err
	}
	bt := biTenant{id: created.TenantID}
	names := make([]string, 0, metrics)
	for i := range metrics {
		if i < len(biMetrics) {
			names = append(names, biMetrics[i])
		} else {
			names = append(names, fmt.Sprintf("bench.extra_%d", i))
		}
	}
	rows, err := bb.pool.Query(ctx, `
		WITH h AS (
			INSERT INTO app.hosts (tenant_id, name, labels)
			SELECT $1, format('%s-host-%s', $2::text, lpad(i::text, 3, '0')), '{"env": "prod"}'
			  FROM generate_series(0, $3 - 1) AS i
			RETURNING id, name)
		INSERT INTO app.series (tenant_id, host_id, name, labels)
		SELECT $1, h.id, m, jsonb_build_object('host', h.name)
		  FROM h, unnest($4::text[]) AS m
		RETURNING id`, bt.id, name, n, names)
	if err != nil {
		return biTenant{}, err
	}
	if bt.series, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil {
		return biTenant{}, err
	}
	return bt, nil
}

// load writes a tenant's samples with COPY from 4 connections, each a quarter of the time range in
// time order, as agents would have pushed them.
func (bb *biBench) load(ctx context.Context, bt biTenant) error {
	t0 := time.Now()
	tid := pgtype.UUID{Bytes: bt.id, Valid: true}
	steps := int(bb.end.Sub(bb.start) / bb.interval)
	const workers = 4
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		lo, hi := steps*w/workers, steps*(w+1)/workers
		wg.Go(func() {
			k, i := lo, 0
			src := pgx.CopyFromFunc(func() ([]any, error) {
				if i == len(bt.series) {
					k, i = k+1, 0
				}
				if k >= hi {
					return nil, nil
				}
				id := bt.series[i]
				i++
				v := 50 + 40*sinApprox(float64(k%8640)/8640+float64(id%7)/7) + float64((k*7919+int(id))%100)/10
				return []any{bb.start.Add(time.Duration(k) * bb.interval), tid, id, v}, nil
			})
			if _, err := bb.pool.CopyFrom(ctx, pgx.Identifier{"ts", "samples"}, []string{"time", "tenant_id", "series_id", "value"}, src); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	rows := steps * len(bt.series)
	fmt.Fprintf(os.Stderr, "  %d rows, %.0f rows/s\n", rows, float64(rows)/time.Since(t0).Seconds())
	return nil
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// explain answers the EXPLAIN (ANALYZE, BUFFERS) of query as text.
func explain(ctx context.Context, q querier, query string) (string, error) {
	rows, err := q.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+query)
	if err != nil {
		return "", err
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return strings.Join(lines, "\n"), err
}

// count runs query and reads its rows, answering how many.
func count(ctx context.Context, q querier, query string, args ...any) (int, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	n := 0
	for rows.Next() {
		n++
	}
	rows.Close()
	return n, rows.Err()
}

// usesRollupIndex says whether a plan reads a rollup through its index by series and bucket: the
// postgres flavor's store partitions (their primary keys), the timescale flavor's materialization
// chunks (samples_*_series_bucket).
func usesRollupIndex(plan string) bool {
	for _, line := range strings.Split(plan, "\n") {
		if strings.Contains(line, "Index") && (strings.Contains(line, "_store_p") || strings.Contains(line, "_series_bucket")) {
			return true
		}
	}
	return false
}
