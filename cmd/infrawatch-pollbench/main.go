// Command infrawatch-pollbench measures the poller in one run on this machine, against loopback only:
//
//   - HTTP: checks per CPU-second of infrawatch's prober next to prometheus-blackbox-exporter probing the
//     same target (a server in a child process) with the same concurrency, and the ratio;
//
//   - ICMP: 2,000 loopback addresses (127.1.x.y) checked once a minute with 3 pings each, by the poller
//     engine with its database; the CPU the process used per minute;
//
//   - SNMP: 1,000 interface-table walks a minute against one local snmpd, the same way;
//
//   - scrape (not in the default list; make bench-scrape): 1,000 prometheus checks a minute against a
//     local server (a child process) serving a recorded node_exporter exposition, by the poller engine with
//     its database, next to Prometheus scraping the same 1,000 targets a minute (scrape.go). The
//     poller's warm-up lasts until the 1.3 M series of the targets exist, which its first minutes create.
//
//     go run ./cmd/infrawatch-pollbench [--only http,icmp,snmp,scrape] [--duration 20s] [--window 60s]
//
// CPU is the process's own (getrusage) or, for blackbox_exporter, its /proc/<pid>/stat times. The
// engine runs measure a steady-state window after a warm-up; the database runs in a throwaway cluster
// (another process, not counted).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/infrawatch/infrawatch/internal/checks"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/ingest"
	"github.com/infrawatch/infrawatch/internal/pgcluster"
	"github.com/infrawatch/infrawatch/internal/poller"
	"github.com/infrawatch/infrawatch/internal/secrets"
	"github.com/infrawatch/infrawatch/internal/tenant"
)

func main() { os.Exit(run()) }

func run() int {
	if len(os.Args) == 2 && os.Args[1] == "serve-target" {
		return serveTarget()
	}
	if len(os.Args) == 3 && os.Args[1] == "serve-exposition" {
		return serveExposition(os.Args[2])
	}
	only := flag.String("only", "http,icmp,snmp", "comma-separated measurements to run: http, icmp, snmp, scrape")
	duration := flag.Duration("duration", 20*time.Second, "HTTP: how long each side probes per round")
	rounds := flag.Int("rounds", 3, "HTTP: interleaved rounds per side; the table shows the median")
	concurrency := flag.Int("concurrency", 16, "HTTP: probes in flight on each side")
	window := flag.Duration("window", 60*time.Second, "ICMP and SNMP: the measured window, after a 30 s warm-up")
	icmpTargets := flag.Int("icmp-targets", 2000, "ICMP: loopback addresses, each checked once a minute")
	snmpWalks := flag.Int("snmp-walks", 1000, "SNMP: interface-table walks a minute (checks of one minute)")
	scrapeTargets := flag.Int("scrape-targets", 1000, "scrape: exposition endpoints, each scraped once a minute")
	copies := flag.Int("exposition-copies", 2, "scrape: copies of the recorded exposition each target serves (a label copy tells them apart), "+
		"so that a target is the size of a production host's node_exporter")
	flag.Parse()
	want := strings.Split(*only, ",")
	ctx := context.Background()
	fmt.Printf("infrawatch-pollbench on %d CPUs, %s\n\n", numCPU(), time.Now().UTC().Format(time.RFC3339))

	if slices.Contains(want, "http") {
		if err := benchHTTP(ctx, *duration, *rounds, *concurrency); err != nil {
			fmt.Fprintln(os.Stderr, "http:", err)
			return 1
		}
	}
	if slices.Contains(want, "icmp") || slices.Contains(want, "snmp") || slices.Contains(want, "scrape") {
		url, stop, err := pgcluster.StartThrowaway(ctx, nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, "start PostgreSQL:", err)
			return 1
		}
		defer stop()
		if slices.Contains(want, "icmp") {
			if err := benchEngine(ctx, url, "icmp", *icmpTargets, *window); err != nil {
				fmt.Fprintln(os.Stderr, "icmp:", err)
				return 1
			}
		}
		if slices.Contains(want, "snmp") {
			if err := benchEngine(ctx, url, "snmp", *snmpWalks, *window); err != nil {
				fmt.Fprintln(os.Stderr, "snmp:", err)
				return 1
			}
		}
		if slices.Contains(want, "scrape") {
			if err := benchScrape(ctx, url, *scrapeTargets, *copies, *window); err != nil {
				fmt.Fprintln(os.Stderr, "scrape:", err)
				return 1
			}
		}
	}
	return 0
}

