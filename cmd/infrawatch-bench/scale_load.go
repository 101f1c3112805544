package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// The load generator of `infrawatch-bench scale`: a process of its own (`infrawatch-bench scale-load`,
// started by the scale subcommand), so that its CPU and memory are read apart from the server's and the
// bench's. It simulates --agents agents, each owning an equal share of the hosts and pushing, for every
// host it owns, one request with one point of each of the host's series at every tick of the interval —
// as infrawatch-agent does, one push per host and interval. It prints one JSON object (loadReport) on
// stdout when it is done and its standard input is closed; progress goes to stderr.
//
// Two modes:
//   - burst: one push per host of [--hosts-from, --hosts-to), all agents at once, timestamps --tick; for
//     the series-creation measurement (a fleet restart: every series new).
//   - steady: open loop on the interval grid from --start until --stop. Each host has a fixed offset in
//     the interval (its jitter) and its push is due at tick + offset, whatever the server answered
//     before: a slow answer makes the agent's next pushes late, never fewer. Only pushes due in
//     [--measure-from, --stop) are counted, so the first interval (connections opening) is a warm-up.

// loadReport is what the load generator prints.
type loadReport struct {
	Mode          string           `json:"mode"`
	Pushes        int64            `json:"pushes"`        // answered (whatever the status) or failed, of those counted
	SamplesSent   int64            `json:"samples_sent"`  // in those pushes
	SamplesAcked  int64            `json:"samples_acked"` // "accepted" of the 200 answers
	Statuses      map[string]int64 `json:"statuses"`      // HTTP status → pushes; "error" for transport errors
	FirstError    string           `json:"first_error,omitempty"`
	LatencyP50    float64          `json:"latency_p50_ms"` // send → answer read
	LatencyP99    float64          `json:"latency_p99_ms"`
	LatencyMax    float64          `json:"latency_max_ms"`
	LatePushes    int64            `json:"late_pushes"` // sent more than lateTolerance after they were due
	LatenessP99   float64          `json:"lateness_p99_ms"`
	LatenessMax   float64          `json:"lateness_max_ms"`
	BehindPushes  int64            `json:"behind_pushes"` // due before the stop but never sent: the generator fell behind
	BehindSamples int64            `json:"behind_samples"`
	WallSeconds   float64          `json:"wall_seconds"` // burst: first send → last answer; steady: --measure-from → last answer
	CPUSeconds    float64          `json:"cpu_seconds"`  // of this process, its whole life (getrusage)
	MaxRSSBytes   int64            `json:"max_rss_bytes"`
}

// lateTolerance is how late a push may be sent and still count as on time: timer wake-ups and the
// scheduler of a busy machine cost some milliseconds.
const lateTolerance = 100 * time.Millisecond

func runScaleLoad(args []string) int {
	fs := flag.NewFlagSet("infrawatch-bench scale-load", flag.ContinueOnError)
	addr := fs.String("addr", "", "the server's host:port")
	mode := fs.String("mode", "steady", "burst or steady")
	hostsFrom := fs.Int("hosts-from", 0, "first host")
	hostsTo := fs.Int("hosts-to", 0, "one past the last host")
	seriesPerHost := fs.Int("series-per-host", 100, "series per host")
	interval := fs.Duration("interval", 10*time.Second, "push interval of every host")
	agents := fs.Int("agents", 1000, "concurrent agents")
	tick := fs.Int64("tick", 0, "burst: the points' timestamp, ms since the epoch")
	start := fs.Int64("start", 0, "steady: the first tick, ms since the epoch")
	measureFrom := fs.Int64("measure-from", 0, "steady: pushes due from then on are counted, ms since the epoch")
	stop := fs.Int64("stop", 0, "steady: no push due from then on is sent, ms since the epoch")
	gzipBodies := fs.Bool("gzip", true, "gzip the bodies, as infrawatch-agent does")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	key := os.Getenv("INFRAWATCH_BENCH_KEY")
	if *addr == "" || key == "" || *hostsTo <= *hostsFrom || *agents < 1 || *seriesPerHost < 1 {
		fmt.Fprintln(os.Stderr, "scale-load: --addr, --hosts-from < --hosts-to, --agents and INFRAWATCH_BENCH_KEY are required")
		return 2
	}
	// SIGINT or SIGTERM ends the run as --stop would: what was counted so far is still reported.
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()

	g := &loadGen{url: "http://" + *addr + "/api/v1/ingest", key: key, catalog: seriesCatalog(*seriesPerHost), interval: *interval,
		gzip: *gzipBodies, statuses: map[string]int64{}}
	var report loadReport
	if *mode == "burst" {
		report = g.burst(ctx, *hostsFrom, *hostsTo, *agents, time.UnixMilli(*tick))
	} else {
		report = g.steady(ctx, *hostsFrom, *hostsTo, *agents, time.UnixMilli(*start), time.UnixMilli(*measureFrom), time.UnixMilli(*stop))
	}
	// The bench reads this process's CPU and memory at the end of the steady phase, so it stays until the
	// bench closes its standard input (at once for a burst, whose input is empty).
	_, _ = io.Copy(io.Discard, os.Stdin)
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		report.CPUSeconds = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
		report.MaxRSSBytes = ru.Maxrss * 1024 // kilobytes on Linux
	}
	if err := json.NewEncoder(os.Stdout).Encode(report); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// loadGen sends the pushes and gathers what the agents measured.
