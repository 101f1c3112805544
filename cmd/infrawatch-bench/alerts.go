package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/exec"
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
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/infrawatch/infrawatch/internal/alerting"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/pgcluster"
)

// runAlerts is `infrawatch-bench alerts`: the alerter role at the sizes — 10,000 threshold rules
// over 10,000 series sampled every 10 s, 1,000 absent rules and 1,000 check rules, every 60 s — in a
// steady state of --duration after a --warmup, with a real `infrawatch serve --roles alerter` process
// (built from this tree) against its own PostgreSQL. It prints:
//
//   - the alerter process's CPU as a share of one core (utime + stime from /proc, over the steady state);
//   - PostgreSQL's CPU on the alerter's behalf: the backends of its connections (application_name
//     infrawatch-alerter), read from /proc the same way, so the samples writer of this benchmark, the
//     check results it stores and TimescaleDB's jobs are not counted;
//   - evaluation lag (slot → evaluated, app.alert_rules.last_eval_lag_ms of every evaluation of the
//     steady state) p50 and p99;
//   - then, the alerter stopped, one full pass over every rule on one connection without JIT, twice: the
//     set-based way (the alerter's statements over batches of 500 rules) and the naive way (the same
//     statement once per rule), with the wall time and the backend's CPU of each and their ratio.
//
// The load generator (this process) writes 10,000 samples every 10 s and 1,000 check results a minute;
// 1 % of the series breach their threshold for a few minutes at a time, 1 % of the absent rules' series
// stop, and 1 % of the checks go down, so alerts fire, resolve and enqueue notifications. Loading the
// hour of history before the run takes a minute or two; the naive pass, a minute or two more.
//
//	go run ./cmd/infrawatch-bench alerts [--flavor postgres] [--duration 5m] [--warmup 2m]
func runAlerts(args []string) int {
	fs := flag.NewFlagSet("infrawatch-bench alerts", flag.ContinueOnError)
	databaseURL := fs.String("database-url", "", "superuser URL of an empty database to use (default: start a throwaway cluster)")
	flavorName := fs.String("flavor", "", "storage flavor: timescale or postgres (default: detect)")
	hosts := fs.Int("hosts", 1000, "hosts; each has --metrics series")
	metrics := fs.Int("metrics", 10, "series per host")
	absentRules := fs.Int("absent-rules", 1000, "absent rules (one per series)")
	checkRules := fs.Int("check-rules", 1000, "check rules (one per check)")
	tenants := fs.Int("tenants", 10, "tenants the hosts are spread over")
	duration := fs.Duration("duration", 5*time.Minute, "steady state measured")
	warmup := fs.Duration("warmup", 2*time.Minute, "time the alerter runs before the measurement")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx := context.Background()
	pool, built, version, closeDB, err := openDatabase(ctx, *databaseURL, *flavorName)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer closeDB()
	series := *hosts * *metrics
	fmt.Printf("infrawatch alert benchmark: %s flavor, PostgreSQL %s, %d CPUs (%s)\n", built, version, runtime.NumCPU(), cpuModel())
	fmt.Printf("%d threshold rules over %d series sampled every 10 s, %d absent rules, %d check rules, every 60 s, %d tenants; "+
		"steady state %s after %s of warm-up\n\n", series, series, *absentRules, *checkRules, *tenants, *duration, *warmup)

	ab := &alertBench{pool: pool, hosts: *hosts, metrics: *metrics, absent: min(*absentRules, series), checks: *checkRules,
		tenants: *tenants, start: time.Now().Truncate(10 * time.Second)}
	if !step("create tenants, hosts, series, checks and rules", func() error { return ab.setup(ctx) }) ||
		!step("load an hour of samples and check results", func() error { return ab.history(ctx) }) ||
		!step("vacuum and analyze", func() error { _, err := pool.Exec(ctx, "VACUUM ANALYZE"); return err }) {
		return 1
	}
	bin, err := buildServer()
	if err != nil {
		fmt.Fprintln(os.Stderr, "build infrawatch:", err)
		return 1
	}
	defer os.RemoveAll(filepath.Dir(bin))

	genCtx, stopGen := context.WithCancel(ctx)
	defer stopGen()
	genDone := make(chan error, 1)
	go func() { genDone <- ab.generate(genCtx) }()
	dbURL := pool.Config().ConnString()
	alerter, err := startAlerterProcess(bin, dbURL)
	if err != nil {
		stopGen()
		fmt.Fprintln(os.Stderr, "start the alerter:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "%-50s %8s\n", "warm-up", *warmup)
	time.Sleep(*warmup)

	before, err := ab.snapshot(ctx, alerter.Process.Pid)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	lags := []float64{}
	lastSeen := time.Now()
	deadline := time.Now().Add(*duration)
	for time.Now().Before(deadline) {
		time.Sleep(min(10*time.Second, time.Until(deadline)))
		now := time.Now()
		more, err := ab.lags(ctx, lastSeen, now)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		lags, lastSeen = append(lags, more...), now
		_, _ = ab.snapshot(ctx, alerter.Process.Pid) // learn backends that came and went meanwhile
	}
	after, err := ab.snapshot(ctx, alerter.Process.Pid)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	_ = alerter.Process.Signal(syscall.SIGTERM)
	_ = alerter.Wait()
	stopGen()
	if err := <-genDone; err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "load generator:", err)
		return 1
	}
	var transitions, notifications int
	_ = pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM app.alert_events WHERE kind = 'state'), (SELECT count(*) FROM app.notifications)`).
		Scan(&transitions, &notifications)

	wall := after.at.Sub(before.at).Seconds()
	alerterCPU := (after.process - before.process) / wall
	pgCPU := (after.backends - before.backends) / wall
	slices.Sort(lags)
	fmt.Printf("Steady state, %s (%d evaluations, %d alert transitions and %d notifications since the start)\n\n",
		after.at.Sub(before.at).Round(time.Second), len(lags), transitions, notifications)
	fmt.Printf("| %-62s | %12s | %12s |\n|%s|%s|%s|\n", "measurement", "value", "goal", strings.Repeat("-", 64), strings.Repeat("-", 14), strings.Repeat("-", 14))
	row := func(name, value, goal string) { fmt.Printf("| %-62s | %12s | %12s |\n", name, value, goal) }
	row("alerter process CPU, share of one core", pct(alerterCPU), "")
	row("PostgreSQL CPU of the alerter's connections, share of one core", pct(pgCPU), "")
	row("total", pct(alerterCPU+pgCPU), "≤ 25 %")
	row("evaluation lag p50 (slot → evaluated)", seconds(percentile(lags, 0.50)), "")
	row("evaluation lag p99", seconds(percentile(lags, 0.99)), "< 5 s")
	row("evaluations per minute", strconv.Itoa(int(float64(len(lags))/wall*60)), "")
	fmt.Println()

	if !step("vacuum and analyze", func() error { _, err := pool.Exec(ctx, "VACUUM ANALYZE"); return err }) {
		return 1
	}
	set, naive, err := ab.passes(ctx, dbURL)
	if err != nil {
		fmt.Fprintln(os.Stderr, "full passes:", err)
		return 1
	}
	rules := series + ab.absent + ab.checks
	fmt.Printf("One full pass over the %d rules' evaluation statements, on one connection (the same run, the alerter stopped)\n\n", rules)
	fmt.Printf("| %-50s | %10s | %16s | %16s |\n|%s|%s|%s|%s|\n", "", "wall time", "PostgreSQL CPU", "statements", strings.Repeat("-", 52),
		strings.Repeat("-", 12), strings.Repeat("-", 18), strings.Repeat("-", 18))
	fmt.Printf("| %-50s | %10s | %16s | %16d |\n", "set-based: one statement per kind and 500 rules", seconds(set.wall.Seconds()), seconds(set.cpu), set.statements)
	fmt.Printf("| %-50s | %10s | %16s | %16d |\n", "naive: one statement per rule", seconds(naive.wall.Seconds()), seconds(naive.cpu), naive.statements)
	fmt.Printf("| %-50s | %9.1f× | %15.1f× | %16s |\n", "naive / set-based", naive.wall.Seconds()/set.wall.Seconds(), naive.cpu/set.cpu, "")
	return 0
}

func pct(share float64) string { return fmt.Sprintf("%.1f %%", share*100) }

func seconds(s float64) string {
	if s < 1 {
		return fmt.Sprintf("%.0f ms", s*1000)
	}
	return fmt.Sprintf("%.2f s", s)
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}

// cpuModel is the processor's name, for the tables' headings.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// buildServer builds cmd/infrawatch of this tree into a temporary directory.
func buildServer() (string, error) {
	dir, err := os.MkdirTemp("", "infrawatch-bench-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "infrawatch")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/infrawatch").CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("%v: %s (run from the repository's root)", err, out)
	}
	return bin, nil
}

// startAlerterProcess runs `infrawatch serve --roles alerter` with application name infrawatch-alerter.
func startAlerterProcess(bin, dbURL string) (*exec.Cmd, error) {
	u, err := url.Parse(dbURL)
	if err != nil {
		return nil, err
	}
	q := u.Query()
	q.Set("application_name", "infrawatch-alerter")
	u.RawQuery = q.Encode()
	port, err := pgcluster.FreePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "--database-url", u.String(), "--roles", "alerter", "--listen",
		"127.0.0.1:"+strconv.Itoa(port), "--log-level", "warn")
	cmd.Stderr = os.Stderr
	return cmd, cmd.Start()
}

// alertBench holds the benchmark's dataset.
type alertBench struct {
	pool                                    *pgxpool.Pool
	hosts, metrics, absent, checks, tenants int
	start                                   time.Time
	tenantIDs                               []uuid.UUID
	seriesIDs                               []int64
	seriesTenant                            []uuid.UUID
	checkIDs                                []int64
	checkTenant                             []uuid.UUID
	thresholdRules, absentRules, checkRules []int64

	mu      sync.Mutex
	cpuSeen map[int]float64 // CPU seconds of each backend of the alerter, last seen
}

// value is series i's sample at t: 20–60, but for 1 % of the series 95 for 6 minutes every 12 (their
// 5-minute average passes 90 for about two minutes).
func value(i int, t time.Time) float64 {
	if i%100 == 7 && (t.Unix()/60+int64(i))%12 < 6 {
		return 95
	}
	return 20 + float64((int64(i)*7+t.Unix()/10)%40)
}

// silent says whether series i stops sending (1 % of the absent rules' series, once the run started).
func (ab *alertBench) silent(i int, t time.Time) bool {
	return i < ab.absent && i%100 == 3 && t.After(ab.start)
}

func (ab *alertBench) setup(ctx context.Context) error {
	tx, err := ab.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	channels := make([]int64, ab.tenants)
	for i := range ab.tenants {
		var id uuid.UUID
		if err := tx.QueryRow(ctx, `INSERT INTO app.tenants (slug, name) VALUES ($1, $1) RETURNING id`, fmt.Sprintf("bench-%d", i)).Scan(&id); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `INSERT INTO app.channels (tenant_id, name, kind) VALUES ($1, 'ops', 'webhook') RETURNING id`, id).
			Scan(&channels[i]); err != nil {
			return err
		}
		ab.tenantIDs = append(ab.tenantIDs, id)
	}
	for h := range ab.hosts {
		tenant := ab.tenantIDs[h%ab.tenants]
		name := fmt.Sprintf("host-%04d", h)
		var hostID int64
		if err := tx.QueryRow(ctx, `INSERT INTO app.hosts (tenant_id, name, monitored_by) VALUES ($1, $2, 'agent') RETURNING id`,
			tenant, name).Scan(&hostID); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `INSERT INTO app.series (tenant_id, host_id, name, labels)
			SELECT $1, $2, 'metric.' || m, jsonb_build_object('host', $3::text) FROM generate_series(0, $4 - 1) m RETURNING id`,
			tenant, hostID, name, ab.metrics)
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		for range ids {
			ab.seriesTenant = append(ab.seriesTenant, tenant)
		}
		ab.seriesIDs = append(ab.seriesIDs, ids...)
	}
	for c := range ab.checks {
		tenant := ab.tenantIDs[c%ab.tenants]
		var id int64
		if err := tx.QueryRow(ctx, `INSERT INTO app.checks (tenant_id, name, kind, target, next_run_at)
			VALUES ($1, $2, 'tcp', '192.0.2.1:80', 'infinity') RETURNING id`, tenant, fmt.Sprintf("check-%04d", c)).Scan(&id); err != nil {
			return err
		}
		ab.checkIDs, ab.checkTenant = append(ab.checkIDs, id), append(ab.checkTenant, tenant)
	}
	// Rules, compiled as the API compiles them, each due at a random point of its first minute.
	insert := func(tenant uuid.UUID, spec alerting.RuleSpec) (int64, error) {
		c, ps := spec.Compile()
		if len(ps) > 0 {
			return 0, fmt.Errorf("rule %s: %v", spec.Name, ps)
		}
		var id int64
		err := tx.QueryRow(ctx, `INSERT INTO app.alert_rules (tenant_id, name, kind, severity, interval_seconds, repeat_seconds, channels,
				settings, eval, next_eval_at)
			VALUES ($1, $2, $3, 'warning', 60, 14400, $4, $5, $6, now() + random() * interval '60 seconds') RETURNING id`,
			tenant, c.Name, c.Kind, c.Channels, c.Compiled.Settings, c.Eval).Scan(&id)
		return id, err
	}
	tenantIndex := func(t uuid.UUID) int { return slices.Index(ab.tenantIDs, t) }
	for i := range ab.seriesIDs {
		h, m := i/ab.metrics, i%ab.metrics
		spec := alerting.DefaultRule()
		spec.Name, spec.Kind, spec.Channels = fmt.Sprintf("threshold %d", i), "threshold", []int64{channels[tenantIndex(ab.seriesTenant[i])]}
		spec.Settings = []byte(fmt.Sprintf(`{"metric": "metric.%d", "host": "host-%04d", "window": "5m", "agg": "avg", "comparator": ">",
			"threshold": 90}`, m, h))
		id, err := insert(ab.seriesTenant[i], spec)
		if err != nil {
			return err
		}
		ab.thresholdRules = append(ab.thresholdRules, id)
	}
	for i := range ab.absent {
		h, m := i/ab.metrics, i%ab.metrics
		spec := alerting.DefaultRule()
		spec.Name, spec.Kind, spec.Channels = fmt.Sprintf("absent %d", i), "absent", []int64{channels[tenantIndex(ab.seriesTenant[i])]}
		spec.Settings = []byte(fmt.Sprintf(`{"metric": "metric.%d", "host": "host-%04d", "silent_for": "2m", "lookback": "1h"}`, m, h))
		id, err := insert(ab.seriesTenant[i], spec)
		if err != nil {
			return err
		}
		ab.absentRules = append(ab.absentRules, id)
	}
	for i, check := range ab.checkIDs {
		spec := alerting.DefaultRule()
		spec.Name, spec.Kind, spec.Channels = fmt.Sprintf("check %d", i), "check", []int64{channels[tenantIndex(ab.checkTenant[i])]}
		spec.Settings = []byte(fmt.Sprintf(`{"check_ids": [%d], "down_count": 3}`, check))
		id, err := insert(ab.checkTenant[i], spec)
		if err != nil {
			return err
		}
		ab.checkRules = append(ab.checkRules, id)
	}
	return tx.Commit(ctx)
}

// history loads the hour before the start: samples every 10 s and check results every minute.
func (ab *alertBench) history(ctx context.Context) error {
	for t := ab.start.Add(-time.Hour); t.Before(ab.start); t = t.Add(10 * time.Second) {
		if err := ab.writeSamples(ctx, t); err != nil {
			return err
		}
		if t.Second() == 0 {
			if err := ab.writeResults(ctx, t); err != nil {
				return err
			}
		}
	}
	return nil
}

func (ab *alertBench) writeSamples(ctx context.Context, t time.Time) error {
	i := 0
	src := pgx.CopyFromFunc(func() ([]any, error) {
		for ; i < len(ab.seriesIDs); i++ {
			if !ab.silent(i, t) {
				row := []any{t, ab.seriesTenant[i], ab.seriesIDs[i], value(i, t)}
				i++
				return row, nil
			}
		}
		return nil, nil
	})
	_, err := ab.pool.CopyFrom(ctx, pgx.Identifier{"ts", "samples"}, []string{"time", "tenant_id", "series_id", "value"}, src)
	return err
}

// writeResults stores a result of every check; 1 % of them are down for 5 minutes every 20.
func (ab *alertBench) writeResults(ctx context.Context, t time.Time) error {
	i := 0
	src := pgx.CopyFromFunc(func() ([]any, error) {
		if i == len(ab.checkIDs) {
			return nil, nil
		}
		status := "up"
		if i%100 == 11 && (t.Unix()/60+int64(i))%20 < 5 {
			status = "down"
		}
		row := []any{t, ab.checkTenant[i], ab.checkIDs[i], status}
		i++
		return row, nil
	})
	_, err := ab.pool.CopyFrom(ctx, pgx.Identifier{"ts", "check_results"}, []string{"time", "tenant_id", "check_id", "status"}, src)
	return err
}

// generate writes the samples every 10 s and the check results every minute until ctx ends.
func (ab *alertBench) generate(ctx context.Context) error {
	next := ab.start
	for {
		if err := ab.writeSamples(ctx, next); err != nil {
			return err
		}
		if next.Second() == 0 {
			if err := ab.writeResults(ctx, next); err != nil {
				return err
			}
		}
		next = next.Add(10 * time.Second)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Until(next)):
		}
	}
}

// usage is CPU seconds at a moment: of the alerter process, and of all the backends ever seen serving it.
type usage struct {
	at       time.Time
	process  float64
	backends float64
}

// snapshot reads the CPU seconds of the alerter process and of its backends (application_name
// infrawatch-alerter). A backend that went away keeps the CPU it was last seen with: the pool keeps its
// connections for the whole run, so that loses at most the work since the previous snapshot.
func (ab *alertBench) snapshot(ctx context.Context, pid int) (usage, error) {
	rows, err := ab.pool.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE application_name = 'infrawatch-alerter'`)
	if err != nil {
		return usage{}, err
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return usage{}, err
	}
	ab.mu.Lock()
	defer ab.mu.Unlock()
	if ab.cpuSeen == nil {
		ab.cpuSeen = map[int]float64{}
	}
	for _, p := range pids {
		if s, err := procCPU(int(p)); err == nil {
			ab.cpuSeen[int(p)] = s
		}
	}
	u := usage{at: time.Now()}
	for _, s := range ab.cpuSeen {
		u.backends += s
	}
	u.process, err = procCPU(pid)
	return u, err
}

