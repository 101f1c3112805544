package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/infrawatch/infrawatch/internal/api"
	"github.com/infrawatch/infrawatch/internal/auth"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/pgcluster"
	"github.com/infrawatch/infrawatch/internal/promql"
	"github.com/infrawatch/infrawatch/internal/tenant"
)

// runPromQL is `infrawatch-bench promql`: PromQL through infrawatch's /prometheus/api/v1/query_range
// against the same expressions in a real Prometheus (Debian's prometheus, started here on loopback)
// holding the same samples, in the same run, with their latency ratio.
//
// The dataset is --hosts hosts × --cpus CPUs of cpu.usage (a counter of CPU seconds; PromQL's
// cpu_usage) and --hosts × --buckets le buckets of x_bucket (a histogram's cumulative buckets), 1,000
// series each with the defaults, a sample every --interval for --hours hours (and 10 minutes before,
// so that the first window is full), each series at its own millisecond offset as scrapes are (never
// on a whole second, where Prometheus 2.42's windows and 3.x's differ). It is
// written to PostgreSQL with COPY, the rollups materialized and the tables vacuumed, as a database in
// its steady state; and as OpenMetrics, one file per 2-hour block, turned into TSDB blocks by promtool
// before Prometheus starts.
//
// Each expression is evaluated over the whole range at --step (Grafana's step for a day on a wide
// panel is a minute) by Prometheus's HTTP API, by infrawatch's (in this process, over a loopback
// listener, with an API key, as Grafana calls it) with rollups on, and with rollups off
// (--promql-rollups=false): the answers are first compared (the same series and values within a
// relative 1e-9, so that both did the same work), then each is timed --reps times in rotating order,
// end to end (request to the last byte of the answer); the table shows medians.
//
// With the defaults it takes about 30 minutes on 2 busy CPUs: 4 of loading, the rest mostly
// infrawatch reading a day of raw samples (each evaluation of rate over 1,000 series reads 5.8 M rows).
func runPromQL(args []string) int {
	fs := flag.NewFlagSet("infrawatch-bench promql", flag.ContinueOnError)
	databaseURL := fs.String("database-url", "", "superuser URL of an empty database to use (default: start a throwaway cluster)")
	flavorName := fs.String("flavor", "", "storage flavor: timescale or postgres (default: detect)")
	hosts := fs.Int("hosts", 100, "hosts in the dataset")
	cpus := fs.Int("cpus", 10, "cpu_usage series per host")
	buckets := fs.Int("buckets", 10, "x_bucket series (le buckets) per host")
	interval := fs.Duration("interval", 15*time.Second, "time between two samples of a series")
	hours := fs.Int("hours", 24, "hours the queries span")
	stepFlag := fs.Duration("step", time.Minute, "the step of the range queries")
	reps := fs.Int("reps", 5, "timed repetitions of every measurement; the table shows medians")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	prometheusBin, err1 := exec.LookPath("prometheus")
	promtool, err2 := exec.LookPath("promtool")
	if err1 != nil || err2 != nil {
		fmt.Fprintln(os.Stderr, "the PromQL benchmark needs prometheus and promtool (Debian: apt-get install prometheus)")
		return 1
	}
	ctx := context.Background()
	began := time.Now()
	pool, built, version, closeDB, err := openDatabase(ctx, *databaseURL, *flavorName)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer closeDB()
	promVersion, _ := exec.Command(prometheusBin, "--version").CombinedOutput()
	end := time.Now().UTC().Truncate(time.Hour)
	pb := &promBench{pool: pool, flavor: built, end: end, start: end.Add(-time.Duration(*hours) * time.Hour), interval: *interval}
	pb.dataStart = pb.start.Add(-10 * time.Minute)
	n := *hosts * (*cpus + *buckets)
	samples := n * int(pb.end.Sub(pb.dataStart) / *interval)
	fmt.Printf("infrawatch PromQL benchmark: %s flavor, PostgreSQL %s; %s; %d CPUs (%s)\n", built, version,
		strings.SplitN(string(promVersion), "\n", 2)[0], runtime.NumCPU(), cpuModel())
	fmt.Printf("%d series (%d cpu_usage, %d x_bucket) × %d h at %s = %.2f M samples\n\n", n, *hosts**cpus, *hosts**buckets, *hours,
		*interval, float64(samples)/1e6)

	if !step("create the tenant, its series and the API servers", func() error { return pb.setup(ctx, *hosts, *cpus, *buckets) }) {
		return 1
	}
	defer pb.close()
	if !step(fmt.Sprintf("COPY %d samples", samples), func() error { return pb.load(ctx) }) {
		return 1
	}
	if !step("refresh the rollups", func() error { return (&queryBench{pool: pool, flavor: built}).refresh(ctx, pb.end) }) {
		return 1
	}
	if !step("vacuum and analyze", func() error { _, err := pool.Exec(ctx, "VACUUM ANALYZE"); return err }) {
		return 1
	}
	dir, err := os.MkdirTemp("", "infrawatch-promql-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if !step("write OpenMetrics and make TSDB blocks (promtool)", func() error { return pb.backfill(dir, promtool) }) {
		return 1
	}
	stop, err := pb.startPrometheus(ctx, prometheusBin, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "prometheus:", err)
		return 1
	}
	defer stop()

	queries := []string{
		`sum by (host) (rate(cpu_usage[5m]))`,
		`histogram_quantile(0.95, sum by (le) (rate(x_bucket[5m])))`,
		`max by (host) (max_over_time(cpu_usage[1h]))`,
		`sum by (host) (cpu_usage)`,
	}
	fmt.Printf("\nrange queries over %d h; medians of %d, interleaved in rotating order; latency ratio is infrawatch / Prometheus\n", *hours, *reps)
	fmt.Printf("%-62s %6s %10s %12s %10s %10s %10s\n", "expression", "step", "Prom ms", "iw ms", "ratio", "iw raw ms", "raw ratio")
	for i, q := range queries {
		st := *stepFlag
		switch i {
		case 2:
			st = time.Hour // the hourly maximum: the 1h tier answers it
		case 3:
			st = 5 * time.Minute // a gauge-style panel at 5 minutes: the 5m tier answers it
		}
		params := url.Values{"query": {q}, "start": {strconv.FormatInt(pb.start.Unix(), 10)}, "end": {strconv.FormatInt(pb.end.Unix(), 10)},
			"step": {strconv.FormatFloat(st.Seconds(), 'f', -1, 64)}}
		var bodies [3][]byte
		for k, base := range []string{pb.promURL, pb.tieredURL, pb.rawURL} {
			if bodies[k], err = pb.get(ctx, base, params); err != nil {
				fmt.Fprintln(os.Stderr, q, err)
				return 1
			}
		}
		for k := 1; k < 3; k++ {
			if err := sameMatrix(bodies[0], bodies[k]); err != nil {
				fmt.Fprintf(os.Stderr, "%s: infrawatch's answer differs from Prometheus's: %v\n", q, err)
				return 1
			}
		}
		m, err := measure(*reps,
			func() error { return pb.timed(ctx, pb.promURL, params) },
			func() error { return pb.timed(ctx, pb.tieredURL, params) },
			func() error { return pb.timed(ctx, pb.rawURL, params) })
		if err != nil {
			fmt.Fprintln(os.Stderr, q, err)
			return 1
		}
		fmt.Printf("%-62s %6s %10.1f %12.1f %9.2fx %10.1f %9.2fx\n", q, st, msOf(m[0]), msOf(m[1]), float64(m[1])/float64(m[0]),
			msOf(m[2]), float64(m[2])/float64(m[0]))
	}
	fmt.Printf("\nseries read per source by infrawatch (rollups on): raw %.0f, 5m %.0f, 1h %.0f, 1d %.0f\n",
		pb.tiered.SeriesRead("raw"), pb.tiered.SeriesRead("5m"), pb.tiered.SeriesRead("1h"), pb.tiered.SeriesRead("1d"))
	fmt.Printf("total run time %s\n", time.Since(began).Round(time.Second))
	return 0
}