type loadGen struct {
	url, key string
	catalog  []seriesSpec
	interval time.Duration
	gzip     bool

	mu                  sync.Mutex
	latencies, lateness []float64 // ms
	pushes, sent, acked int64
	late, behind        int64
	statuses            map[string]int64
	firstError          string
	lastReply           time.Time
}

// agentTally is one agent's figures, merged into the loadGen's when the agent is done, so that the agents
// share no lock while they run.
type agentTally struct {
	latencies, lateness []float64
	pushes, sent, acked int64
	late, behind        int64
	statuses            map[string]int64
	firstError          string
	lastReply           time.Time
}

func (g *loadGen) merge(t *agentTally) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.latencies = append(g.latencies, t.latencies...)
	g.lateness = append(g.lateness, t.lateness...)
	g.pushes += t.pushes
	g.sent += t.sent
	g.acked += t.acked
	g.late += t.late
	g.behind += t.behind
	for s, n := range t.statuses {
		g.statuses[s] += n
	}
	if g.firstError == "" {
		g.firstError = t.firstError
	}
	if t.lastReply.After(g.lastReply) {
		g.lastReply = t.lastReply
	}
}

func (g *loadGen) report(mode string, from time.Time) loadReport {
	slices.Sort(g.latencies)
	slices.Sort(g.lateness)
	r := loadReport{Mode: mode, Pushes: g.pushes, SamplesSent: g.sent, SamplesAcked: g.acked, Statuses: g.statuses,
		FirstError: g.firstError, LatencyP50: percentile(g.latencies, 0.50), LatencyP99: percentile(g.latencies, 0.99),
		LatencyMax: percentile(g.latencies, 1), LatePushes: g.late, LatenessP99: percentile(g.lateness, 0.99),
		LatenessMax: percentile(g.lateness, 1), BehindPushes: g.behind, BehindSamples: g.behind * int64(len(g.catalog))}
	if !g.lastReply.IsZero() {
		r.WallSeconds = g.lastReply.Sub(from).Seconds()
	}
	return r
}

// agentClient is one agent's HTTP client: its own keep-alive connection, as separate agents would have.
func agentClient() *http.Client {
	return &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 1, IdleConnTimeout: time.Minute,
		DisableCompression: true}}
}

// burst pushes one tick of every host of [from, to) as fast as the agents can: each agent sends its
// hosts one after the other, all agents at once.
func (g *loadGen) burst(ctx context.Context, from, to, agents int, tick time.Time) loadReport {
	started := time.Now()
	var wg sync.WaitGroup
	for a := range min(agents, to-from) {
		wg.Go(func() {
			client := agentClient()
			defer client.CloseIdleConnections()
			t := &agentTally{statuses: map[string]int64{}}
			var buf pushBuffer
			for h := from + a; h < to && ctx.Err() == nil; h += agents {
				g.push(ctx, client, &buf, t, h, tick, time.Now())
			}
			g.merge(t)
		})
	}
	wg.Wait()
	fmt.Fprintf(os.Stderr, "scale-load: burst of %d hosts answered in %s\n", to-from, time.Since(started).Round(time.Millisecond))
	return g.report("burst", started)
}