// serveTarget is the HTTP target, run as a child process so its CPU is nobody's: it prints its address
// and answers every request with a small 200.
func serveTarget() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(ln.Addr().String())
	_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok\n")
	}))
	return 0
}

// startChild runs this binary in mode (with args) and returns the address it prints.
func startChild(mode string, args ...string) (string, func(), error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(self, append([]string{mode}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		return "", nil, fmt.Errorf("%s: %w", mode, err)
	}
	return strings.TrimSpace(addr), func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }, nil
}

type httpRound struct {
	probes   int64
	failures int64
	cpu      time.Duration
	wall     time.Duration
}

func (r httpRound) perCPUSecond() float64 { return float64(r.probes) / r.cpu.Seconds() }

func benchHTTP(ctx context.Context, duration time.Duration, rounds, concurrency int) error {
	addr, stopTarget, err := startChild("serve-target")
	if err != nil {
		return err
	}
	defer stopTarget()
	target := "http://" + addr + "/"

	bb, stopBB, err := startBlackbox()
	if err != nil {
		return err
	}
	defer stopBB()

	prober := checks.NewProber(&checks.Guard{AllowPrivate: true})
	check := checks.Check{ID: 1, Kind: "http", Target: target, Timeout: 5 * time.Second, Settings: json.RawMessage(`{}`)}
	ours := func() httpRound {
		return load(duration, concurrency, selfCPU, func() bool { return prober.Probe(ctx, check).Up })
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency}}
	probeURL := fmt.Sprintf("http://%s/probe?module=http_2xx&target=%s", bb.addr, target)
	theirs := func() httpRound {
		return load(duration, concurrency, func() time.Duration { return procCPU(bb.pid) }, func() bool {
			resp, err := client.Get(probeURL)
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return resp.StatusCode == 200 && strings.Contains(string(body), "\nprobe_success 1\n")
		})
	}
	var oursR, theirsR []httpRound
	for range rounds {
		oursR = append(oursR, ours())
		theirsR = append(theirsR, theirs())
	}
	o, t := median(oursR), median(theirsR)
	fmt.Printf("HTTP checks against a local server (child process), %d in flight, %d interleaved rounds of %s; median round\n\n",
		concurrency, rounds, duration)
	fmt.Println("| prober | probes | failed | probes/s | CPU s | probes per CPU-second | rounds (per CPU-second) |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---|")
	row := func(name string, m httpRound, all []httpRound) {
		var each []string
		for _, r := range all {
			each = append(each, fmt.Sprintf("%.0f", r.perCPUSecond()))
		}
		fmt.Printf("| %s | %d | %d | %.0f | %.2f | %.0f | %s |\n", name, m.probes, m.failures,
			float64(m.probes)/m.wall.Seconds(), m.cpu.Seconds(), m.perCPUSecond(), strings.Join(each, " / "))
	}
	row("infrawatch prober", o, oursR)
	row("blackbox_exporter "+bb.version, t, theirsR)
	fmt.Printf("\nratio infrawatch / blackbox_exporter, per CPU-second: %.2f (goal ≥ 1)\n\n", o.perCPUSecond()/t.perCPUSecond())
	return nil
}

