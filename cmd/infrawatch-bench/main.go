// Command infrawatch-bench measures infrawatch against the physical limit of the same machine, in one
// run on one database: raw pgx CopyFrom into ts.samples (2 connections, 10,000-row batches) next to
// end-to-end HTTP ingest by concurrent agents, and prints both with their ratio.
//
//	go run ./cmd/infrawatch-bench [--duration 30s] [--series 10000] [--agents 8,32] [--push-sizes 1000,100]
//
// The query subcommand measures the dashboard query API on rollups against the raw aggregate (query.go):
//
//	go run ./cmd/infrawatch-bench query [--flavor postgres] [--series 200] [--days 30] [--reps 7]
//
// The bi subcommand runs a Grafana panel's query as a BI login through the views of schema bi, with its
// EXPLAIN, against the owner's SQL on the tables behind them (bi.go):
//
//	go run ./cmd/infrawatch-bench bi [--flavor postgres] [--hosts 100] [--metrics 10] [--days 7] [--interval 10s]
//
// The alerts subcommand measures the alerter at 12,000 rules against the naive loop of one statement per
// rule (alerts.go):
//
//	go run ./cmd/infrawatch-bench alerts [--flavor postgres] [--duration 5m] [--warmup 2m]
//
// The otlp subcommand measures OTLP/HTTP ingest against our JSON ingest of the same samples (otlp.go):
//
//	go run ./cmd/infrawatch-bench otlp [--duration 20s] [--rounds 3] [--agents 8] [--push-sizes 1000,100]
//
// The promql subcommand measures PromQL through /prometheus/api/v1 against a real Prometheus holding
// the same samples (promql.go):
//
//	go run ./cmd/infrawatch-bench promql [--flavor postgres] [--hosts 100] [--cpus 10] [--buckets 10] [--hours 24]
//
// The scale subcommand runs one million active series on this box — 10,000 hosts × 100 series every
// 10 s from 1,000 agents in a load generator process of their own, into a real `infrawatch serve`
// process with its rollups and retention, while dashboards query it — and reports sustained against
// offered samples/s and raw COPY, ingest and dashboard latency, memory, CPU, disk and bytes per sample,
// and which resource ran out (scale.go, scale_load.go):
//
//	go run ./cmd/infrawatch-bench scale [--flavor postgres] [--hosts 10000] [--series-per-host 100] [--interval 10s]
//	    [--agents 1000] [--duration 10m] [--new-series 100000] [--dashboards 4]
//
// Without --database-url it starts a throwaway PostgreSQL cluster (TimescaleDB preloaded when installed)
// with durable settings, as production would run. The load generator runs in this process, on the same
// machine: its CPU counts against the server's, as it would not with agents on other hosts.
//
// It is the one command that imports the driver (pgx) outside internal/db, ingest, stream and events:
// its baseline is a raw COPY, with none of infrawatch in the way (architecture_test.go allows it).
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/infrawatch/infrawatch/internal/api"
	"github.com/infrawatch/infrawatch/internal/auth"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/ingest"
	"github.com/infrawatch/infrawatch/internal/pgcluster"
	"github.com/infrawatch/infrawatch/internal/tenant"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "query" {
		os.Exit(runQuery(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "bi" {
		os.Exit(runBI(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "alerts" {
		os.Exit(runAlerts(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "otlp" {
		os.Exit(runOTLP(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "promql" {
		os.Exit(runPromQL(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "scale" {
		os.Exit(runScale(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "scale-load" { // the scale subcommand's load generator, started by it
		os.Exit(runScaleLoad(os.Args[2:]))
	}
	os.Exit(run())
}

func run() int {
	databaseURL := flag.String("database-url", "", "superuser URL of an empty database to use (default: start a throwaway cluster)")
	flavor := flag.String("flavor", "", "storage flavor: timescale or postgres (default: detect)")
	duration := flag.Duration("duration", 20*time.Second, "how long each measurement runs")
	rounds := flag.Int("rounds", 3, "rounds of every measurement, interleaved; the table shows each one's median")
	seriesCount := flag.Int("series", 10000, "distinct series the agents write")
	agentList := flag.String("agents", "8,32", "comma-separated numbers of concurrent agents")
	pushList := flag.String("push-sizes", "1000,100", "comma-separated samples per push")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	flag.Parse()
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

	ctx := context.Background()
	pool, built, version, closeDB, err := openDatabase(ctx, *databaseURL, *flavor)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer closeDB()
	fmt.Printf("infrawatch ingest benchmark: %s flavor, PostgreSQL %s, %d CPUs, %s per measurement, %d series\n\n",
		built, version, runtime.NumCPU(), *duration, *seriesCount)

	b, err := newBench(ctx, pool, *seriesCount)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer b.close()

	// A first pass that is not counted: it creates WAL segments and warms the caches.
	if _, err := b.rawCopy(ctx, min(*duration, 10*time.Second)); err != nil {
		fmt.Fprintln(os.Stderr, "warm-up:", err)
		return 1
	}
	type measurement struct {
		name  string
		run   func() (float64, error)
		rates []float64
	}
	ms := []*measurement{{name: "pgx CopyFrom, 2 connections, 10k-row batches", run: func() (float64, error) { return b.rawCopy(ctx, *duration) }}}
	for _, agents := range ints(*agentList) {
		for _, size := range ints(*pushList) {
			ms = append(ms, &measurement{name: fmt.Sprintf("HTTP JSON ingest, %d agents, %d-sample pushes", agents, size),
				run: func() (float64, error) { return b.httpIngest(ctx, agents, size, *duration) }})
		}
	}
	// Interleaved rounds, so that the machine's drift (a shared disk, a noisy neighbour) falls on all alike.
	for r := range *rounds {
		for _, m := range ms {
			rate, err := m.run()
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s: %v\n", m.name, err)
				return 1
			}
			m.rates = append(m.rates, rate)
			fmt.Fprintf(os.Stderr, "round %d: %-44s %10.0f samples/s\n", r+1, m.name, rate)
		}
	}
	raw := median(ms[0].rates)
	fmt.Printf("\n%-46s %12s %8s   %s\n", "write path (median of rounds)", "samples/s", "vs raw", "rounds")
	for _, m := range ms {
		fmt.Printf("%-46s %12.0f %8.2f   %s\n", m.name, median(m.rates), median(m.rates)/raw, formatRates(m.rates))
	}
	return 0
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func formatRates(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.FormatFloat(x, 'f', 0, 64)
	}
	return strings.Join(parts, " ")
}

func ints(list string) []int {
	var out []int
	for _, s := range strings.Split(list, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

// bench holds the tenant, its series and a server for the HTTP runs.
type bench struct {
	pool     *pgxpool.Pool
	tenantID uuid.UUID
	series   []int64 // ids of the pre-created series, for the raw COPY
	key      string
	addr     string
	srv      *http.Server
	stop     context.CancelFunc
	done     chan struct{}
	// Timestamps only ever move forward, so no sample of any run collides with another: the raw COPY
	// steps by a microsecond from two days ago, the pushes by a millisecond per round from 20 minutes ago
	// (both inside the accepted window and the partitions that exist).
	rawClock  atomic.Int64 // µs
	pushClock atomic.Int64 // ms
}

func newBench(ctx context.Context, pool *pgxpool.Pool, n int) (*bench, error) {
	created, err := tenant.Create(ctx, db.NewSystem(pool), tenant.NewTenant{Name: "bench-" + uuid.NewString()[:8], AdminEmail: "bench@bench.invalid",
		AdminPassword: "bench-password-long"})
	if err != nil {
		return nil, err
	}
	b := &bench{pool: pool, tenantID: created.TenantID}
	if _, err := pool.Exec(ctx, `UPDATE app.tenants SET max_series = 10000000, ingest_rate = 100000000, ingest_burst = 100000000
	                              WHERE id = $1`, b.tenantID); err != nil {
		return nil, err
	}
	key, prefix, hash, err := auth.NewAPIKey()
	if err != nil {
		return nil, err
	}
	if _, err := pool.Exec(ctx, `INSERT INTO app.api_keys (tenant_id, name, prefix, secret_hash, scopes) VALUES ($1, 'bench', $2, $3, '{ingest}')`,
		b.tenantID, prefix, hash); err != nil {
		return nil, err
	}
	b.key = key
	b.rawClock.Store(time.Now().Add(-48 * time.Hour).UnixMicro())
	b.pushClock.Store(time.Now().Add(-20 * time.Minute).UnixMilli())

	tokens, err := auth.NewTokens(ctx, auth.TokenConfig{}, db.NewSystem(pool))
	if err != nil {
		return nil, err
	}
	authSvc, err := auth.NewService(db.NewSystem(pool), tokens)
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ing := ingest.NewService(ingest.Config{}, pool, log, nil)
	runCtx, stop := context.WithCancel(context.Background())
	b.stop, b.done = stop, make(chan struct{})
	go func() { ing.Run(runCtx); close(b.done) }()
	handler := api.NewHandler(api.Deps{Log: log, Tenants: db.NewTenantRunner(pool), Auth: authSvc, Ingest: ing, ServeAPI: true,
		Health: db.NewHealth(pool), Registry: api.NewRegistry(), Config: api.Config{Rates: api.RateLimits{TenantRate: 1e9,
			TenantBurst: 1e9, CredentialRate: 1e9, CredentialBurst: 1e9, LoginRate: 1, LoginBurst: 1}}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b.addr = ln.Addr().String()
	b.srv = &http.Server{Handler: handler}
	go b.srv.Serve(ln)

	// Create the series through the API, as agents would: one warm-up round of every series.
	if err := b.pushRound(ctx, 0, n, n); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	rows, err := pool.Query(ctx, "SELECT id FROM app.series WHERE tenant_id = $1 ORDER BY id", b.tenantID)
	if err != nil {
		return nil, err
	}
	b.series, err = pgx.CollectRows(rows, pgx.RowTo[int64])
	return b, err
}

func (b *bench) close() {
	_ = b.srv.Close()
	b.stop()
	<-b.done
}

// rawCopy measures pgx CopyFrom from 2 connections in 10,000-row batches into ts.samples.
func (b *bench) rawCopy(ctx context.Context, d time.Duration) (float64, error) {
	const batch = 10_000
	var total atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	tid := pgtype.UUID{Bytes: b.tenantID, Valid: true}
	start := time.Now()
	for range 2 {
		wg.Go(func() {
			conn, err := b.pool.Acquire(ctx)
			if err != nil {
				errs <- err
				return
			}
			defer conn.Release()
			rows := make([][]any, batch)
			for time.Now().Before(deadline) {
				for i := range rows {
					rows[i] = []any{time.UnixMicro(b.rawClock.Add(1)), tid, b.series[i%len(b.series)], float64(i)}
				}
				if _, err := conn.CopyFrom(ctx, pgx.Identifier{"ts", "samples"}, []string{"time", "tenant_id", "series_id", "value"},
					pgx.CopyFromRows(rows)); err != nil {
					errs <- err
					return
				}
				total.Add(batch)
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return float64(total.Load()) / time.Since(start).Seconds(), nil
}

// httpIngest measures end-to-end pushes: agents goroutines, each sending pushes of size samples (one
// point each of size different series) until the time is up, waiting for each answer.
func (b *bench) httpIngest(ctx context.Context, agents, size int, d time.Duration) (float64, error) {
	var total atomic.Int64
	var failed atomic.Value
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for a := range agents {
		wg.Go(func() {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
			offset := a * size
			for time.Now().Before(deadline) {
				ms := b.pushClock.Add(1)
				body := pushBody(offset, size, len(b.series), ms)
				req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+b.addr+"/api/v1/ingest", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+b.key)
				resp, err := client.Do(req)
				if err != nil {
					failed.Store(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Store(fmt.Errorf("push answered %s", resp.Status))
					return
				}
				total.Add(int64(size))
				offset = (offset + agents*size) % len(b.series)
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		return 0, err
	}
	return float64(total.Load()) / time.Since(start).Seconds(), nil
}

// pushRound sends one point of every series, in pushes of size.
func (b *bench) pushRound(ctx context.Context, offset, size, n int) error {
	ms := b.pushClock.Add(1)
	for o := offset; o < offset+n; o += size {
		req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+b.addr+"/api/v1/ingest",
			bytes.NewReader(pushBody(o, min(size, offset+n-o), n, ms)))
		req.Header.Set("Authorization", "Bearer "+b.key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", resp.Status, msg)
		}
	}
	return nil
}

// pushBody is a JSON push of one point for each of size series starting at offset (modulo n). It is
// written by hand: the load generator shares the machine with the server, so it must cost little.
func pushBody(offset, size, n int, ms int64) []byte {
	buf := make([]byte, 0, size*80)
	buf = append(buf, `{"metrics":[`...)
	for i := range size {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"name":"bench.metric","labels":{"series":"s`...)
		buf = strconv.AppendInt(buf, int64((offset+i)%n), 10)
		buf = append(buf, `"},"points":[[`...)
		buf = strconv.AppendInt(buf, ms, 10)
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, int64(i), 10)
		buf = append(buf, `.5]]}`...)
	}
	return append(buf, `]}`...)
}

// throwawayCluster starts PostgreSQL in a temporary directory with durable settings.
// openDatabase connects to url, or to a throwaway cluster when url is empty, migrates it to flavor and
// returns a pool, the flavor built, the server's version and a function that closes it all.
func openDatabase(ctx context.Context, url, flavor string) (*pgxpool.Pool, db.Flavor, string, func(), error) {
	f, err := db.ParseFlavor(flavor)
	if err != nil {
		return nil, "", "", nil, err
	}
	stop := func() {}
	if url == "" {
		if url, stop, err = throwawayCluster(ctx); err != nil {
			return nil, "", "", nil, fmt.Errorf("start PostgreSQL: %w", err)
		}
	}
	built, err := db.NewMigrator(url).Up(ctx, f)
	if err != nil {
		stop()
		return nil, "", "", nil, fmt.Errorf("migrate: %w", err)
	}
	pool, err := db.Open(ctx, db.Config{URL: url, MaxConns: 16})
	if err != nil {
		stop()
		return nil, "", "", nil, err
	}
	var version string
	_ = pool.QueryRow(ctx, "SELECT current_setting('server_version') || coalesce(' + TimescaleDB ' || "+
		"(SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'), '')").Scan(&version)
	return pool, built, version, func() { pool.Close(); stop() }, nil
}

func throwawayCluster(ctx context.Context) (string, func(), error) {
	// Durable (fsync and synchronous_commit stay on); no checkpoint during a run; new WAL segments are
	// not zero-filled first, which only changes how fast they are created.
	return pgcluster.StartThrowaway(ctx, map[string]string{"shared_buffers": "1GB", "max_wal_size": "8GB",
		"checkpoint_timeout": "30min", "wal_init_zero": "off"})
}
