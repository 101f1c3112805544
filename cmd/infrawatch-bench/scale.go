package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/infrawatch/infrawatch/internal/auth"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/pgcluster"
	"github.com/infrawatch/infrawatch/internal/tenant"
)

// runScale is `infrawatch-bench scale`: one box holding --hosts × --series-per-host active series (the
// issue's 10,000 × 100 = one million at 10 s, 100,000 samples/s offered), pushed by --agents simulated
// agents from a load generator of its own (scale_load.go), into a real `infrawatch serve --roles
// api,ingest,scheduler` process built from this tree — so rollup refreshes, retention and the storage
// jobs run as in production — while --dashboards dashboard clients query it. In order:
//
//  1. series creation: --new-series series of hosts never seen (a fleet restart: one push per host, all
//     agents at once), then the rest of the series the same way; series created per second of each;
//  2. the raw COPY baseline: pgx CopyFrom into ts.samples for --copy-duration, on this same database,
//     into a day of its own that is dropped afterwards, so that the rollups do not fold it in later;
//  3. the steady phase: the open-loop load for one interval of warm-up and --duration measured, with the
//     dashboards; at its start and end the bench reads the server's samples counter, the WAL position, the
//     CPU time and memory of every process (the server, the load generator, itself and every PostgreSQL
//     process) and the data directory's disk;
//  4. storage: ts.samples' bytes per sample of the load's rows, then (timescale) compressed.
//
// It prints a table of every figure with the goal beside it, and a verdict — which resource ran
// out, from the figures — and exits 1 only when the run could not be made.
//
//	go run ./cmd/infrawatch-bench scale [--flavor postgres] [--hosts 10000] [--series-per-host 100] [--interval 10s]
//	    [--agents 1000] [--duration 10m] [--new-series 100000] [--dashboards 4]
func runScale(args []string) int {
	fs := flag.NewFlagSet("infrawatch-bench scale", flag.ContinueOnError)
	cfg := scaleConfig{}
	fs.StringVar(&cfg.databaseURL, "database-url", "", "superuser URL of an empty database on this machine (default: start a throwaway cluster)")
	fs.StringVar(&cfg.flavor, "flavor", "", "storage flavor: timescale or postgres (default: detect)")
	fs.IntVar(&cfg.hosts, "hosts", 10000, "hosts, each pushing --series-per-host series every --interval")
	fs.IntVar(&cfg.seriesPerHost, "series-per-host", 100, "series per host (one push carries one point of each)")
	fs.DurationVar(&cfg.interval, "interval", 10*time.Second, "how often every host pushes")
	fs.IntVar(&cfg.agents, "agents", 1000, "concurrent simulated agents; each owns hosts/agents hosts")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Minute, "the steady phase measured (after one interval of warm-up)")
	fs.IntVar(&cfg.newSeries, "new-series", 100000, "series that appear at once in the fleet-restart measurement (whole hosts)")
	fs.IntVar(&cfg.dashboards, "dashboards", 4, "concurrent dashboard clients during the steady phase")
	fs.DurationVar(&cfg.copyDuration, "copy-duration", 30*time.Second, "how long the raw COPY baseline runs")
	fs.DurationVar(&cfg.think, "think", 250*time.Millisecond, "a dashboard client's pause between two rounds of queries")
	fs.BoolVar(&cfg.gzip, "gzip", true, "the agents gzip their pushes, as infrawatch-agent does")
	fs.IntVar(&cfg.fullDaySeries, "full-day-series", 1000, "series of the whole-day storage measurement (a day at --interval each, by raw COPY; 0 skips it)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg.newHosts = min(cfg.hosts, max(1, cfg.newSeries/max(1, cfg.seriesPerHost)))
	if cfg.hosts < 1 || cfg.seriesPerHost < 1 || cfg.agents < 1 || cfg.interval < time.Second || cfg.duration <= 0 {
		fmt.Fprintln(os.Stderr, "scale: --hosts, --series-per-host and --agents must be positive, --interval at least 1s")
		return 2
	}
	// Ctrl-C (or SIGTERM) ends the run through the same deferred clean-up as an error: the server and
	// the load generator are stopped, the throwaway cluster removed.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	s := &scaleRun{cfg: cfg}
	if err := s.run(ctx); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("interrupted (%w)", err)
		}
		fmt.Fprintln(os.Stderr, "scale:", err)
		return 1
	}
	return 0
}

type scaleConfig struct {
	databaseURL, flavor                     string
	hosts, seriesPerHost, agents            int
	newSeries, newHosts, dashboards         int
	fullDaySeries                           int
	interval, duration, copyDuration, think time.Duration
	gzip                                    bool
}

func (c scaleConfig) series() int { return c.hosts * c.seriesPerHost }

// offered is the samples per second the schedule offers.
func (c scaleConfig) offered() float64 { return float64(c.series()) / c.interval.Seconds() }

// scaleRun is one run: its database, server, load generator and what it measured.
type scaleRun struct {
	cfg       scaleConfig
	pool      *pgxpool.Pool
	flavor    db.Flavor
	tenantID  uuid.UUID
	ingestKey string
	readKeys  []string
	bin       string // the infrawatch binary
	server    *exec.Cmd
	serverOut chan struct{} // closed when the server process has exited
	addr      string
	machine   *machine

	// results
	gc                      gcTrace
	burst, rest             *loadReport
	burstSeries, restSeries int64
	copyRate                float64
	steady                  *loadReport
	before, after           snapshot
	heapMin                 float64 // MB live after the collection of the steady phase that left the least
	serverRSSMax            float64
	dash                    dashboardResult
	rows                    int64   // load rows in ts.samples at the end
	acceptedTotal           float64 // samples the server accepted in all, once the load ended
	bytesRaw, bytesPacked   int64
	compressTime            time.Duration
	fullDay                 fullDayStorage
}

// fullDayStorage is the storage of a whole day of some series, as a day's chunk holds it in production.
type fullDayStorage struct {
	series                      int
	rows, bytesRaw, bytesPacked int64
	compressTime                time.Duration
}