// load runs probe from concurrency goroutines for d and counts; cpu reads the prober's CPU time.
func load(d time.Duration, concurrency int, cpu func() time.Duration, probe func() bool) httpRound {
	var ok, failed atomic.Int64
	deadline := time.Now().Add(d)
	cpu0, start := cpu(), time.Now()
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				if probe() {
					ok.Add(1)
				} else {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return httpRound{probes: ok.Load(), failures: failed.Load(), cpu: cpu() - cpu0, wall: time.Since(start)}
}

func median(rs []httpRound) httpRound {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b httpRound) int {
		switch {
		case a.perCPUSecond() < b.perCPUSecond():
			return -1
		case a.perCPUSecond() > b.perCPUSecond():
			return 1
		}
		return 0
	})
	return s[len(s)/2]
}

type blackbox struct {
	addr, version string
	pid           int
}

func startBlackbox() (blackbox, func(), error) {
	bin, err := exec.LookPath("prometheus-blackbox-exporter")
	if err != nil {
		return blackbox{}, nil, fmt.Errorf("prometheus-blackbox-exporter not found: apt-get install -y prometheus-blackbox-exporter")
	}
	dir, err := os.MkdirTemp("", "pollbench-blackbox-")
	if err != nil {
		return blackbox{}, nil, err
	}
	conf := filepath.Join(dir, "blackbox.yml")
	if err := os.WriteFile(conf, []byte("modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n    http:\n      preferred_ip_protocol: ip4\n"), 0o644); err != nil {
		return blackbox{}, nil, err
	}
	port, err := pgcluster.FreePort()
	if err != nil {
		return blackbox{}, nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin, "--config.file="+conf, "--web.listen-address="+addr, "--log.level=warn")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return blackbox{}, nil, err
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); os.RemoveAll(dir) }
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/-/healthy"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			stop()
			return blackbox{}, nil, fmt.Errorf("blackbox_exporter did not start on %s", addr)
		}
	}
	version := "?"
	if out, err := exec.Command(bin, "--version").CombinedOutput(); err == nil {
		if f := strings.Fields(string(out)); len(f) >= 3 {
			version = f[2]
		}
	}
	return blackbox{addr: addr, version: version, pid: cmd.Process.Pid}, stop, nil
}

// benchEngine runs n checks of kind, each once a minute, through the poller engine and reports the
// process's CPU over a steady-state window.
func benchEngine(ctx context.Context, url, kind string, n int, window time.Duration) error {
	var targets func(i int) string
	var settings, peer string
	switch kind {
	case "icmp":
		targets = func(i int) string { return fmt.Sprintf("127.1.%d.%d", i/250, i%250+1) }
		settings = `{"count": 3, "interval_ms": 1000}`
		peer = fmt.Sprintf("%d loopback addresses (127.1.x.y)", n)
	case "snmp":
		addr, stop, err := startSNMPD()
		if err != nil {
			return err
		}
		defer stop()
		targets = func(int) string { return addr }
		settings = `{"version": "2c", "community": "bench"}`
		peer = "one snmpd (net-snmp) on " + addr
	}
	checkTargets := make([]string, n)
	for i := range checkTargets {
		checkTargets[i] = targets(i)
	}
	const warmup = 30 * time.Second
	r, err := runEngine(ctx, url, kind, checkTargets, settings, warmup, 0, window)
	if err != nil {
		return err
	}
	goal := map[string]string{"icmp": "≤ 10 % of one core at 2,000 targets/min", "snmp": "≤ 15 % of one core at 1,000 walks/min"}[kind]
	fmt.Printf("%s: %d checks, each once a minute, against %s; poller engine with database writes; %s warm-up, %s measured\n\n",
		strings.ToUpper(kind), n, peer, warmup, window.Round(time.Second))
	fmt.Println("| kind | runs in window | up | runs/min | process CPU | share of one core | goal |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---|")
	fmt.Printf("| %s | %d | %d | %.0f | %.2f s | %.1f %% | %s |\n\n", kind, r.runs, r.up, r.perMinute(), r.cpu.Seconds(), r.share(), goal)
	return nil
}