// promBench holds the dataset and the servers that answer it.
type promBench struct {
	pool       *pgxpool.Pool
	flavor     db.Flavor
	dataStart  time.Time // samples lie in [dataStart, end)
	start, end time.Time // what the queries span
	interval   time.Duration
	tenantID   uuid.UUID
	series     []benchSeries
	tiered     *promql.Engine
	key        string
	tieredURL  string
	rawURL     string
	promURL    string
	servers    []*http.Server
	client     *http.Client
	promLog    bytes.Buffer
}

// benchSeries is one series of the dataset: its id, its PromQL name and labels, its millisecond offset
// and how much its counter grows per sample.
type benchSeries struct {
	id     int64
	prom   string
	labels map[string]string
	offset time.Duration
	growth func(k int) float64
}

func (pb *promBench) setup(ctx context.Context, hosts, cpus, buckets int) error {
	created, err := tenant.Create(ctx, db.NewSystem(pb.pool), tenant.NewTenant{Name: "promql-" + uuid.NewString()[:8],
		AdminEmail: "bench@bench.invalid", AdminPassword: "bench-password-long"})
	if err != nil {
		return err
	}
	pb.tenantID = created.TenantID
	key, prefix, hash, err := auth.NewAPIKey()
	if err != nil {
		return err
	}
	if _, err := pb.pool.Exec(ctx, `INSERT INTO app.api_keys (tenant_id, name, prefix, secret_hash, scopes) VALUES ($1, 'bench', $2, $3, '{read}')`,
		pb.tenantID, prefix, hash); err != nil {
		return err
	}
	pb.key = key
	var names []string
	var labels []string
	les := []string{"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "25", "50", "100"}
	for h := range hosts {
		host := fmt.Sprintf("host-%03d", h)
		for c := range cpus {
			c := c
			l := map[string]string{"host": host, "cpu": strconv.Itoa(c)}
			pb.series = append(pb.series, benchSeries{prom: "cpu_usage", labels: l,
				growth: func(k int) float64 { return float64((k*7+c*3)%20) / 10 }})
			names = append(names, "cpu.usage")
		}
		for b := range buckets {
			le := "+Inf"
			if b < buckets-1 {
				le = les[b%len(les)]
			}
			b := b
			l := map[string]string{"host": host, "le": le}
			pb.series = append(pb.series, benchSeries{prom: "x_bucket", labels: l,
				growth: func(k int) float64 { return float64((k%5)*(b+1) + b) }}) // cumulative: grows more with le
			names = append(names, "x_bucket")
		}
	}
	for i := range pb.series {
		raw, _ := json.Marshal(pb.series[i].labels)
		labels = append(labels, string(raw))
		// Never on a whole second: the queries evaluate at whole minutes, and Prometheus 2.42 counts a
		// sample exactly on a window's left edge where the engine infrawatch runs (3.x) does not.
		off := (i * 7919) % int(pb.interval/time.Millisecond)
		if off%1000 == 0 {
			off++
		}
		pb.series[i].offset = time.Duration(off) * time.Millisecond
	}
	rows, err := pb.pool.Query(ctx, `INSERT INTO app.series (tenant_id, name, labels)
	                                 SELECT $1, unnest($2::text[]), unnest($3::jsonb[]) RETURNING id`, pb.tenantID, names, labels)
	if err != nil {
		return err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return err
	}
	for i := range ids {
		pb.series[i].id = ids[i]
	}
	if pb.flavor == db.FlavorTimescale {
		if _, err := pb.pool.Exec(ctx, "SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs WHERE job_id >= 1000"); err != nil {
			return fmt.Errorf("pause TimescaleDB jobs: %w", err)
		}
	}
	tokens, err := auth.NewTokens(ctx, auth.TokenConfig{}, db.NewSystem(pb.pool))
	if err != nil {
		return err
	}
	authSvc, err := auth.NewService(db.NewSystem(pb.pool), tokens)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tenants := db.NewTenantRunner(pb.pool).WithStatementTimeout(time.Minute)
	pb.tiered = promql.New(tenants, promql.Config{Rollups: true}, nil, nil)
	for _, engine := range []*promql.Engine{pb.tiered, promql.New(tenants, promql.Config{Rollups: false}, nil, nil)} {
		handler := api.NewHandler(api.Deps{Log: log, Tenants: tenants, Auth: authSvc, ServeAPI: true, PromQL: engine,
			Health: db.NewHealth(pb.pool), Registry: api.NewRegistry(), Config: api.Config{Rates: api.RateLimits{TenantRate: 1e9,
				TenantBurst: 1e9, CredentialRate: 1e9, CredentialBurst: 1e9, LoginRate: 1, LoginBurst: 1}}})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: handler}
		go srv.Serve(ln)
		pb.servers = append(pb.servers, srv)
		if pb.tieredURL == "" {
			pb.tieredURL = "http://" + ln.Addr().String() + "/prometheus"
		} else {
			pb.rawURL = "http://" + ln.Addr().String() + "/prometheus"
		}
	}
	pb.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	return nil
}