func (s *scaleRun) run(ctx context.Context) error {
	cfg := s.cfg
	pool, built, version, closeDB, err := openDatabase(ctx, cfg.databaseURL, cfg.flavor)
	if err != nil {
		return err
	}
	defer closeDB()
	s.pool, s.flavor = pool, built
	fmt.Printf("infrawatch scale benchmark: %s flavor, PostgreSQL %s, %d CPUs (%s), %s of memory\n", built, version,
		runtime.NumCPU(), cpuModel(), gib(memTotal()))
	fmt.Printf("%d hosts × %d series = %d active series every %s (%.0f samples/s offered) from %d agents (a process of their own), "+
		"%d dashboard clients; fleet restart of %d series; steady phase %s after %s of warm-up\n\n",
		cfg.hosts, cfg.seriesPerHost, cfg.series(), cfg.interval, cfg.offered(), cfg.agents, cfg.dashboards,
		cfg.newHosts*cfg.seriesPerHost, cfg.duration, cfg.interval)

	if !step("create the tenant and its keys", func() error { return s.setupTenant(ctx) }) {
		return errors.New("setup failed")
	}
	if !step("build infrawatch", func() error { s.bin, err = buildServer(); return err }) {
		return errors.New("build failed")
	}
	defer os.RemoveAll(filepath.Dir(s.bin))
	if !step("start infrawatch serve (api,ingest,scheduler)", func() error { return s.startServer(ctx) }) {
		return errors.New("the server did not start")
	}
	defer s.stopServer()
	if s.machine, err = newMachine(ctx, pool); err != nil {
		return err
	}

	// 1. Series creation.
	tick := time.Now().Truncate(cfg.interval).Add(-cfg.interval)
	firstTick := tick
	if s.burst, s.burstSeries, err = s.createSeries(ctx, 0, cfg.newHosts, tick); err != nil {
		return err
	}
	if cfg.newHosts < cfg.hosts {
		if s.rest, s.restSeries, err = s.createSeries(ctx, cfg.newHosts, cfg.hosts, tick); err != nil {
			return err
		}
	}

	// 2. The raw COPY baseline.
	if !step(fmt.Sprintf("raw COPY baseline, %s", cfg.copyDuration), func() error { return s.rawCopyBaseline(ctx) }) {
		return errors.New("raw COPY failed")
	}
	fmt.Fprintf(os.Stderr, "  %.0f samples/s\n", s.copyRate)

	// 3. The steady phase.
	if err := s.steadyPhase(ctx); err != nil {
		return err
	}
	s.stopServer()

	// 4. Storage.
	if !step("count the load's rows and measure ts.samples", func() error { return s.measureStorage(ctx, firstTick) }) {
		return errors.New("storage measurement failed")
	}
	if cfg.fullDaySeries > 0 && !step(fmt.Sprintf("a whole day of %d series: write, measure, compress", cfg.fullDaySeries),
		func() error { return s.measureFullDay(ctx) }) {
		return errors.New("the whole-day storage measurement failed")
	}
	s.printReport()
	return nil
}

func (s *scaleRun) setupTenant(ctx context.Context) error {
	created, err := tenant.Create(ctx, db.NewSystem(s.pool), tenant.NewTenant{Name: "scale-" + uuid.NewString()[:8],
		AdminEmail: "scale@bench.invalid", AdminPassword: "bench-password-long"})
	if err != nil {
		return err
	}
	s.tenantID = created.TenantID
	// Limits far above the run: what is measured is the machine, not the tenant's quota.
	if _, err := s.pool.Exec(ctx, `UPDATE app.tenants SET max_series = $2, ingest_rate = 1000000000, ingest_burst = 1000000000 WHERE id = $1`,
		s.tenantID, s.cfg.series()+s.cfg.newHosts*s.cfg.seriesPerHost+1000); err != nil {
		return err
	}
	newKey := func(name, scope string) (string, error) {
		key, prefix, hash, err := auth.NewAPIKey()
		if err != nil {
			return "", err
		}
		_, err = s.pool.Exec(ctx, `INSERT INTO app.api_keys (tenant_id, name, prefix, secret_hash, scopes) VALUES ($1, $2, $3, $4, ARRAY[$5])`,
			s.tenantID, name, prefix, hash, scope)
		return key, err
	}
	if s.ingestKey, err = newKey("agents", "ingest"); err != nil {
		return err
	}
	// A read key per dashboard client: each client is a person, with the API's per-credential rate limit
	// (50 requests/s by default) of their own.
	for i := range max(1, s.cfg.dashboards) {
		key, err := newKey(fmt.Sprintf("dashboard-%d", i), "read")
		if err != nil {
			return err
		}
		s.readKeys = append(s.readKeys, key)
	}
	return nil
}

// scaleSecretKey seals secrets at rest; the run stores none, but serve requires a key.
const scaleSecretKey = "bench:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

func (s *scaleRun) startServer(ctx context.Context) error {
	port, err := pgcluster.FreePort()
	if err != nil {
		return err
	}
	s.addr = "127.0.0.1:" + strconv.Itoa(port)
	u, err := url.Parse(s.pool.Config().ConnString())
	if err != nil {
		return err
	}
	q := u.Query()
	q.Set("application_name", "infrawatch-scale")
	u.RawQuery = q.Encode()
	// 24 connections: 2 ingest writers, series creation, the dashboards' reads and the scheduler's jobs.
	cmd := exec.Command(s.bin, "serve", "--database-url", u.String(), "--listen", s.addr, "--log-level", "warn",
		"--roles", "api,ingest,scheduler", "--database-max-conns", "24", "--console=false")
	// gctrace=1: the runtime prints the live heap after every garbage collection, the one measure of the
	// series cache's memory that garbage not yet collected does not blur (heap in use on /metrics does:
	// a 20,000-series smoke run measured −2,678 bytes per series with it).
	cmd.Env = append(os.Environ(), "INFRAWATCH_SECRET_KEY="+scaleSecretKey, "GODEBUG=gctrace=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	cmd.Stdout = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // dies with the bench, whatever happens to it
	if err := cmd.Start(); err != nil {
		return err
	}
	s.server, s.serverOut = cmd, make(chan struct{})
	read := make(chan struct{})
	go func() { s.gc.read(stderr); close(read) }()
	go func() { <-read; _ = cmd.Wait(); close(s.serverOut) }()
	return waitServerReady(ctx, s.addr, s.serverOut, time.Minute)
}

// stopServer asks the server to shut down and waits for it (SIGKILL after 30 s). It may run twice.
func (s *scaleRun) stopServer() {
	if s.server == nil {
		return
	}
	_ = s.server.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.serverOut:
	case <-time.After(30 * time.Second):
		_ = s.server.Process.Kill()
		<-s.serverOut
	}
	s.server = nil
}

