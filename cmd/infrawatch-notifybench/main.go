// Command infrawatch-notifybench measures notification delivery in one run on this machine, against
// loopback only: a burst of firing alerts (10,000 by default, each its own rule, so each its own
// message) over webhook channels (100) whose receivers run in a child process — one answering 5 s late,
// one failing with 500 — delivered by the notifier on a throwaway PostgreSQL.
//
//	go run ./cmd/infrawatch-notifybench [--alerts 10000] [--channels 100] [--slow 5s]
//
// Three runs, each on a fresh database:
//
//   - infrawatch: the notifier, every channel healthy, then with the slow and the failing channel;
//   - one queue, the baseline: the same messages, the same receivers and concurrency, sent by workers
//     that take them from one queue in the order they were written (no database, no retries), as a
//     sender without per-channel isolation would; all healthy, then with the slow and failing channels.
//
// For each: the time until every message to a healthy channel was delivered, the p50 and p99 latency of
// those messages (written to delivered), the CPU of this process (the notifier; the receivers are the
// child's) and of the PostgreSQL backends serving it, and what the slow and failing channels got
// meanwhile. The ratios (with the bad channels / all healthy) say whether they delayed the healthy ones.
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

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/checks"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/notify"
	"github.com/infrawatch/infrawatch/internal/pgcluster"
	"github.com/infrawatch/infrawatch/internal/secrets"
)

func main() { os.Exit(run()) }

// Receivers: channel 0 answers late, channel 1 fails; the others answer at once.
const (
	slowChannel    = 0
	failingChannel = 1
)

func run() int {
	if len(os.Args) >= 2 && os.Args[1] == "receive" {
		return receive(os.Args[2:])
	}
	alerts := flag.Int("alerts", 10000, "firing alerts in the burst, spread evenly over the channels")
	channels := flag.Int("channels", 100, "webhook channels")
	slow := flag.Duration("slow", 5*time.Second, "how late the slow channel answers")
	databaseURL := flag.String("database-url", "", "a superuser URL of a PostgreSQL server to use (default: a throwaway cluster)")
	flag.Parse()
	ctx := context.Background()
	fmt.Printf("infrawatch-notifybench on %d CPUs (%s), %s\n", numCPU(), cpuModel(), time.Now().UTC().Format(time.RFC3339))
	fmt.Printf("%d firing alerts, each its own rule, over %d webhook channels; channel %d answers %s late, channel %d answers 500\n\n",
		*alerts, *channels, slowChannel, *slow, failingChannel)

	addr, stopReceivers, err := startReceivers(*slow)
	if err != nil {
		fmt.Fprintln(os.Stderr, "receivers:", err)
		return 1
	}
	defer stopReceivers()
	url := *databaseURL
	if url == "" {
		var stop func()
		if url, stop, err = pgcluster.StartThrowaway(ctx, nil); err != nil {
			fmt.Fprintln(os.Stderr, "start PostgreSQL:", err)
			return 1
		}
		defer stop()
	}
	started := time.Now()
	var results []result
	for _, r := range []struct {
		name string
		bad  bool
		fn   func(context.Context, string, string, int, int, bool) (result, error)
	}{{"infrawatch, all healthy", false, benchNotifier}, {"infrawatch", true, benchNotifier},
		{"one queue, all healthy", false, benchOneQueue}, {"one queue (baseline)", true, benchOneQueue}} {
		res, err := r.fn(ctx, url, addr, *alerts, *channels, r.bad)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", r.name, err)
			return 1
		}
		res.name = r.name
		results = append(results, res)
	}
	fmt.Println("| run | healthy messages | all healthy delivered in | healthy p50 | healthy p99 | CPU of the sender | CPU of PostgreSQL | slow channel meanwhile | failing channel meanwhile |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		pg := "—"
		if r.pgCPU > 0 {
			pg = fmt.Sprintf("%.1f s", r.pgCPU.Seconds())
		}
		fmt.Printf("| %s | %d | %.1f s | %s | %s | %.1f s (%.0f %% of a core) | %s | %s | %s |\n", r.name, r.healthy, r.all.Seconds(),
			ms(r.p50), ms(r.p99), r.cpu.Seconds(), r.cpu.Seconds()/r.all.Seconds()*100, pg, r.slow, r.failing)
	}
	control, ours, queueControl, queue := results[0], results[1], results[2], results[3]
	fmt.Printf("\nwhat the slow and failing channels cost the healthy ones (with them / all healthy):\n")
	fmt.Printf("  infrawatch: p99 × %.2f, all delivered × %.2f\n", ours.p99.Seconds()/control.p99.Seconds(),
		ours.all.Seconds()/control.all.Seconds())
	fmt.Printf("  one queue:  p99 × %.2f, all delivered × %.2f\n", queue.p99.Seconds()/queueControl.p99.Seconds(),
		queue.all.Seconds()/queueControl.all.Seconds())
	fmt.Printf("run length: %s\n", time.Since(started).Round(time.Second))
	return 0
}

