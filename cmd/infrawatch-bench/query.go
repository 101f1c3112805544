package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/infrawatch/infrawatch/internal/api"
	"github.com/infrawatch/infrawatch/internal/auth"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/query"
	"github.com/infrawatch/infrawatch/internal/tenant"
)

// runQuery is `infrawatch-bench query`: the dashboard query API on rollups against the same aggregate
// computed from the raw samples, and the cost of the rollups' real-time tail.
//
// It builds one tenant with --series series × --days days at one sample a minute (200 × 30 days is
// 8.64 M rows) with COPY, materializes the rollup tiers, in the timescale flavor compresses the raw
// chunks older than 7 days as the compression policy would, and vacuums, as a database in its steady
// state would be. TimescaleDB's background jobs are paused, so nothing changes under a measurement.
// Then, with --reps repetitions each (medians printed):
//
//   - the 7-day query through the API with the newest --tail of data not materialized (the real-time
//     views aggregate it from raw samples at each query), next to the same query once everything is;
//   - the dashboard query (--query-series series, step=auto, agg=avg) over 7 days and --days days:
//     through the HTTP API; its SQL alone (the series match and the rollup read, as the handler runs
//     them); and the SQL an implementation without rollups would run, time_bucket (date_bin in the
//     postgres flavor) and avg over ts.samples for the same series at the step the API chose, with the
//     API's plan settings, its rows read and decoded. The three run in turn in every repetition, each
//     warmed up once before. The API's answer is checked once (every series, a point per bucket) and
//     each timed repetition compares its body with that one byte for byte: decoding the JSON here would
//     time this process's decoder, which costs more than the server's encoder, not the API.
//
// --cpuprofile writes a CPU profile of the dashboard measurements: the server's handler runs in this
// process, so `go tool pprof` shows where the API spends its time on this side of the database.
//
// With the defaults it takes about 3 to 4 minutes on 2 CPUs, most of it loading and refreshing.
func runQuery(args []string) int {
	fs := flag.NewFlagSet("infrawatch-bench query", flag.ContinueOnError)
	databaseURL := fs.String("database-url", "", "superuser URL of an empty database to use (default: start a throwaway cluster)")
	flavorName := fs.String("flavor", "", "storage flavor: timescale or postgres (default: detect)")
	seriesCount := fs.Int("series", 200, "series in the dataset")
	days := fs.Int("days", 30, "days of data, one sample a minute")
	querySeries := fs.Int("query-series", 20, "series the dashboard query reads")
	reps := fs.Int("reps", 7, "repetitions of every measurement; the table shows medians")
	tail := fs.Duration("tail", 2*time.Hour, "newest data left unmaterialized for the real-time tail measurement")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the dashboard measurements to this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *querySeries > *seriesCount || *days < 8 {
		fmt.Fprintln(os.Stderr, "--query-series must not exceed --series, and --days must be at least 8")
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
	fmt.Printf("infrawatch query benchmark: %s flavor, PostgreSQL %s, %d CPUs; %d series × %d days at 1 minute = %.2f M rows\n\n",
		built, version, runtime.NumCPU(), *seriesCount, *days, float64(*seriesCount**days*1440)/1e6)

	qb := &queryBench{pool: pool, tenants: db.NewTenantRunner(pool), flavor: built, end: time.Now().Truncate(time.Hour)}
	qb.start = qb.end.Add(-time.Duration(*days) * 24 * time.Hour)
	if err := qb.setup(ctx, *seriesCount, *querySeries); err != nil {
		fmt.Fprintln(os.Stderr, "setup:", err)
		return 1
	}
	defer qb.close()
	if err := qb.load(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		return 1
	}

	// The real-time tail first: materialize all but the newest --tail, measure, then materialize the rest.
	if !step(fmt.Sprintf("refresh rollups up to %s before the end", *tail), func() error { return qb.refresh(ctx, qb.end.Add(-*tail)) }) {
		return 1
	}
	if qb.flavor == db.FlavorTimescale {
		if !step("compress raw chunks older than 7 days", func() error { return qb.compress(ctx) }) {
			return 1
		}
	}
	if !step("vacuum and analyze", func() error { _, err := pool.Exec(ctx, "VACUUM ANALYZE"); return err }) {
		return 1
	}
	week := qb.end.Add(-7 * 24 * time.Hour)
	// weekAPI checks the 7-day answer once, then times the repetitions, each compared with it.
	weekAPI := func() ([]time.Duration, error) {
		_, want, err := qb.httpQuery(ctx, week, qb.end)
		if err != nil {
			return nil, err
		}
		return measure(*reps, func() error { return qb.httpSame(ctx, week, qb.end, want) })
	}
	withTail, err := weekAPI()
	if err != nil {
		fmt.Fprintln(os.Stderr, "query with tail:", err)
		return 1
	}
	if !step("refresh rollups to the end", func() error { return qb.refresh(ctx, qb.end) }) {
		return 1
	}
	if !step("vacuum and analyze", func() error { _, err := pool.Exec(ctx, "VACUUM ANALYZE"); return err }) {
		return 1
	}
	materialized, err := weekAPI()
	if err != nil {
		fmt.Fprintln(os.Stderr, "query materialized:", err)
		return 1
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	fmt.Printf("\ndashboard query: %d series, step=auto, agg=avg; medians of %d, interleaved in rotating order\n", *querySeries, *reps)
	fmt.Printf("%-8s %5s %14s %14s %14s %10s\n", "range", "step", "API ms", "rollup SQL ms", "raw SQL ms", "raw / API")
	for _, span := range []int{7, *days} {
		from := qb.end.Add(-time.Duration(span) * 24 * time.Hour)
		st, want, err := qb.httpQuery(ctx, from, qb.end)
		if err != nil {
			fmt.Fprintln(os.Stderr, "query:", err)
			return 1
		}
		m, err := measure(*reps,
			func() error { return qb.httpSame(ctx, from, qb.end, want) },
			func() error { return qb.rollupSQL(ctx, from, qb.end, st) },
			func() error { return qb.rawSQL(ctx, from, qb.end, st) })
		if err != nil {
			fmt.Fprintln(os.Stderr, "query:", err)
			return 1
		}
		fmt.Printf("%-8s %5s %14.1f %14.1f %14.1f %9.1fx\n", fmt.Sprintf("%d days", span), st, msOf(m[0]), msOf(m[1]), msOf(m[2]),
			float64(m[2])/float64(m[0]))
	}
	fmt.Printf("\nreal-time tail: the 7-day query through the API; medians of %d\n", *reps)
	fmt.Printf("%-36s %10s\n", "rollups", "API ms")
	fmt.Printf("%-36s %10.1f\n", "all materialized", msOf(materialized[0]))
	fmt.Printf("%-36s %10.1f\n", "newest "+tail.String()+" not materialized", msOf(withTail[0]))
	fmt.Printf("%-36s %9.2fx\n", "ratio", float64(withTail[0])/float64(materialized[0]))
	fmt.Printf("\ntotal run time %s\n", time.Since(began).Round(time.Second))
	return 0
}

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// step runs one stage of the setup and reports its duration, or its failure, on stderr.
func step(what string, fn func() error) bool {
	t := time.Now()
	if err := fn(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", what, err)
		return false
	}
	fmt.Fprintf(os.Stderr, "%-50s %8s\n", what, time.Since(t).Round(10*time.Millisecond))
	return true
}

// measure runs each fn once to warm up, then all of them in turn reps times, so that the machine's drift
// falls on all alike, and returns each one's median duration. Each round starts one fn later than the
// one before: with a fixed order the API would always run right after the raw aggregate, whose 100 ms
// or more of work leave the CPU caches and the backend's memory to the next statement, and the raw
// aggregate never after the API.
func measure(reps int, fns ...func() error) ([]time.Duration, error) {
	for _, fn := range fns {
		if err := fn(); err != nil {
			return nil, err
		}
	}
	ds := make([][]float64, len(fns))
	for r := range reps {
		for k := range fns {
			i := (r + k) % len(fns)
			t := time.Now()
			if err := fns[i](); err != nil {
				return nil, err
			}
			ds[i] = append(ds[i], float64(time.Since(t)))
		}
	}
	out := make([]time.Duration, len(fns))
	for i := range fns {
		out[i] = time.Duration(median(ds[i]))
	}
	return out, nil
}

// queryBench holds the dataset's tenant and a server of the API for it.
type queryBench struct {
	pool       *pgxpool.Pool
	tenants    *db.TenantRunner
	flavor     db.Flavor
	start, end time.Time // the data covers [start, end) at one sample a minute
	tenantID   uuid.UUID
	series     []int64 // every series of the dataset
	dashboard  []int64 // the ones the dashboard query reads (label group=dashboard)
	key        string  // an API key with the read scope
	addr       string
	srv        *http.Server
	client     *http.Client
}

func (qb *queryBench) setup(ctx context.Context, n, dashboard int) error {
	created, err := tenant.Create(ctx, db.NewSystem(qb.pool), tenant.NewTenant{Name: "bench-" + uuid.NewString()[:8], AdminEmail: "bench@bench.invalid",
		AdminPassword: "bench-password-long"})
	if err != nil {
		return err
	}
	qb.tenantID = created.TenantID
	key, prefix, hash, err := auth.NewAPIKey()
	if err != nil {
		return err
	}
	if _, err := qb.pool.Exec(ctx, `INSERT INTO app.api_keys (tenant_id, name, prefix, secret_hash, scopes) VALUES ($1, 'bench', $2, $3, '{read}')`,
		qb.tenantID, prefix, hash); err != nil {
		return err
	}
	qb.key = key
	names, labels := make([]string, n), make([]string, n)
	for i := range n {
		group := "other"
		if i < dashboard {
			group = "dashboard"
		}
		names[i] = "bench.cpu"
		raw, _ := json.Marshal(map[string]string{"series": "s" + strconv.Itoa(i), "group": group})
		labels[i] = string(raw)
	}
	rows, err := qb.pool.Query(ctx, `INSERT INTO app.series (tenant_id, name, labels)
	                                 SELECT $1, unnest($2::text[]), unnest($3::jsonb[]) RETURNING id`, qb.tenantID, names, labels)
	if err != nil {
		return err
	}
	if qb.series, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil {
		return err
	}
	qb.dashboard = qb.series[:dashboard]
	// Nothing may change the data under a measurement: TimescaleDB's policies (compression, refreshes)
	// are paused; the postgres flavor's upkeep runs only under `infrawatch serve --roles scheduler`.
	if qb.flavor == db.FlavorTimescale {
		if _, err := qb.pool.Exec(ctx, "SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs WHERE job_id >= 1000"); err != nil {
			return fmt.Errorf("pause TimescaleDB jobs: %w", err)
		}
	}

	tokens, err := auth.NewTokens(ctx, auth.TokenConfig{}, db.NewSystem(qb.pool))
	if err != nil {
		return err
	}
	authSvc, err := auth.NewService(db.NewSystem(qb.pool), tokens)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	handler := api.NewHandler(api.Deps{Log: log, Tenants: db.NewTenantRunner(qb.pool), Auth: authSvc, ServeAPI: true,
		Health: db.NewHealth(qb.pool), Registry: api.NewRegistry(), Config: api.Config{Rates: api.RateLimits{TenantRate: 1e9,
			TenantBurst: 1e9, CredentialRate: 1e9, CredentialBurst: 1e9, LoginRate: 1, LoginBurst: 1}}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	qb.addr = ln.Addr().String()
	qb.srv = &http.Server{Handler: handler}
	go qb.srv.Serve(ln)
	qb.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2}}
	return nil
}

func (qb *queryBench) close() { _ = qb.srv.Close() }

// load writes the dataset with COPY from 4 connections, each a quarter of the time range in time order.
func (qb *queryBench) load(ctx context.Context) error {
	if _, err := qb.pool.Exec(ctx, "SELECT infrawatch.ensure_partitions('ts.samples', $1, $2)", qb.start, qb.end.Add(24*time.Hour)); err != nil {
		return fmt.Errorf("partitions: %w", err)
	}
	t0 := time.Now()
	tid := pgtype.UUID{Bytes: qb.tenantID, Valid: true}
	minutes := int(qb.end.Sub(qb.start) / time.Minute)
	const workers = 4
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		lo, hi := minutes*w/workers, minutes*(w+1)/workers
		wg.Go(func() {
			m, i := lo, 0
			src := pgx.CopyFromFunc(func() ([]any, error) {
				if i == len(qb.series) {
					m, i = m+1, 0
				}
				if m >= hi {
					return nil, nil
				}
				id := qb.series[i]
				i++
				// A daily wave per series, so aggregates differ from bucket to bucket.
				v := 50 + 40*sinApprox(float64(m%1440)/1440+float64(id%7)/7) + float64((m*7919+int(id))%100)/10
				return []any{qb.start.Add(time.Duration(m) * time.Minute), tid, id, v}, nil
			})
			if _, err := qb.pool.CopyFrom(ctx, pgx.Identifier{"ts", "samples"}, []string{"time", "tenant_id", "series_id", "value"}, src); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	rows := minutes * len(qb.series)
	d := time.Since(t0)
	fmt.Fprintf(os.Stderr, "%-50s %8s (%.0f rows/s)\n", fmt.Sprintf("COPY %d rows", rows), d.Round(10*time.Millisecond), float64(rows)/d.Seconds())
	return nil
}

// sinApprox is a smooth periodic function of period 1, cheap enough for millions of rows.
func sinApprox(x float64) float64 {
	x -= float64(int(x))
	if x < 0.5 {
		return 16 * x * (0.5 - x)
	}
	return -16 * (x - 0.5) * (1 - x)
}

// refresh materializes the metric rollup tiers, finest first, for the buckets that end by upTo: in the
// timescale flavor with refresh_continuous_aggregate (what the refresh policies run), in the postgres
// flavor with infrawatch.refresh_rollups (what maintenance runs), called until no backlog is left.
func (qb *queryBench) refresh(ctx context.Context, upTo time.Time) error {
	if qb.flavor == db.FlavorTimescale {
		for _, tier := range []string{"ts.samples_5m", "ts.samples_1h", "ts.samples_1d"} {
			if _, err := qb.pool.Exec(ctx, "CALL refresh_continuous_aggregate($1, NULL, $2::timestamptz)", tier, upTo); err != nil {
				return fmt.Errorf("refresh %s: %w", tier, err)
			}
		}
		return nil
	}
	for {
		var backlog bool
		if err := qb.pool.QueryRow(ctx, "SELECT coalesce(bool_or(backlog), false) FROM infrawatch.refresh_rollups($1, 1000000)", upTo).
			Scan(&backlog); err != nil {
			return fmt.Errorf("refresh_rollups: %w", err)
		}
		if !backlog {
			return nil
		}
	}
}

// compress compresses the raw chunks older than 7 days, as the compression policy would have.
func (qb *queryBench) compress(ctx context.Context) error {
	_, err := qb.pool.Exec(ctx, "SELECT count(compress_chunk(c, if_not_compressed => true)) FROM show_chunks('ts.samples', older_than => $1::timestamptz) c",
		qb.end.Add(-7*24*time.Hour))
	return err
}

// httpQuery runs the dashboard query through the API, checks the answer (every dashboard series, each
// with one point per bucket of the range) and returns the step it answered and the body.
func (qb *queryBench) httpQuery(ctx context.Context, from, to time.Time) (string, []byte, error) {
	body, err := qb.httpGet(ctx, from, to)
	if err != nil {
		return "", nil, err
	}
	var res struct {
		Step   string `json:"step"`
		Series []struct {
			Points [][2]*float64 `json:"points"`
		} `json:"series"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return "", nil, err
	}
	width := map[string]time.Duration{"5m": 5 * time.Minute, "1h": time.Hour, "1d": 24 * time.Hour}[res.Step]
	if width == 0 {
		return "", nil, fmt.Errorf("the answer has step %q, want a rollup tier", res.Step)
	}
	if len(res.Series) != len(qb.dashboard) {
		return "", nil, fmt.Errorf("the answer has %d series, want %d", len(res.Series), len(qb.dashboard))
	}
	want := int(to.Sub(from) / width) // from and to are whole hours, and the data covers every bucket
	for i, s := range res.Series {
		if len(s.Points) != want {
			return "", nil, fmt.Errorf("series %d of the answer has %d points, want %d", i, len(s.Points), want)
		}
	}
	return res.Step, body, nil
}

// httpSame runs the dashboard query through the API and compares the body with want, an answer that
// httpQuery checked, byte for byte. The repetitions that are timed run this, not httpQuery: decoding
// the JSON here, into pointers, costs this process more than the server spends encoding it, and it is
// the client's work, not the API's.
func (qb *queryBench) httpSame(ctx context.Context, from, to time.Time, want []byte) error {
	body, err := qb.httpGet(ctx, from, to)
	if err != nil {
		return err
	}
	if !bytes.Equal(body, want) {
		return fmt.Errorf("the answer changed between repetitions")
	}
	return nil
}

// httpGet sends the dashboard query and reads the whole answer.
func (qb *queryBench) httpGet(ctx context.Context, from, to time.Time) ([]byte, error) {
	q := url.Values{"metric": {"bench.cpu"}, "label.group": {"dashboard"}, "from": {strconv.FormatInt(from.UnixMilli(), 10)},
		"to": {strconv.FormatInt(to.UnixMilli(), 10)}, "step": {"auto"}, "agg": {"avg"}}
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+qb.addr+"/api/v1/query/range?"+q.Encode(), nil)
	req.Header.Set("Authorization", "Bearer "+qb.key)
	resp, err := qb.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", resp.Status, body)
	}
	return body, nil
}

// rollupSQL runs the API's queries for the dashboard without HTTP: the series match and the tier's
// buckets, each statement pipelined behind the tenant and the query settings, as the handler runs them.
func (qb *queryBench) rollupSQL(ctx context.Context, from, to time.Time, step string) error {
	name, labels := "bench.cpu", []byte(`{"group":"dashboard"}`)
	return qb.tenants.WithTenantReadOnly(ctx, qb.tenantID, query.StatementOptions(), func(q *dbsqlc.Queries) error {
		series, err := q.SeriesMatch(ctx, dbsqlc.SeriesMatchParams{Ids: []int64{}, Name: &name, Labels: labels, MaxRows: 100})
		if err != nil {
			return err
		}
		ids := make([]int64, len(series))
		for i, s := range series {
			ids[i] = s.ID
		}
		width := map[string]time.Duration{"5m": 5 * time.Minute, "1h": time.Hour, "1d": 24 * time.Hour}[step]
		p := dbsqlc.Samples5mRangeParams{Agg: "avg", SeriesIds: ids, FromBucket: from.Truncate(width), ToTime: to}
		var n int
		switch step {
		case "5m":
			rows, e := q.Samples5mRange(ctx, p)
			n, err = len(rows), e
		case "1h":
			rows, e := q.Samples1hRange(ctx, dbsqlc.Samples1hRangeParams(p))
			n, err = len(rows), e
		case "1d":
			rows, e := q.Samples1dRange(ctx, dbsqlc.Samples1dRangeParams(p))
			n, err = len(rows), e
		default:
			return fmt.Errorf("no rollup tier %q", step)
		}
		return noRows(n, err)
	})
}

func noRows(n int, err error) error {
	if err == nil && n == 0 {
		return fmt.Errorf("the query found no rows")
	}
	return err
}

// rawSQL is what an implementation without rollups would run for the dashboard: the same series, the
// same buckets, aggregated from ts.samples at each query. It runs with the API's plan settings (a plan
// for its own parameters, no JIT), so that the comparison is one of the data read, not of settings,
// and like the API's rollup read it leaves the order to the client: with ORDER BY series and bucket the
// planner picks a merge of per-chunk sorted aggregates over the hash aggregate, twice as slow over 30
// days, which would flatter the rollups.
func (qb *queryBench) rawSQL(ctx context.Context, from, to time.Time, step string) error {
	width := map[string]string{"5m": "5 minutes", "1h": "1 hour", "1d": "1 day"}[step]
	if width == "" {
		return fmt.Errorf("no raw equivalent of step %q", step)
	}
	bucket := "date_bin($4::interval, time, 'epoch')"
	if qb.flavor == db.FlavorTimescale {
		bucket = "time_bucket($4::interval, time)"
	}
	return pgx.BeginFunc(ctx, qb.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL jit = off"); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT series_id, `+bucket+` AS bucket, avg(value)
		                              FROM ts.samples
		                             WHERE series_id = ANY ($1) AND time >= $2 AND time < $3
		                             GROUP BY 1, 2`,
			pgx.QueryExecModeExec, qb.dashboard, from, to, width)
		if err != nil {
			return err
		}
		var (
			n      int
			series int64
			start  time.Time
			value  float64
		)
		_, err = pgx.ForEachRow(rows, []any{&series, &start, &value}, func() error { n++; return nil })
		return noRows(n, err)
	})
}