// waitServerReady polls /readyz until it answers 200, the process exits or the limit passes.
func waitServerReady(ctx context.Context, addr string, exited <-chan struct{}, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/readyz", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s/readyz did not answer 200 within %s", addr, limit)
		}
		select {
		case <-exited:
			return errors.New("the server exited")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// loadProcess is a running `infrawatch-bench scale-load`.
type loadProcess struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser // closing it lets the process report and exit
	stdout bytes.Buffer
	done   chan error
}

// startLoad runs the load generator with args.
func (s *scaleRun) startLoad(args ...string) (*loadProcess, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args = append([]string{"scale-load", "--addr", s.addr, "--series-per-host", strconv.Itoa(s.cfg.seriesPerHost),
		"--interval", s.cfg.interval.String(), "--agents", strconv.Itoa(s.cfg.agents), "--gzip=" + strconv.FormatBool(s.cfg.gzip)}, args...)
	p := &loadProcess{cmd: exec.Command(self, args...), done: make(chan error, 1)}
	// The key goes through the environment, not the command line that ps shows.
	p.cmd.Env = append(os.Environ(), "INFRAWATCH_BENCH_KEY="+s.ingestKey)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, os.Stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { p.done <- p.cmd.Wait() }()
	return p, nil
}

// wait waits for the load generator's report; when ctx ends first, it kills the process.
func (p *loadProcess) wait(ctx context.Context) (*loadReport, error) {
	p.stdin.Close()
	select {
	case err := <-p.done:
		if err != nil {
			return nil, fmt.Errorf("load generator: %w", err)
		}
	case <-ctx.Done():
		_ = p.cmd.Process.Kill()
		<-p.done
		return nil, ctx.Err()
	}
	var r loadReport
	if err := json.Unmarshal(p.stdout.Bytes(), &r); err != nil {
		return nil, fmt.Errorf("load generator's report: %w (%q)", err, p.stdout.String())
	}
	return &r, nil
}

// createSeries pushes one tick of hosts [from, to), all agents at once, and checks that app.series grew
// by exactly their series.
func (s *scaleRun) createSeries(ctx context.Context, from, to int, tick time.Time) (*loadReport, int64, error) {
	countSeries := func() (n int64, err error) {
		err = s.pool.QueryRow(ctx, "SELECT count(*) FROM app.series WHERE tenant_id = $1", s.tenantID).Scan(&n)
		return n, err
	}
	before, err := countSeries()
	if err != nil {
		return nil, 0, err
	}
	started := time.Now()
	p, err := s.startLoad("--mode", "burst", "--hosts-from", strconv.Itoa(from), "--hosts-to", strconv.Itoa(to),
		"--tick", strconv.FormatInt(tick.UnixMilli(), 10))
	if err != nil {
		return nil, 0, err
	}
	r, err := p.wait(ctx)
	if err != nil {
		return nil, 0, err
	}
	after, err := countSeries()
	if err != nil {
		return nil, 0, err
	}
	created := after - before
	want := int64((to - from) * s.cfg.seriesPerHost)
	fmt.Fprintf(os.Stderr, "%-50s %8s\n", fmt.Sprintf("create %d series of %d hosts", want, to-from), time.Since(started).Round(10*time.Millisecond))
	fmt.Fprintf(os.Stderr, "  %d series created in %.2f s (%.0f/s), push p99 %s, answers %v\n", created, r.WallSeconds,
		float64(created)/r.WallSeconds, seconds(r.LatencyP99/1000), r.Statuses)
	if created != want {
		return nil, 0, fmt.Errorf("app.series grew by %d, want %d (answers %v, first error %q)", created, want, r.Statuses, r.FirstError)
	}
	return r, created, nil
}

// rawCopyBaseline runs rawCopy (main.go) into the tenant's series 3 days back, then drops that day.
func (s *scaleRun) rawCopyBaseline(ctx context.Context) error {
	rows, err := s.pool.Query(ctx, "SELECT id FROM app.series WHERE tenant_id = $1 ORDER BY id", s.tenantID)
	if err != nil {
		return err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return err
	}
	b := &bench{pool: s.pool, tenantID: s.tenantID, series: ids}
	// A microsecond per row from 3 days ago: no collision with the load's timestamps, and a day of its
	// own, whole, so that it can be dropped.
	copyStart := time.Now().Add(-72 * time.Hour).Truncate(24 * time.Hour)
	b.rawClock.Store(copyStart.UnixMicro())
	if s.copyRate, err = b.rawCopy(ctx, s.cfg.copyDuration); err != nil {
		return err
	}
	// Dropped at once, so that the rollups' refresh does not spend the steady phase folding it in.
	if s.flavor == db.FlavorTimescale {
		_, err = s.pool.Exec(ctx, "SELECT drop_chunks('ts.samples', older_than => $1::timestamptz)", copyStart.Add(36*time.Hour))
		return err
	}
	var partition string
	if err := s.pool.QueryRow(ctx, `SELECT format('%I.%I', n.nspname, c.relname) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE i.inhparent = 'ts.samples'::regclass AND c.relname = 'samples_p' || to_char($1::timestamptz AT TIME ZONE 'UTC', 'YYYYMMDD"t"HH24MISS')`,
		copyStart.UTC().Truncate(24*time.Hour)).Scan(&partition); err != nil {
		return fmt.Errorf("the raw COPY's partition: %w", err)
	}
	_, err = s.pool.Exec(ctx, "TRUNCATE "+partition)
	return err
}