func (pb *promBench) close() {
	for _, s := range pb.servers {
		_ = s.Close()
	}
}

// samplesOf calls fn with every sample of the dataset, time-major, each series' counter accumulated.
func (pb *promBench) samplesOf(from, to time.Time, fn func(s *benchSeries, at time.Time, v float64) error) error {
	steps := int(pb.end.Sub(pb.dataStart) / pb.interval)
	values := make([]float64, len(pb.series))
	for k := 0; k < steps; k++ {
		base := pb.dataStart.Add(time.Duration(k) * pb.interval)
		for i := range pb.series {
			s := &pb.series[i]
			values[i] += s.growth(k)
			at := base.Add(s.offset)
			if at.Before(from) || !at.Before(to) {
				continue
			}
			if err := fn(s, at, values[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// load writes the dataset with COPY.
func (pb *promBench) load(ctx context.Context) error {
	if _, err := pb.pool.Exec(ctx, "SELECT infrawatch.ensure_partitions('ts.samples', $1, $2)", pb.dataStart.Add(-24*time.Hour), pb.end.Add(24*time.Hour)); err != nil {
		return fmt.Errorf("partitions: %w", err)
	}
	tid := pgtype.UUID{Bytes: pb.tenantID, Valid: true}
	rows := make(chan []any, 10_000)
	errc := make(chan error, 1)
	go func() {
		err := pb.samplesOf(pb.dataStart, pb.end, func(s *benchSeries, at time.Time, v float64) error {
			rows <- []any{at, tid, s.id, v}
			return nil
		})
		close(rows)
		errc <- err
	}()
	src := pgx.CopyFromFunc(func() ([]any, error) {
		r, ok := <-rows
		if !ok {
			return nil, nil
		}
		return r, nil
	})
	if _, err := pb.pool.CopyFrom(ctx, pgx.Identifier{"ts", "samples"}, []string{"time", "tenant_id", "series_id", "value"}, src); err != nil {
		for range rows { // let the producer finish
		}
		return err
	}
	return <-errc
}

// backfill writes the same samples as OpenMetrics, one file per aligned 2-hour block (promtool reads
// its whole input once per block), and turns each into TSDB blocks in dir/data.
func (pb *promBench) backfill(dir, promtool string) error {
	const block = 2 * time.Hour
	for from := pb.dataStart.Truncate(block); from.Before(pb.end); from = from.Add(block) {
		to := from.Add(block)
		file := filepath.Join(dir, "block.om")
		f, err := os.Create(file)
		if err != nil {
			return err
		}
		w := bufio.NewWriterSize(f, 1<<20)
		var line []byte
		err = pb.samplesOf(from, to, func(s *benchSeries, at time.Time, v float64) error {
			line = append(line[:0], s.prom...)
			line = append(line, `{host="`...)
			line = append(line, s.labels["host"]...)
			if c, ok := s.labels["cpu"]; ok {
				line = append(line, `",cpu="`...)
				line = append(line, c...)
			} else {
				line = append(line, `",le="`...)
				line = append(line, s.labels["le"]...)
			}
			line = append(line, `"} `...)
			line = strconv.AppendFloat(line, v, 'f', -1, 64)
			ms := at.UnixMilli()
			line = append(line, ' ')
			line = strconv.AppendInt(line, ms/1000, 10)
			line = append(line, '.')
			line = append(line, fmt.Sprintf("%03d", ms%1000)...)
			line = append(line, '\n')
			_, err := w.Write(line)
			return err
		})
		if err == nil {
			_, err = w.WriteString("# EOF\n")
		}
		if err == nil {
			err = w.Flush()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		if out, err := exec.Command(promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet", file, filepath.Join(dir, "data")).
			CombinedOutput(); err != nil {
			return fmt.Errorf("promtool: %v: %s", err, out)
		}
	}
	return os.Remove(filepath.Join(dir, "block.om"))
}

// startPrometheus starts Prometheus on the blocks, scraping nothing, and waits until its API answers a
// query over the dataset.
func (pb *promBench) startPrometheus(ctx context.Context, bin, dir string) (func(), error) {
	port, err := pgcluster.FreePort()
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte("global:\n  scrape_interval: 1m\n"), 0o600); err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--storage.tsdb.retention.time=30d", "--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = &pb.promLog, &pb.promLog
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stop := func() { _ = cmd.Process.Kill(); <-done }
	pb.promURL = "http://" + addr
	params := url.Values{"query": {"count(cpu_usage)"}, "time": {strconv.FormatInt(pb.end.Add(-time.Minute).Unix(), 10)}}
	deadline := time.Now().Add(2 * time.Minute) // a hang guard
	for {
		select {
		case <-done:
			return nil, fmt.Errorf("prometheus exited: %s", pb.promLog.String())
		default:
		}
		body, err := pb.get(ctx, pb.promURL, params)
		if err == nil && bytes.Contains(body, []byte(fmt.Sprintf(`"%d"`, len(pb.series)/2))) {
			return stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("prometheus did not answer over the blocks within 2 minutes: %v %s", err, body)
		}
		time.Sleep(200 * time.Millisecond) // a benchmark's setup, not a test: polling a starting server
	}
}

// get runs a range query (or, with "time", an instant one) against base and returns the answer.
func (pb *promBench) get(ctx context.Context, base string, params url.Values) ([]byte, error) {
	path := "/api/v1/query_range"
	if params.Has("time") {
		path = "/api/v1/query"
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", base+path+"?"+params.Encode(), nil)
	req.Header.Set("Authorization", "Bearer "+pb.key)
	resp, err := pb.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("%s: %s", resp.Status, body)
	}
	return body, nil
}

// timed runs the query and reads the whole answer; its status says it succeeded.
func (pb *promBench) timed(ctx context.Context, base string, params url.Values) error {
	_, err := pb.get(ctx, base, params)
	return err
}

// sameMatrix compares two range answers: the same series, times and values within a relative 1e-9.
func sameMatrix(want, got []byte) error {
	decode := func(b []byte) (map[string][][2]any, error) {
		var a struct {
			Data struct {
				Result []struct {
					Metric map[string]string `json:"metric"`
					Values [][2]any          `json:"values"`
				} `json:"result"`
			} `json:"data"`
		}
		if err := json.Unmarshal(b, &a); err != nil {
			return nil, err
		}
		out := map[string][][2]any{}
		for _, s := range a.Data.Result {
			keys := make([]string, 0, len(s.Metric))
			for k, v := range s.Metric {
				keys = append(keys, k+"="+v)
			}
			sort.Strings(keys)
			out[strings.Join(keys, ",")] = s.Values
		}
		return out, nil
	}
	w, err := decode(want)
	if err != nil {
		return err
	}
	g, err := decode(got)
	if err != nil {
		return err
	}
	if len(w) == 0 || len(w) != len(g) {
		return fmt.Errorf("%d series, want %d", len(g), len(w))
	}
	for k, wv := range w {
		gv, ok := g[k]
		if !ok || len(gv) != len(wv) {
			return fmt.Errorf("series %s: %d points, want %d", k, len(gv), len(wv))
		}
		for i := range wv {
			a, _ := strconv.ParseFloat(wv[i][1].(string), 64)
			b, _ := strconv.ParseFloat(gv[i][1].(string), 64)
			if wv[i][0] != gv[i][0] || (a != b && math.Abs(a-b) > 1e-9*math.Max(math.Abs(a), math.Abs(b))) {
				return fmt.Errorf("series %s point %d: %v, want %v", k, i, gv[i], wv[i])
			}
		}
	}
	return nil
}