// steady runs the open-loop schedule.
func (g *loadGen) steady(ctx context.Context, from, to, agents int, start, measureFrom, stop time.Time) loadReport {
	var wg sync.WaitGroup
	for a := range min(agents, to-from) {
		var owned []int
		for h := from + a; h < to; h += agents {
			owned = append(owned, h)
		}
		// Within an interval each agent's hosts are due in the order of their offsets.
		slices.SortFunc(owned, func(x, y int) int { return int(g.offset(x) - g.offset(y)) })
		wg.Go(func() {
			client := agentClient()
			defer client.CloseIdleConnections()
			t := &agentTally{statuses: map[string]int64{}}
			g.runAgent(ctx, client, t, owned, start, measureFrom, stop)
			g.merge(t)
		})
	}
	progress := time.NewTicker(30 * time.Second)
	defer progress.Stop()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for {
		select {
		case <-done:
			return g.report("steady", measureFrom)
		case <-progress.C:
			fmt.Fprintf(os.Stderr, "scale-load: %s, running\n", time.Now().Format(time.TimeOnly))
		}
	}
}

// offset is host h's place in the interval, the same at every tick: agents started at random moments.
func (g *loadGen) offset(h int) time.Duration {
	return time.Duration(unitHash(uint64(h), 0x0ff5e7, 0) * float64(g.interval))
}

// runAgent sends the owned hosts' pushes as they fall due, one at a time, until stop or ctx ends.
func (g *loadGen) runAgent(ctx context.Context, client *http.Client, t *agentTally, owned []int, start, measureFrom, stop time.Time) {
	var buf pushBuffer
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for k := 0; ; k++ {
		tick := start.Add(time.Duration(k) * g.interval)
		for i, h := range owned {
			due := tick.Add(g.offset(h))
			if !due.Before(stop) {
				return
			}
			if wait := time.Until(due); wait > 0 {
				timer.Reset(wait)
				select {
				case <-timer.C:
				case <-ctx.Done():
				}
			}
			now := time.Now()
			if ctx.Err() != nil || !now.Before(stop) {
				// Out of time with pushes due and not sent: the generator (or the server, through slow
				// answers) could not keep up.
				end := now
				if stop.Before(now) {
					end = stop
				}
				t.behind += g.countDue(owned, tick, i, end)
				return
			}
			measured := !due.Before(measureFrom)
			lateBy := now.Sub(due)
			if !measured {
				g.push(ctx, client, &buf, &agentTally{statuses: map[string]int64{}}, h, tick, now)
				continue
			}
			g.push(ctx, client, &buf, t, h, tick, now)
			t.lateness = append(t.lateness, msOf(max(lateBy, 0)))
			if lateBy > lateTolerance {
				t.late++
			}
		}
	}
}

// countDue counts the pushes from owned[i] at tick onwards that were due before end.
func (g *loadGen) countDue(owned []int, tick time.Time, i int, end time.Time) int64 {
	var n int64
	for ; ; tick, i = tick.Add(g.interval), 0 {
		for ; i < len(owned); i++ {
			if !tick.Add(g.offset(owned[i])).Before(end) {
				return n
			}
			n++
		}
	}
}

// pushBuffer holds an agent's body buffers, reused from one push to the next.
type pushBuffer struct {
	raw, zipped bytes.Buffer
	zw          *gzip.Writer
}