// steadyPhase runs the open-loop load with the dashboards and reads the machine at its start and end.
func (s *scaleRun) steadyPhase(ctx context.Context) error {
	cfg := s.cfg
	start := time.Now().Add(2 * time.Second).Truncate(cfg.interval).Add(cfg.interval)
	measureFrom := start.Add(cfg.interval)
	stop := measureFrom.Add(cfg.duration)
	ms := func(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }
	fmt.Fprintf(os.Stderr, "%-50s %8s\n", "steady phase: warm-up from "+start.Format(time.TimeOnly), cfg.interval)
	p, err := s.startLoad("--mode", "steady", "--hosts-from", "0", "--hosts-to", strconv.Itoa(cfg.hosts),
		"--start", ms(start), "--measure-from", ms(measureFrom), "--stop", ms(stop))
	if err != nil {
		return err
	}
	defer func() { _ = p.cmd.Process.Kill() }() // when it has exited already, Kill does nothing
	pids := map[string]int{"server": s.server.Process.Pid, "load generator": p.cmd.Process.Pid, "bench": os.Getpid()}
	// waitUntil waits for t, failing when a process exits first — except the load generator at the end,
	// which may finish a moment before stop when its last pushes were answered.
	waitUntil := func(t time.Time) error {
		loadDone := p.done
		for {
			select {
			case <-time.After(time.Until(t)):
				return nil
			case err := <-loadDone:
				p.done <- err
				if err != nil || !t.Equal(stop) {
					return fmt.Errorf("the load generator exited early (%v)", err)
				}
				loadDone = nil
			case <-s.serverOut:
				return errors.New("the server exited")
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	if err := waitUntil(measureFrom); err != nil {
		return err
	}
	if s.before, err = s.machine.snapshot(ctx, s.addr, pids); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%-50s %8s\n", "steady phase: measured from "+measureFrom.Format(time.TimeOnly), cfg.duration)

	// The dashboards, and a sampler of the server's RSS every 2 s.
	dctx, stopDashboards := context.WithCancel(ctx)
	var wg sync.WaitGroup
	s.dash = dashboardResult{errors: map[string]int{}}
	for i := range cfg.dashboards {
		wg.Go(func() { s.dashboard(dctx, s.readKeys[i]) })
	}
	wg.Go(func() {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-dctx.Done():
				return
			case <-t.C:
			}
			if rss, err := procRSS(s.server.Process.Pid); err == nil {
				s.serverRSSMax = max(s.serverRSSMax, rss)
			}
		}
	})
	err = waitUntil(stop)
	if err == nil {
		s.after, err = s.machine.snapshot(ctx, s.addr, pids)
	}
	stopDashboards()
	wg.Wait()
	if err != nil {
		return err
	}
	s.heapMin = s.gc.lowestSince(s.before.at)
	if s.steady, err = p.wait(ctx); err != nil {
		return err
	}
	// Everything the server accepted, the warm-up's and the last answers' too, for the check of the rows.
	m, err := scrape(ctx, s.addr)
	s.acceptedTotal = m["infrawatch_ingest_samples_accepted_total"]
	return err
}

// dashboardResult is what the dashboard clients measured.
type dashboardResult struct {
	mu        sync.Mutex
	latencies []float64 // ms
	errors    map[string]int
	first     string
}

// dashboard is one person watching host dashboards: one host at random, its load over the last hour
// (raw samples), its CPU over the last 24 hours (5-minute buckets) and its latest memory use, then a
// pause, until ctx ends.
func (s *scaleRun) dashboard(ctx context.Context, key string) {
	client := &http.Client{Timeout: time.Minute}
	pause := time.NewTimer(0)
	defer pause.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-pause.C:
		}
		host := hostName(rand.IntN(s.cfg.hosts))
		now := time.Now()
		ms := func(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }
		for _, q := range []string{
			"/api/v1/query/range?" + url.Values{"metric": {"load.1m"}, "host": {host}, "from": {ms(now.Add(-time.Hour))}, "to": {ms(now)},
				"step": {"auto"}}.Encode(),
			"/api/v1/query/range?" + url.Values{"metric": {"cpu.usage_pct"}, "host": {host}, "from": {ms(now.Add(-24 * time.Hour))},
				"to": {ms(now)}, "step": {"5m"}, "agg": {"avg"}}.Encode(),
			"/api/v1/query/latest?" + url.Values{"metric": {"mem.used_bytes"}, "host": {host}}.Encode(),
		} {
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+s.addr+q, nil)
			req.Header.Set("Authorization", "Bearer "+key)
			began := time.Now()
			resp, err := client.Do(req)
			if ctx.Err() != nil {
				return // the phase ended during the query: not counted
			}
			status := "error"
			var body []byte
			if err == nil {
				body, err = io.ReadAll(resp.Body)
				resp.Body.Close()
				if err == nil {
					status = strconv.Itoa(resp.StatusCode)
				}
			}
			took := msOf(time.Since(began))
			s.dash.mu.Lock()
			if status == "200" {
				s.dash.latencies = append(s.dash.latencies, took)
			} else {
				s.dash.errors[status]++
				if s.dash.first == "" {
					s.dash.first = fmt.Sprintf("%s: %v %.200s", q, err, body)
				}
			}
			s.dash.mu.Unlock()
		}
		pause.Reset(s.cfg.think)
	}
}