// procCPU is a process's user and system CPU seconds (/proc/PID/stat fields 14 and 15).
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / 100, nil // USER_HZ is 100 on Linux
}

// lags are the lags of the evaluations written in (from, to], in seconds.
func (ab *alertBench) lags(ctx context.Context, from, to time.Time) ([]float64, error) {
	rows, err := ab.pool.Query(ctx, `SELECT last_eval_lag_ms / 1000.0 FROM app.alert_rules WHERE last_eval_at > $1 AND last_eval_at <= $2`,
		from, to)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[float64])
}

// pass is what one full pass cost.
type pass struct {
	wall       time.Duration
	cpu        float64
	statements int
}

// passes evaluates every rule once set-based (batches of 500, a statement per kind) and once naively
// (a statement per rule), on one connection without JIT, and measures both.
func (ab *alertBench) passes(ctx context.Context, dbURL string) (set, naive pass, err error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	if _, err = conn.Exec(ctx, "SET jit = off"); err != nil {
		return
	}
	backend := int(conn.PgConn().PID())
	q := dbsqlc.New(conn)
	kinds := []struct {
		name  string
		rules []int64
	}{{"threshold", ab.thresholdRules}, {"absent", ab.absentRules}, {"check", ab.checkRules}}
	run := func(batch int) (pass, error) {
		var p pass
		cpu0, err := procCPU(backend)
		if err != nil {
			return p, err
		}
		started := time.Now()
		at := []time.Time{time.Now()}
		for _, k := range kinds {
			kind, _ := alerting.Lookup(k.name)
			for chunk := range slices.Chunk(k.rules, batch) {
				if _, err := kind.Evaluate(ctx, q, chunk, at); err != nil {
					return p, err
				}
				p.statements++
			}
		}
		p.wall = time.Since(started)
		cpu1, err := procCPU(backend)
		p.cpu = cpu1 - cpu0
		return p, err
	}
	// Warm the caches and the connection's prepared statements once each way first.
	if _, err = run(500); err != nil {
		return
	}
	if set, err = run(500); err != nil {
		return
	}
	if naive, err = run(1); err != nil {
		return
	}
	// The set-based pass again, after the naive one, so that neither gains from the other's caches: the
	// faster of the two counts.
	again, err := run(500)
	if err == nil && again.wall < set.wall {
		set = again
	}
	return set, naive, err
}