type result struct {
	name          string
	healthy       int
	all, p50, p99 time.Duration
	cpu, pgCPU    time.Duration
	slow, failing string
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

// hookURL is channel i's receiver.
func hookURL(addr string, i int) string { return fmt.Sprintf("http://%s/hook/%d", addr, i) }

// benchNotifier writes the burst into a fresh database's outbox in one transaction, as alerting writes a
// tick's transitions, and runs the notifier until every healthy message is delivered.
func benchNotifier(ctx context.Context, url, addr string, alerts, channels int, bad bool) (result, error) {
	name := fmt.Sprintf("notifybench_%d", time.Now().UnixNano())
	if err := createDatabase(ctx, url, name); err != nil {
		return result{}, err
	}
	dbURL := strings.Replace(url, "/postgres?", "/"+name+"?", 1)
	if _, err := db.NewMigrator(dbURL).Up(ctx, ""); err != nil {
		return result{}, err
	}
	pool, err := db.Open(ctx, db.Config{URL: dbURL, MaxConns: 20})
	if err != nil {
		return result{}, err
	}
	defer pool.Close()
	spec, _ := secrets.NewKeySpec("bench")
	keys, _ := secrets.Parse(spec)
	var tenant string
	if err := pool.QueryRow(ctx, `INSERT INTO app.tenants (slug, name) VALUES ('bench', 'Bench') RETURNING id`).Scan(&tenant); err != nil {
		return result{}, err
	}
	ids := make([]int64, channels)
	for i := range channels {
		target := i
		if !bad && (i == slowChannel || i == failingChannel) {
			target = channels + i // a healthy receiver
		}
		raw, _ := json.Marshal(map[string]string{"url": hookURL(addr, target), "secret": "bench-signing-secret"})
		public, plain, _ := secrets.Split(raw, secrets.Fields{Settings: []string{"url", "secret"}})
		tid, err := uuid.Parse(tenant)
		if err != nil {
			return result{}, err
		}
		sealed, err := keys.Seal(plain, secrets.For(secrets.ChannelsColumn, tid))
		if err != nil {
			return result{}, err
		}
		if err := pool.QueryRow(ctx, `INSERT INTO app.channels (tenant_id, name, kind, settings, secrets, group_wait_seconds)
		    VALUES ($1, $2, 'webhook', $3, $4, 0) RETURNING id`, tenant, fmt.Sprintf("hook %d", i), public, sealed).Scan(&ids[i]); err != nil {
			return result{}, err
		}
	}
	// The burst: alert a goes to channel a mod channels, each alert its own rule.
	if _, err := pool.Exec(ctx, `
	    INSERT INTO app.notifications (tenant_id, alert_id, channel_id, kind, payload)
	    SELECT $1::uuid, a, ($2::bigint[])[1 + (a - 1) % array_length($2::bigint[], 1)], 'firing',
	           jsonb_build_object('alert', jsonb_build_object('id', a, 'fingerprint', 'fp-' || a, 'state', 'firing',
	                                'severity', 'critical', 'started_at', to_jsonb(now()), 'summary', 'CPU above 90% on host-' || a,
	                                'value', 93.5, 'threshold', 90, 'comparator', '>', 'host', jsonb_build_object('id', a, 'name', 'host-' || a),
	                                'labels', jsonb_build_object('env', 'bench')),
	                              'rule', jsonb_build_object('id', a, 'name', 'rule ' || a, 'kind', 'threshold'),
	                              'tenant', jsonb_build_object('id', $4::text, 'slug', 'bench', 'name', 'Bench'))
	      FROM generate_series(1, $3::int) AS a`, tenant, ids, alerts, tenant); err != nil {
		return result{}, err
	}
	healthyIDs := slices.Clone(ids)
	if bad {
		healthyIDs = slices.DeleteFunc(healthyIDs, func(id int64) bool { return id == ids[slowChannel] || id == ids[failingChannel] })
	}
	var healthy int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM app.notifications WHERE channel_id = ANY ($1)`, healthyIDs).Scan(&healthy); err != nil {
		return result{}, err
	}

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	cfg := notify.DefaultConfig()
	sender, err := notify.NewSender(cfg, &checks.Guard{AllowPrivate: true}, keys, log, nil)
	if err != nil {
		return result{}, err
	}
	n := notify.New(cfg, db.NewSystem(pool), sender, log, nil)
	backends := func() map[int]time.Duration {
		rows, err := pool.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = $1`, name)
		if err != nil {
			return nil
		}
		defer rows.Close()
		out := map[int]time.Duration{}
		for rows.Next() {
			var pid int
			if rows.Scan(&pid) == nil {
				out[pid] = procCPU(pid)
			}
		}
		return out
	}
	cpu0, pg0, start := selfCPU(), backends(), time.Now()
	if err := n.Start(ctx); err != nil {
		return result{}, err
	}
	for {
		var sent int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM app.notifications WHERE channel_id = ANY ($1) AND state = 'sent'`,
			healthyIDs).Scan(&sent); err != nil {
			return result{}, err
		}
		if sent == healthy {
			break
		}
		if time.Since(start) > 10*time.Minute {
			return result{}, fmt.Errorf("%d of %d healthy messages delivered in 10 minutes", sent, healthy)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cpu := selfCPU() - cpu0
	var pgCPU time.Duration // of the backends serving the notifier's database
	for pid, now := range backends() {
		pgCPU += now - pg0[pid]
	}
	n.Stop()
	res := result{healthy: healthy, cpu: cpu, pgCPU: pgCPU}
	var p50, p99, all float64
	if err := pool.QueryRow(ctx, `
	    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - created_at)),
	           percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - created_at)),
	           extract(epoch FROM max(sent_at) - min(created_at))
	      FROM app.notifications WHERE channel_id = ANY ($1)`, healthyIDs).Scan(&p50, &p99, &all); err != nil {
		return result{}, err
	}
	res.p50, res.p99, res.all = seconds(p50), seconds(p99), seconds(all)
	res.slow, res.failing = "healthy", "healthy"
	if bad {
		var slowSent, failAttempts, failTotal int
		_ = pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE state = 'sent') FROM app.notifications WHERE channel_id = $1`,
			ids[slowChannel]).Scan(&slowSent)
		_ = pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(attempts), 0) FROM app.notifications WHERE channel_id = $1`,
			ids[failingChannel]).Scan(&failTotal, &failAttempts)
		res.slow = fmt.Sprintf("%d delivered, one at a time", slowSent)
		res.failing = fmt.Sprintf("%d attempts on %d, pending retry", failAttempts, failTotal)
	}
	return res, nil
}

// benchOneQueue sends the same messages without the notifier: the notifier's concurrency of workers
// take them from one queue in the order they were written and post them (no database, no retries).
func benchOneQueue(_ context.Context, _, addr string, alerts, channels int, bad bool) (result, error) {
	type msg struct {
		channel int
		body    []byte
	}
	queue := make(chan msg, alerts)
	for a := 1; a <= alerts; a++ {
		body, _ := json.Marshal(map[string]any{"id": a, "status": "firing", "alerts": []any{map[string]any{"id": a,
			"summary": "CPU above 90% on host-" + strconv.Itoa(a)}}})
		c := (a - 1) % channels
		if !bad && (c == slowChannel || c == failingChannel) {
			c += channels // a healthy receiver
		}
		queue <- msg{channel: c, body: body}
	}
	close(queue)
	client := &http.Client{Timeout: 15 * time.Second}
	var mu sync.Mutex
	var healthyLatencies []time.Duration
	var slowDone, failTries atomic.Int64
	cpu0, start := selfCPU(), time.Now()
	var wg sync.WaitGroup
	healthyTotal := 0
	for a := 0; a < alerts; a++ {
		if c := a % channels; !bad || (c != slowChannel && c != failingChannel) {
			healthyTotal++
		}
	}
	var last time.Time
	for range notify.DefaultConfig().Concurrency {
		wg.Go(func() {
			for m := range queue {
				resp, err := client.Post(hookURL(addr, m.channel), "application/json", bytes.NewReader(m.body))
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				switch m.channel {
				case slowChannel:
					slowDone.Add(1)
				case failingChannel:
					failTries.Add(1)
				default:
					mu.Lock()
					healthyLatencies = append(healthyLatencies, time.Since(start))
					last = time.Now()
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	cpu := selfCPU() - cpu0
	slices.Sort(healthyLatencies)
	at := func(q float64) time.Duration { return healthyLatencies[int(q*float64(len(healthyLatencies)-1))] }
	res := result{healthy: healthyTotal, all: last.Sub(start), p50: at(0.5), p99: at(0.99), cpu: cpu, slow: "healthy", failing: "healthy"}
	if bad {
		res.slow = fmt.Sprintf("%d delivered, up to %d workers at a time", slowDone.Load(), notify.DefaultConfig().Concurrency)
		res.failing = fmt.Sprintf("%d attempts, no retries", failTries.Load())
	}
	return res, nil
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// startReceivers runs the webhook receivers in a child process, so their CPU is not the sender's.
func startReceivers(slow time.Duration) (string, func(), error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(self, "receive", slow.String())
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { stdin.Close(); _ = cmd.Process.Kill(); _ = cmd.Wait() }
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("the receivers did not start: %w", err)
	}
	return strings.TrimSpace(line), stop, nil
}

// receive serves the receivers on a loopback port it prints, until its standard input closes: /hook/0
// answers after the delay, /hook/1 answers 500, every other channel 200 at once.
func receive(args []string) int {
	slow, err := time.ParseDuration(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		switch filepath.Base(r.URL.Path) {
		case strconv.Itoa(slowChannel):
			time.Sleep(slow)
		case strconv.Itoa(failingChannel):
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})}
	go func() { _ = srv.Serve(ln) }()
	fmt.Println(ln.Addr().String())
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
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

// procCPU is the CPU time of a process, from /proc/<pid>/stat (clock ticks of 10 ms).
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

func cpuModel() string {
	raw, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(raw), "\n") {
		if name, ok := strings.CutPrefix(line, "model name\t: "); ok {
			return name
		}
	}
	return "unknown CPU"
}