// measureStorage counts the rows the load stored and measures what they take in ts.samples: the chunks
// (timescale) or partitions (postgres) from the load's first day on, with their indexes, then, in the
// timescale flavor, the same chunks compressed as the compression policy would compress them.
func (s *scaleRun) measureStorage(ctx context.Context, firstTick time.Time) error {
	if err := s.pool.QueryRow(ctx, "SELECT count(*) FROM ts.samples WHERE tenant_id = $1 AND time >= $2", s.tenantID, firstTick).
		Scan(&s.rows); err != nil {
		return err
	}
	if s.flavor == db.FlavorTimescale {
		const chunks = `SELECT format('%I.%I', chunk_schema, chunk_name) FROM timescaledb_information.chunks
			WHERE hypertable_schema = 'ts' AND hypertable_name = 'samples' AND range_end > $1`
		if err := s.pool.QueryRow(ctx, `SELECT coalesce(sum(total_bytes), 0)::bigint FROM chunks_detailed_size('ts.samples')
			WHERE format('%I.%I', chunk_schema, chunk_name) IN (`+chunks+`)`, firstTick).Scan(&s.bytesRaw); err != nil {
			return err
		}
		started := time.Now()
		if _, err := s.pool.Exec(ctx, `SELECT count(compress_chunk(c::regclass, if_not_compressed => true)) FROM (`+chunks+`) AS x(c)`,
			firstTick); err != nil {
			return fmt.Errorf("compress: %w", err)
		}
		s.compressTime = time.Since(started)
		return s.pool.QueryRow(ctx, `SELECT coalesce(sum(total_bytes), 0)::bigint FROM chunks_detailed_size('ts.samples')
			WHERE format('%I.%I', chunk_schema, chunk_name) IN (`+chunks+`)`, firstTick).Scan(&s.bytesPacked)
	}
	// Partitions are named after their first day (infrawatch.ensure_partitions), so the load's are those
	// from its first tick's day to today's.
	return s.pool.QueryRow(ctx, `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'ts.samples'::regclass
		  AND c.relname BETWEEN 'samples_p' || to_char(date_bin('1 day', $1::timestamptz, 'epoch') AT TIME ZONE 'UTC', 'YYYYMMDD"t"HH24MISS')
		                    AND 'samples_p' || to_char(date_bin('1 day', now(), 'epoch') AT TIME ZONE 'UTC', 'YYYYMMDD"t"HH24MISS')`,
		firstTick).Scan(&s.bytesRaw)
}

// measureFullDay writes a whole day of the first --full-day-series series of the tenant (one row every
// --interval, values of the load's mix: series i moves as series i % series-per-host of host i /
// series-per-host does) by raw COPY into a day of its own four days back, then measures that day's
// chunk (timescale) or partition (postgres) and, in the timescale flavor, compresses it. A short
// steady phase leaves a few dozen rows per series in its chunk, where compression (per series) cannot
// show what it does to a production day of 8,640 rows per series; this can.
func (s *scaleRun) measureFullDay(ctx context.Context) error {
	rows, err := s.pool.Query(ctx, "SELECT id FROM app.series WHERE tenant_id = $1 ORDER BY id LIMIT $2", s.tenantID, s.cfg.fullDaySeries)
	if err != nil {
		return err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return errors.New("the tenant has no series")
	}
	s.fullDay.series = len(ids)
	day := time.Now().UTC().Truncate(24 * time.Hour).Add(-4 * 24 * time.Hour)
	catalog := seriesCatalog(s.cfg.seriesPerHost)
	perDay := int(24 * time.Hour / s.cfg.interval)
	tenant := pgtype.UUID{Bytes: s.tenantID, Valid: true}
	row, tick := 0, 0 // rows go out tick by tick, every series at each, as pushes arrive
	values := make([]any, 4)
	n, err := s.pool.CopyFrom(ctx, pgx.Identifier{"ts", "samples"}, []string{"time", "tenant_id", "series_id", "value"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if tick == perDay {
				return nil, nil
			}
			at := day.Add(time.Duration(tick) * s.cfg.interval)
			h, spec := row/s.cfg.seriesPerHost, row%s.cfg.seriesPerHost
			values[0], values[1], values[2], values[3] = at, tenant, ids[row], catalog[spec].value(h, spec, at.UnixMilli())
			if row++; row == len(ids) {
				row, tick = 0, tick+1
			}
			return values, nil
		}))
	if err != nil {
		return fmt.Errorf("write the day: %w", err)
	}
	s.fullDay.rows = n
	if s.flavor != db.FlavorTimescale {
		return s.pool.QueryRow(ctx, `SELECT pg_total_relation_size(format('ts.%I', 'samples_p' || to_char($1::timestamptz AT TIME ZONE 'UTC',
			'YYYYMMDD"t"HH24MISS'))::regclass)`, day).Scan(&s.fullDay.bytesRaw)
	}
	const size = `SELECT coalesce(sum(d.total_bytes), 0)::bigint FROM chunks_detailed_size('ts.samples') d
		JOIN timescaledb_information.chunks c ON c.chunk_schema = d.chunk_schema AND c.chunk_name = d.chunk_name
		WHERE c.hypertable_schema = 'ts' AND c.hypertable_name = 'samples' AND c.range_start = $1`
	if err := s.pool.QueryRow(ctx, size, day).Scan(&s.fullDay.bytesRaw); err != nil {
		return err
	}
	started := time.Now()
	if _, err := s.pool.Exec(ctx, `SELECT compress_chunk(format('%I.%I', chunk_schema, chunk_name)::regclass, if_not_compressed => true)
		FROM timescaledb_information.chunks WHERE hypertable_schema = 'ts' AND hypertable_name = 'samples' AND range_start = $1`, day); err != nil {
		return fmt.Errorf("compress the day: %w", err)
	}
	s.fullDay.compressTime = time.Since(started)
	return s.pool.QueryRow(ctx, size, day).Scan(&s.fullDay.bytesPacked)
}