// push sends host h's points at tick and records the answer in t.
func (g *loadGen) push(ctx context.Context, client *http.Client, buf *pushBuffer, t *agentTally, h int, tick, sent time.Time) {
	buf.raw.Reset()
	buf.raw.Write(hostPushBody(buf.raw.AvailableBuffer(), g.catalog, h, tick))
	body := buf.raw.Bytes()
	if g.gzip {
		buf.zipped.Reset()
		if buf.zw == nil {
			buf.zw = gzip.NewWriter(&buf.zipped)
		} else {
			buf.zw.Reset(&buf.zipped)
		}
		_, _ = buf.zw.Write(body)
		_ = buf.zw.Close()
		body = buf.zipped.Bytes()
	}
	req, _ := http.NewRequestWithContext(context.WithoutCancel(ctx), "POST", g.url, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+g.key)
	req.Header.Set("Content-Type", "application/json")
	if g.gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	began := time.Now()
	t.pushes++
	t.sent += int64(len(g.catalog))
	resp, err := client.Do(req)
	if err != nil {
		t.statuses["error"]++
		if t.firstError == "" {
			t.firstError = err.Error()
		}
		return
	}
	answer, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	t.lastReply = time.Now()
	t.latencies = append(t.latencies, msOf(t.lastReply.Sub(began)))
	if err != nil {
		t.statuses["error"]++
		return
	}
	t.statuses[strconv.Itoa(resp.StatusCode)]++
	if resp.StatusCode != http.StatusOK {
		if t.firstError == "" {
			t.firstError = fmt.Sprintf("%s: %.200s", resp.Status, answer)
		}
		return
	}
	var summary struct {
		Accepted int64 `json:"accepted"`
	}
	if json.Unmarshal(answer, &summary) == nil {
		t.acked += summary.Accepted
	}
}

// seriesSpec is one series of every host: its name, labels and how its values move.
type seriesSpec struct {
	prefix []byte // `{"name":…,"labels":{…},"points":[[`, rendered once
	kind   valueKind
	scale  float64 // typical size of the value (gauges) or increase per tick (counters)
}

type valueKind int

const (
	percent  valueKind = iota // 0–100, one decimal, wandering slowly
	bytesAmt                  // a multiple of 4 KiB, wandering slowly around scale
	ratio                     // two decimals (load averages)
	small                     // a small integer gauge: processes, connections, queue depths (often 0)
	counter                   // an integer that only grows, by about scale per tick
	constant                  // never changes (a file system's size)
)

// seriesCatalog is a host's series: a node_exporter-like mix of gauges and counters, padded with queue
// depths up to n. The order keeps what the dashboard reads (load.1m, mem.used_bytes, cpu.usage_pct) first
// so that small smoke runs have them too.
func seriesCatalog(n int) []seriesSpec {
	var out []seriesSpec
	add := func(name string, kind valueKind, scale float64, labels ...string) {
		if len(out) >= n {
			return
		}
		var b bytes.Buffer
		b.WriteString(`{"name":"` + name + `"`)
		if len(labels) > 0 {
			b.WriteString(`,"labels":{`)
			for i := 0; i+1 < len(labels); i += 2 {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(`"` + labels[i] + `":"` + labels[i+1] + `"`)
			}
			b.WriteByte('}')
		}
		b.WriteString(`,"points":[[`)
		out = append(out, seriesSpec{prefix: b.Bytes(), kind: kind, scale: scale})
	}
	add("load.1m", ratio, 2)
	add("mem.used_bytes", bytesAmt, 6<<30)
	for cpu := range 4 {
		for _, mode := range []string{"user", "system", "iowait", "idle"} {
			add("cpu.usage_pct", percent, 0, "cpu", strconv.Itoa(cpu), "mode", mode)
		}
	}
	add("load.5m", ratio, 2)
	add("load.15m", ratio, 2)
	add("mem.cached_bytes", bytesAmt, 3<<30)
	add("mem.free_bytes", bytesAmt, 2<<30)
	add("mem.available_bytes", bytesAmt, 5<<30)
	add("swap.used_bytes", bytesAmt, 64<<20)
	for _, dev := range []string{"sda", "sdb"} {
		add("disk.read_bytes_total", counter, 400<<10, "device", dev)
		add("disk.written_bytes_total", counter, 2<<20, "device", dev)
		add("disk.reads_total", counter, 100, "device", dev)
		add("disk.writes_total", counter, 300, "device", dev)
		add("disk.io_time_ms_total", counter, 800, "device", dev)
	}
	for _, mount := range []string{"/", "/var", "/home"} {
		add("fs.used_bytes", bytesAmt, 20<<30, "mount", mount)
		add("fs.free_bytes", bytesAmt, 30<<30, "mount", mount)
		add("fs.size_bytes", constant, 50<<30, "mount", mount)
	}
	for _, iface := range []string{"eth0", "eth1"} {
		add("net.rx_bytes_total", counter, 5<<20, "iface", iface)
		add("net.tx_bytes_total", counter, 3<<20, "iface", iface)
		add("net.rx_packets_total", counter, 5000, "iface", iface)
		add("net.tx_packets_total", counter, 4000, "iface", iface)
		add("net.rx_errors_total", counter, 0.01, "iface", iface)
		add("net.tx_errors_total", counter, 0.01, "iface", iface)
		add("net.rx_drops_total", counter, 0.1, "iface", iface)
		add("net.tx_drops_total", counter, 0.1, "iface", iface)
	}
	add("proc.count", small, 300)
	add("proc.running", small, 3)
	add("proc.threads", small, 900)
	add("tcp.established", small, 120)
	add("tcp.time_wait", small, 40)
	add("tcp.listen", constant, 12)
	for _, method := range []string{"GET", "POST"} {
		for _, code := range []string{"200", "404", "500"} {
			scale := map[string]float64{"200": 500, "404": 5, "500": 0.2}[code]
			add("app.http_requests_total", counter, scale, "method", method, "code", code)
		}
	}
	for _, q := range []string{"0.5", "0.9", "0.99"} {
		add("app.http_latency_ms", percent, 0, "quantile", q)
	}
	add("system.uptime_seconds", counter, 10)
	for q := 0; len(out) < n; q++ {
		add("app.queue_depth", small, 0.5, "queue", fmt.Sprintf("q%03d", q))
	}
	return out
}