// engineResult is what the poller engine did in a measured window.
type engineResult struct {
	runs, up int
	samples  int64         // samples stored with times in the window
	settled  time.Duration // how long the warm-up waited for the series to exist (wantSeries)
	cpu      time.Duration
	from, to time.Time
}

func (r engineResult) perMinute() float64 { return float64(r.runs) / r.to.Sub(r.from).Minutes() }
func (r engineResult) share() float64     { return r.cpu.Seconds() / r.to.Sub(r.from).Seconds() * 100 }

// runEngine runs a check of kind for each target, each once a minute, through the poller engine with a
// database of its own, and measures the process's CPU over window after warmup. With wantSeries above 0,
// the warm-up lasts until the tenant has that many series (at most 15 minutes), then warmup more: a
// window measured while the first scrapes still create series would measure the creation.
func runEngine(ctx context.Context, url, kind string, targets []string, settings string, warmup time.Duration, wantSeries int,
	window time.Duration) (engineResult, error) {
	var r engineResult
	name := fmt.Sprintf("pollbench_%s_%d", kind, time.Now().Unix())
	if err := createDatabase(ctx, url, name); err != nil {
		return r, err
	}
	dbURL := strings.Replace(url, "/postgres?", "/"+name+"?", 1)
	if _, err := db.NewMigrator(dbURL).Up(ctx, ""); err != nil {
		return r, err
	}
	pool, err := db.Open(ctx, db.Config{URL: dbURL, MaxConns: 20})
	if err != nil {
		return r, err
	}
	defer pool.Close()
	created, err := tenant.Create(ctx, db.NewSystem(pool), tenant.NewTenant{Name: "Bench", Slug: "bench", AdminEmail: "bench@bench.invalid"})
	if err != nil {
		return r, err
	}
	if _, err := pool.Exec(ctx, `UPDATE app.tenants SET ingest_rate = 10000000, ingest_burst = 10000000, max_series = 10000000`); err != nil {
		return r, err
	}
	n := len(targets)
	// Spread over the minute, as the API's first-run jitter would.
	if _, err := pool.Exec(ctx, `
	    INSERT INTO app.checks (tenant_id, name, kind, target, interval_seconds, timeout_seconds, settings, next_run_at)
	    SELECT $1, $2 || ' ' || i, $2, t, 60, 10, $3::jsonb, now() + (i * 60.0 / $4) * interval '1 second'
	      FROM unnest($5::text[]) WITH ORDINALITY AS u(t, i)`, created.TenantID.String(), kind, settings, n, targets); err != nil {
		return r, err
	}

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	samples := ingest.NewService(ingest.Config{}, pool, log, nil)
	// The benchmark's checks hold their settings in the clear (written by SQL above), so no secret is
	// sealed: any key will do.
	spec, err := secrets.NewKeySpec("bench")
	if err != nil {
		return r, err
	}
	keys, err := secrets.Parse(spec)
	if err != nil {
		return r, err
	}
	runner := poller.NewRunner(db.NewSystem(pool), checks.NewProber(&checks.Guard{AllowPrivate: true}), samples, keys, log)
	cfg := poller.DefaultConfig()
	cfg.Concurrency, cfg.TenantConcurrency = 1024, 1024
	engine := poller.New(cfg, runner, log, nil)
	writerCtx, stopWriter := context.WithCancel(ctx)
	var writer sync.WaitGroup
	writer.Go(func() { samples.Run(writerCtx) })
	if err := engine.Start(ctx); err != nil {
		stopWriter()
		writer.Wait()
		return r, err
	}

	if wantSeries > 0 {
		start := time.Now()
		var err error
		for have := 0; have < wantSeries && err == nil; time.Sleep(5 * time.Second) {
			if err = pool.QueryRow(ctx, `SELECT count(*) FROM app.series`).Scan(&have); err == nil && time.Since(start) > 15*time.Minute {
				err = fmt.Errorf("%s: %d series of %d created in %s; the poller does not keep up", kind, have, wantSeries,
					time.Since(start).Round(time.Second))
			}
		}
		if err != nil {
			engine.Stop()
			stopWriter()
			writer.Wait()
			return r, err
		}
		r.settled = time.Since(start)
		fmt.Fprintf(os.Stderr, "%s: %d series created in %s\n", kind, wantSeries, r.settled.Round(time.Second))
	}
	time.Sleep(warmup)
	cpu0 := selfCPU()
	r.from = time.Now()
	time.Sleep(window)
	r.cpu, r.to = selfCPU()-cpu0, time.Now()
	// Runs that started in the window finish and are stored; a stopping engine would abandon them.
	time.Sleep(15 * time.Second)
	engine.Stop() // the engine stores its last runs before the samples writer stops
	stopWriter()
	writer.Wait()

	if err := pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE status = 'up') FROM ts.check_results
	    WHERE time >= $1 AND time < $2`, r.from, r.to).Scan(&r.runs, &r.up); err != nil {
		return r, err
	}
	err = pool.QueryRow(ctx, `SELECT count(*) FROM ts.samples WHERE time >= $1 AND time < $2`, r.from, r.to).Scan(&r.samples)
	return r, err
}

// startSNMPD runs net-snmp's snmpd on a free loopback port with a v2c community.
func startSNMPD() (string, func(), error) {
	bin, err := exec.LookPath("snmpd")
	if err != nil {
		if _, err = os.Stat("/usr/sbin/snmpd"); err != nil {
			return "", nil, fmt.Errorf("snmpd not found: apt-get install -y snmpd")
		}
		bin = "/usr/sbin/snmpd"
	}
	dir, err := os.MkdirTemp("", "pollbench-snmpd-")
	if err != nil {
		return "", nil, err
	}
	port, err := freeUDPPort()
	if err != nil {
		return "", nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	conf := filepath.Join(dir, "snmpd.conf")
	if err := os.WriteFile(conf, []byte("agentAddress udp:"+addr+"\nrocommunity bench 127.0.0.1\n"), 0o600); err != nil {
		return "", nil, err
	}
	// The address comes from the configuration only (given twice, snmpd binds it twice and exits); no SMUX
	// listener on 0.0.0.0:199; no MIB files.
	cmd := exec.Command(bin, "-f", "-Lf", filepath.Join(dir, "snmpd.log"), "-C", "-c", conf, "-I", "-smux",
		"-M", dir, "-m", "", "-p", filepath.Join(dir, "snmpd.pid"))
	cmd.Env = append(os.Environ(), "SNMP_PERSISTENT_DIR="+dir)
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); os.RemoveAll(dir) }
	prober := checks.NewProber(&checks.Guard{AllowPrivate: true})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		out := prober.Probe(context.Background(), checks.Check{ID: 1, Kind: "snmp", Target: addr, Timeout: time.Second,
			Settings: json.RawMessage(`{"version":"2c","community":"bench","interfaces":false,"oids":[".1.3.6.1.2.1.1.3.0"]}`)})
		if out.Up {
			return addr, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("snmpd did not answer on %s: %s", addr, out.Reason)
		}
	}
}

func freeUDPPort() (int, error) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

func createDatabase(ctx context.Context, url, name string) error {
	pool, err := db.Open(ctx, db.Config{URL: url})
	if err != nil {
		return err
	}
	defer pool.Close()
	_, err = pool.Exec(ctx, "CREATE DATABASE "+name)
	return err
}

// selfCPU is the CPU time (user and system) this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is the CPU time of another process, from /proc/<pid>/stat (clock ticks of 10 ms).
func procCPU(pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(raw)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

func numCPU() int {
	raw, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(raw), "processor\t:")
}