func (s *scaleRun) printReport() {
	cfg := s.cfg
	before, after := s.before, s.after
	wall := after.at.Sub(before.at).Seconds()
	stored := after.accepted - before.accepted
	sustained := stored / wall
	cores := float64(runtime.NumCPU())
	st := s.steady
	slices.Sort(s.dash.latencies)
	dashErrors := 0
	for _, n := range s.dash.errors {
		dashErrors += n
	}

	fmt.Printf("Steady phase: %s measured, %d pushes of %d samples sent (answers %v), %d dashboard queries (%d failed)\n\n",
		after.at.Sub(before.at).Round(time.Second), st.Pushes, cfg.seriesPerHost, st.Statuses, len(s.dash.latencies)+dashErrors, dashErrors)
	fmt.Printf("| %-66s | %22s | %18s |\n|%s|%s|%s|\n", "measurement", "value", "goal",
		strings.Repeat("-", 68), strings.Repeat("-", 24), strings.Repeat("-", 20))
	row := func(name, value, goal string) { fmt.Printf("| %-66s | %22s | %18s |\n", name, value, goal) }
	row("samples/s offered (hosts × series / interval)", fmt.Sprintf("%.0f", cfg.offered()), "")
	row("samples/s sustained (committed by the server, steady phase)", fmt.Sprintf("%.0f", sustained), fmt.Sprintf("%.0f", cfg.offered()))
	row("  sustained / offered", fmt.Sprintf("%.3f", sustained/cfg.offered()), "1.000")
	row("samples/s of raw COPY (2 connections, 10k-row batches, same run)", fmt.Sprintf("%.0f", s.copyRate), "")
	row("  sustained / raw COPY", fmt.Sprintf("%.2f", sustained/s.copyRate), "")
	row("ingest push latency p50 (send → answer, 1 push = 1 host)", seconds(st.LatencyP50/1000), "")
	row("ingest push latency p99", seconds(st.LatencyP99/1000), "< 1 s")
	row("ingest push latency max", seconds(st.LatencyMax/1000), "")
	row("pushes refused or failed (not 200)", strconv.FormatInt(st.Pushes-st.Statuses["200"], 10), "0")
	row("pushes sent late (> 100 ms after due), lateness p99", fmt.Sprintf("%d, %s", st.LatePushes, seconds(st.LatenessP99/1000)), "0")
	row("samples due but never sent (the generator fell behind)", strconv.FormatInt(st.BehindSamples, 10), "0")
	row("dashboard query latency p50 (range 1 h raw, 24 h 5m, latest)", seconds(percentile(s.dash.latencies, 0.50)/1000), "")
	row("dashboard query latency p99", seconds(percentile(s.dash.latencies, 0.99)/1000), "< 100 ms")
	row("dashboard query latency max", seconds(percentile(s.dash.latencies, 1)/1000), "")
	row("dashboard queries per second (failed)", fmt.Sprintf("%.1f (%d)", float64(len(s.dash.latencies))/wall, dashErrors), "")
	row("series creation, fleet restart (all new, all at once), series/s", fmt.Sprintf("%.0f (%d in %.1f s)",
		float64(s.burstSeries)/s.burst.WallSeconds, s.burstSeries, s.burst.WallSeconds), "")
	if s.rest != nil {
		row("series creation, the rest of the series the same way, series/s", fmt.Sprintf("%.0f (%d in %.1f s)",
			float64(s.restSeries)/s.rest.WallSeconds, s.restSeries, s.rest.WallSeconds), "")
	}
	series := float64(cfg.series())
	// Not less a baseline taken before the first push: start-up holds tens of MB for a while (65 MB live
	// at the collections before the first push of a smoke run, 8 MB in its steady phase), so the
	// difference is noise; the whole live heap over the series is an upper bound instead, and at a
	// million series the server's own few MB add a few bytes to it.
	if s.heapMin >= 0 {
		row("server live heap per series, at most (lowest after GC in steady)", fmt.Sprintf("%.0f B (%.0f MB)", s.heapMin*1e6/series, s.heapMin), "")
	} else {
		row("server live heap per series", "not measured (no collection seen)", "")
	}
	for _, p := range []string{"server", "load generator", "bench", "PostgreSQL"} {
		share := (after.cpu[p] - before.cpu[p]) / wall
		row(fmt.Sprintf("CPU of %s, cores (share of the %d)", map[string]string{"server": "the server", "load generator": "the load generator",
			"bench": "the bench", "PostgreSQL": "PostgreSQL, all processes"}[p], runtime.NumCPU()), fmt.Sprintf("%.2f (%.0f %%)", share, share/cores*100), "")
	}
	total := after.cpuTotal() - before.cpuTotal()
	row("CPU of all of them, cores (share)", fmt.Sprintf("%.2f (%.0f %%)", total/wall, total/wall/cores*100), "")
	row("machine CPU busy, all processes (/proc/stat)", fmt.Sprintf("%.0f %%", after.machineBusyShare(before)*100), "")
	row("RSS of the server (end; highest)", fmt.Sprintf("%s; %s", mib(after.rss["server"]), mib(max(s.serverRSSMax, after.rss["server"]))), "")
	row("RSS of the load generator; of the bench", fmt.Sprintf("%s; %s", mib(after.rss["load generator"]), mib(after.rss["bench"])), "")
	row("PostgreSQL, all processes (sum of PSS: shared buffers once)", mib(after.rss["PostgreSQL"]), "")
	if s.machine.disk != "" {
		d := after.disk.sub(before.disk)
		row(fmt.Sprintf("disk %s: writes MB/s, %%util", s.machine.disk), fmt.Sprintf("%.1f, %.0f %%",
			float64(d.sectorsWritten)*512/1e6/wall, float64(d.busyMs)/10/wall), "")
	} else {
		row("disk writes and %util", "not measured ("+s.machine.diskWhy+")", "")
	}
	row("WAL bytes per sample (all WAL of the steady phase / stored)", fmt.Sprintf("%.1f", float64(after.walBytes-before.walBytes)/stored), "")
	row("ts.samples bytes per sample, uncompressed (with indexes)", fmt.Sprintf("%.1f", float64(s.bytesRaw)/float64(s.rows)), "")
	if s.flavor == db.FlavorTimescale {
		// Compression works per series (segmentby series_id): its ratio depends on how many rows each
		// series has in the chunk, a day's worth (8,640 at 10 s) in production, far fewer in a short run.
		row(fmt.Sprintf("ts.samples bytes per sample, compressed (%.0f rows/series, took %s)", float64(s.rows)/series,
			s.compressTime.Round(100*time.Millisecond)), fmt.Sprintf("%.2f", float64(s.bytesPacked)/float64(s.rows)), "≤ 4")
	} else {
		row("ts.samples bytes per sample, compressed", "no compression (postgres flavor)", "≤ 4")
	}
	if fd := s.fullDay; fd.rows > 0 {
		perSeries := float64(fd.rows) / float64(fd.series)
		row(fmt.Sprintf("a whole day (%.0f rows/series, %d series): bytes/sample uncompressed", perSeries, fd.series),
			fmt.Sprintf("%.1f", float64(fd.bytesRaw)/float64(fd.rows)), "")
		if s.flavor == db.FlavorTimescale {
			row(fmt.Sprintf("a whole day: bytes/sample compressed (took %s)", fd.compressTime.Round(100*time.Millisecond)),
				fmt.Sprintf("%.2f", float64(fd.bytesPacked)/float64(fd.rows)), "≤ 4")
		}
	}
	fmt.Println()
	fmt.Printf("Rows of the load in ts.samples: %d; samples the server accepted in all: %d (%s).\n", s.rows, int64(s.acceptedTotal),
		map[bool]string{true: "they match", false: "they differ"}[int64(s.acceptedTotal) == s.rows])
	fmt.Println("Verdict:", s.verdict(sustained, total/wall))
}