// hostPushBody appends host h's push of tick to dst: one point of each series of the catalog. It is
// written by hand, as pushBody is: the generator shares the machine with the server, so it must cost little.
func hostPushBody(dst []byte, catalog []seriesSpec, h int, tick time.Time) []byte {
	dst = append(dst, `{"host":{"name":"`...)
	dst = append(dst, hostName(h)...)
	dst = append(dst, `"},"metrics":[`...)
	ms := tick.UnixMilli()
	for s, spec := range catalog {
		if s > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, spec.prefix...)
		dst = strconv.AppendInt(dst, ms, 10)
		dst = append(dst, ',')
		dst = strconv.AppendFloat(dst, spec.value(h, s, ms), 'f', -1, 64)
		dst = append(dst, `]]}`...)
	}
	return append(dst, `]}`...)
}

func hostName(h int) string { return fmt.Sprintf("host-%05d", h) }

// value is series s of host h at ms. It depends on nothing else, so that the burst and the steady
// processes continue each other's series. Gauges wander on an hour-long wave with a little noise at the
// precision an agent reports; counters grow by about scale per tick (10 s) and never go back — both as
// real hosts' series do, which is what compression feeds on.
func (spec seriesSpec) value(h, s int, ms int64) float64 {
	k := ms / 10_000 // the tick, at 10 s
	u := unitHash(uint64(h), uint64(s), 0)
	noise := unitHash(uint64(h), uint64(s), uint64(k)) - 0.5
	wave := math.Sin(2*math.Pi*(float64(k)/360+u)) * 0.5
	switch spec.kind {
	case percent:
		v := 50*u + 20*wave + 4*noise + 10
		return math.Round(math.Min(100, math.Max(0, v))*10) / 10
	case bytesAmt:
		v := spec.scale * (0.6 + 0.4*u + 0.1*wave + 0.002*noise)
		return math.Round(v/4096) * 4096
	case ratio:
		return math.Round(math.Max(0, spec.scale*(0.5+u+0.5*wave+0.2*noise))*100) / 100
	case small:
		return math.Max(0, math.Round(spec.scale*(0.5+u+0.3*wave)+2*noise*math.Min(spec.scale, 10)*0.2))
	case counter:
		// About scale per tick, each host at its own rate; the noise keeps every step ≥ half the rate.
		rate := spec.scale * (0.5 + u)
		return math.Floor(1e6*u + rate*float64(k) + rate*0.5*(noise+0.5))
	default:
		return math.Round(spec.scale * (0.5 + u))
	}
}

// unitHash maps (a, b, c) to [0, 1), evenly and repeatably (splitmix64's finalizer).
func unitHash(a, b, c uint64) float64 {
	x := a*0x9e3779b97f4a7c15 ^ b*0xbf58476d1ce4e5b9 ^ c*0x94d049bb133111eb
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return float64(x>>11) / (1 << 53)
}