// verdict names what ran out, from the figures: the CPU when the processes kept nearly every core busy
// (and whose share was largest), the disk when it was busy nearly all the time, and the load generator
// when it could not send what the schedule offered.
func (s *scaleRun) verdict(sustained, coresUsed float64) string {
	cores := float64(runtime.NumCPU())
	st := s.steady
	var ran []string
	if busy := s.after.machineBusyShare(s.before); coresUsed >= 0.9*cores || busy >= 0.9 {
		top, topShare := "", 0.0
		for _, p := range []string{"server", "load generator", "bench", "PostgreSQL"} {
			if share := (s.after.cpu[p] - s.before.cpu[p]) / s.after.at.Sub(s.before.at).Seconds(); share > topShare {
				top, topShare = p, share
			}
		}
		if top != "PostgreSQL" {
			top = "the " + top
		}
		ran = append(ran, fmt.Sprintf("CPU ran out (%.0f %% of %d cores busy, %.2f cores by the run's processes; %s used most, %.2f cores)",
			busy*100, runtime.NumCPU(), coresUsed, top, topShare))
	}
	if s.machine.disk != "" {
		d := s.after.disk.sub(s.before.disk)
		if util := float64(d.busyMs) / 10 / s.after.at.Sub(s.before.at).Seconds(); util >= 90 {
			ran = append(ran, fmt.Sprintf("the disk ran out (%.0f %% util)", util))
		}
	}
	// Late by more than a second at p99 (the ingest goal), or due and never sent: behind the schedule.
	if st.BehindSamples > 0 || st.LatenessP99 > 1000 {
		ran = append(ran, fmt.Sprintf("the agents fell behind their schedule (%d samples never sent, %d pushes late, lateness p99 %s)",
			st.BehindSamples, st.LatePushes, seconds(st.LatenessP99/1000)))
	}
	goals := sustained >= 0.99*s.cfg.offered() && st.LatencyP99 < 1000 && percentile(s.dash.latencies, 0.99) < 100 && st.Pushes == st.Statuses["200"]
	switch {
	case goals && len(ran) == 0:
		return fmt.Sprintf("goals met: %.0f of %.0f samples/s offered, ingest p99 %s, dashboard p99 %s; nothing ran out",
			sustained, s.cfg.offered(), seconds(st.LatencyP99/1000), seconds(percentile(s.dash.latencies, 0.99)/1000))
	case len(ran) == 0:
		return fmt.Sprintf("a goal was missed (%.0f of %.0f samples/s, ingest p99 %s, dashboard p99 %s) with CPU, disk and the agents short of their limits: "+
			"look at the server's locks and connections", sustained, s.cfg.offered(), seconds(st.LatencyP99/1000), seconds(percentile(s.dash.latencies, 0.99)/1000))
	default:
		prefix := "goals met, but "
		if !goals {
			prefix = fmt.Sprintf("%.0f of %.0f samples/s offered, ingest p99 %s, dashboard p99 %s: ", sustained, s.cfg.offered(),
				seconds(st.LatencyP99/1000), seconds(percentile(s.dash.latencies, 0.99)/1000))
		}
		return prefix + strings.Join(ran, "; ")
	}
}

// machine is what the bench reads of this machine: the PostgreSQL processes and the data directory's disk.
type machine struct {
	pool       *pgxpool.Pool
	postmaster int    // 0 when the database is not on this machine
	disk       string // the data directory's block device in /proc/diskstats, "" when not found
	diskWhy    string
	diskDev    [2]uint64 // major, minor
}

func newMachine(ctx context.Context, pool *pgxpool.Pool) (*machine, error) {
	m := &machine{pool: pool}
	var dataDir string
	if err := pool.QueryRow(ctx, "SELECT current_setting('data_directory')").Scan(&dataDir); err != nil {
		return nil, err
	}
	if pidFile, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid")); err == nil {
		first, _, _ := strings.Cut(string(pidFile), "\n")
		m.postmaster, _ = strconv.Atoi(strings.TrimSpace(first))
	}
	if m.postmaster == 0 {
		return nil, fmt.Errorf("PostgreSQL's postmaster.pid in %s cannot be read: the database must run on this machine", dataDir)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dataDir, &st); err != nil {
		m.diskWhy = err.Error()
		return m, nil
	}
	major, minor := (st.Dev>>8)&0xfff|(st.Dev>>32)&^0xfff, st.Dev&0xff|(st.Dev>>12)&^0xff
	m.diskDev = [2]uint64{major, minor}
	stats, err := readDiskstats()
	if err != nil {
		m.diskWhy = err.Error()
		return m, nil
	}
	for name, d := range stats {
		if d.major == major && d.minor == minor {
			m.disk = name
		}
	}
	if m.disk == "" {
		m.diskWhy = fmt.Sprintf("device %d:%d of %s is not in /proc/diskstats", major, minor, dataDir)
	}
	return m, nil
}

// snapshot is the machine at a moment.
type snapshot struct {
	at        time.Time
	accepted  float64            // the server's infrawatch_ingest_samples_accepted_total
	walBytes  int64              // pg_current_wal_lsn() in bytes
	cpu       map[string]float64 // CPU seconds by process
	rss       map[string]float64 // bytes by process (PostgreSQL: sum of PSS)
	disk      diskStat
	busy, all float64 // the machine's busy and total CPU ticks (/proc/stat)
}

func (s snapshot) cpuTotal() float64 {
	t := 0.0
	for _, v := range s.cpu {
		t += v
	}
	return t
}

// machineBusyShare is the share of the machine's CPU time that was not idle between b and s, whoever used it.
func (s snapshot) machineBusyShare(b snapshot) float64 {
	if s.all == b.all {
		return 0
	}
	return (s.busy - b.busy) / (s.all - b.all)
}

func (m *machine) snapshot(ctx context.Context, addr string, pids map[string]int) (snapshot, error) {
	s := snapshot{cpu: map[string]float64{}, rss: map[string]float64{}}
	metrics, err := scrape(ctx, addr)
	if err != nil {
		return s, err
	}
	s.accepted = metrics["infrawatch_ingest_samples_accepted_total"]
	s.at = time.Now()
	if err := m.pool.QueryRow(ctx, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint").Scan(&s.walBytes); err != nil {
		return s, err
	}
	for name, pid := range pids {
		if s.cpu[name], err = procCPU(pid); err != nil {
			return s, fmt.Errorf("%s: %w", name, err)
		}
		s.rss[name], _ = procRSS(pid)
	}
	s.cpu["PostgreSQL"], s.rss["PostgreSQL"], err = postgresUsage(m.postmaster)
	if err != nil {
		return s, err
	}
	if m.disk != "" {
		stats, err := readDiskstats()
		if err != nil {
			return s, err
		}
		s.disk = stats[m.disk]
	}
	s.busy, s.all, err = machineCPU()
	return s, err
}

// postgresUsage is the CPU seconds of PostgreSQL — the postmaster, its live children, and the children
// that exited (counted in the postmaster's cutime and cstime once it reaped them) — and the sum of the
// proportional set size of the live ones, which counts shared buffers once rather than once a backend.
func postgresUsage(postmaster int) (cpu, pss float64, err error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", postmaster))
	if err != nil {
		return 0, 0, err
	}
	fields := statFields(string(stat))
	for _, i := range []int{11, 12, 13, 14} { // utime, stime, cutime, cstime
		v, _ := strconv.ParseFloat(fields[i], 64)
		cpu += v / 100 // USER_HZ
	}
	pss, _ = procPSS(postmaster)
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, 0, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue // exited meanwhile
		}
		f := statFields(string(b))
		if ppid, _ := strconv.Atoi(f[1]); ppid != postmaster {
			continue
		}
		u, _ := strconv.ParseFloat(f[11], 64)
		s, _ := strconv.ParseFloat(f[12], 64)
		cpu += (u + s) / 100
		p, _ := procPSS(pid)
		pss += p
	}
	return cpu, pss, nil
}

// statFields are the fields of /proc/PID/stat after the command name (field 3, the state, is index 0).
func statFields(stat string) []string {
	return strings.Fields(stat[strings.LastIndexByte(stat, ')')+2:])
}

// procRSS is VmRSS of a process, in bytes.
func procRSS(pid int) (float64, error) {
	return procStatusKB(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:")
}

// procPSS is the proportional set size of a process, in bytes.
func procPSS(pid int) (float64, error) {
	return procStatusKB(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Pss:")
}

func procStatusKB(path, key string) (float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), key); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("%s: no %s", path, key)
}

// machineCPU is the machine's busy (not idle or iowait) and total CPU ticks, from /proc/stat's cpu line.
func machineCPU() (busy, all float64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	for i, f := range strings.Fields(line)[1:] {
		v, _ := strconv.ParseFloat(f, 64)
		if i >= 8 { // guest time is already in user time
			break
		}
		all += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, all, nil
}

// diskStat is a block device's counters from /proc/diskstats.
type diskStat struct {
	major, minor   uint64
	sectorsWritten uint64 // 512-byte sectors
	busyMs         uint64 // time with I/O in flight
}

func (d diskStat) sub(o diskStat) diskStat {
	return diskStat{major: d.major, minor: d.minor, sectorsWritten: d.sectorsWritten - o.sectorsWritten, busyMs: d.busyMs - o.busyMs}
}

func readDiskstats() (map[string]diskStat, error) {
	b, err := os.ReadFile("/proc/diskstats")
	if err != nil {
		return nil, err
	}
	out := map[string]diskStat{}
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 13 {
			continue
		}
		var d diskStat
		d.major, _ = strconv.ParseUint(f[0], 10, 64)
		d.minor, _ = strconv.ParseUint(f[1], 10, 64)
		d.sectorsWritten, _ = strconv.ParseUint(f[9], 10, 64)
		d.busyMs, _ = strconv.ParseUint(f[12], 10, 64)
		out[f[2]] = d
	}
	return out, nil
}

// scrape reads the server's /metrics, each metric summed over its labels.
func scrape(ctx context.Context, addr string) (map[string]float64, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics answered %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		name := line[:sp]
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name = name[:i]
		}
		if v, err := strconv.ParseFloat(line[sp+1:], 64); err == nil {
			out[name] += v
		}
	}
	return out, sc.Err()
}

func memTotal() float64 {
	v, _ := procStatusKB("/proc/meminfo", "MemTotal:")
	return v
}

func gib(b float64) string { return fmt.Sprintf("%.1f GiB", b/(1<<30)) }
func mib(b float64) string { return fmt.Sprintf("%.0f MiB", b/(1<<20)) }

// gcTrace keeps the live heap the server's runtime reports after each garbage collection (gctrace=1
// lines on its stderr: "gc 12 @3.1s 2%: … 40->42->21 MB, 44 MB goal, …", the third number being what
// the marking found live); every other line goes on to our stderr.
type gcTrace struct {
	mu    sync.Mutex
	times []time.Time
	live  []float64 // MB
}

func (g *gcTrace) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "gc ") || !strings.Contains(line, " MB goal") {
			fmt.Fprintln(os.Stderr, line)
			continue
		}
		// "… 40->42->21 MB, …": the field before the first " MB,".
		head, _, _ := strings.Cut(line, " MB,")
		arrows := strings.Split(head[strings.LastIndexByte(head, ' ')+1:], "->")
		if live, err := strconv.ParseFloat(arrows[len(arrows)-1], 64); err == nil {
			g.mu.Lock()
			g.times, g.live = append(g.times, time.Now()), append(g.live, live)
			g.mu.Unlock()
		}
	}
}

// lowestSince is the least live heap (MB) of the collections since t, −1 when there was none: the one
// nearest to what the series and the server's own state take, with the least of the pushes in flight.
func (g *gcTrace) lowestSince(t time.Time) float64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	lowest := -1.0
	for i, at := range g.times {
		if !at.Before(t) && (lowest < 0 || g.live[i] < lowest) {
			lowest = g.live[i]
		}
	}
	return lowest
}
