package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infrawatch/infrawatch/internal/api"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
	"github.com/infrawatch/infrawatch/internal/pgcluster"
	"github.com/infrawatch/infrawatch/internal/promql"
)

// The reference test: a real Prometheus (Debian's prometheus, 2.42) holds the same samples as
// infrawatch, and the same PromQL expressions, evaluated at the same times by Prometheus's
// /api/v1/query_range and infrawatch's /prometheus/api/v1/query_range, give the same answers: the same
// series, the same times, values within a relative 1e-9.
//
// The samples reach both as they would in production:
//
//   - live: Prometheus scrapes, every second, a test exporter (counters with a reset, gauges, a
//     histogram) and prometheus-node-exporter when it is installed, on loopback, and remote-writes
//     what it scrapes to infrawatch's /api/v1/prom/write with the tenant's ingest key; the test waits
//     until two minutes of scrapes have been sent (Prometheus's own remote-write metrics, read after
//     each push infrawatch answers), never on a clock;
//   - history: six hours of samples every 15 s, written as OpenMetrics and turned into TSDB blocks by
//     `promtool tsdb create-blocks-from openmetrics` before Prometheus starts, and pushed to infrawatch
//     through its ingest API under names with dots (iwhist.requests_total), which PromQL sees with
//     underscores. infrawatch's rollups are materialized over the history, so selectors that a tier
//     answers (max_over_time at hourly steps, …) are read from it, and the test checks they were.
//
// Prometheus 2.42 and the engine infrawatch runs (3.16) differ where upstream changed PromQL between
// them, and the comparison stays clear of those places, so that what it compares is infrawatch's
// storage, not two engines' versions:
//
//   - 2.42 takes a window as [t-r, t], 3.x as (t-r, t]: they differ for a sample exactly on t-r.
//     History samples lie 1,234 ms past their 15 s, and the live comparison is evaluated at a
//     millisecond of the second that no scraped sample has.
//   - The same for a subquery's inner steps, which are multiples of its step: one on the window's left
//     edge counts in 2.42 only. Subqueries are evaluated at times that are no multiple of their step.
//   - rate and increase extrapolate towards a window's start in another order (3.x applies the 110 %
//     rule before clamping to the counter's zero point), which matters only when the window reaches
//     back before a series' first sample: the live comparison starts a window's length after it.
func TestPromQLMatchesPrometheus(t *testing.T) {
	prometheusBin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("SKIPPED: no prometheus binary on this machine (Debian: apt-get install prometheus; .ci/run installs it) — " +
			"PromQL answers are then compared only between raw samples and rollups (internal/promql)")
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("SKIPPED: no promtool (it comes with Debian's prometheus package) — the history cannot be backfilled")
	}
	nodeExporter, _ := exec.LookPath("prometheus-node-exporter")
	if nodeExporter == "" {
		t.Log("prometheus-node-exporter is not installed (Debian: apt-get install prometheus-node-exporter): its series are left out")
	}
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		var engine *promql.Engine
		w := newWorldCustom(t, flavor, testLimits, func(d *api.Deps) {
			engine = promql.New(d.Tenants, promql.DefaultConfig(), nil, nil)
			d.PromQL = engine
		})
		ref := startReference(t, w, prometheusBin, promtool, nodeExporter)
		key := w.readKey(t, w.a)

		// History: hourly and 5-minute steps over five hours, where the rollup tiers may answer.
		for _, c := range []struct {
			query string
			step  time.Duration
		}{
			{`rate(iwhist_requests_total[5m])`, 5 * time.Minute},
			{`increase(iwhist_requests_total[1h])`, time.Hour},
			{`sum by (host) (rate(iwhist_requests_total[5m]))`, 5 * time.Minute},
			{`histogram_quantile(0.95, sum by (le) (rate(iwhist_latency_seconds_bucket[5m])))`, 5 * time.Minute},
			{`histogram_quantile(0.5, rate(iwhist_latency_seconds_bucket[10m]))`, 10 * time.Minute},
			{`topk(2, iwhist_temperature)`, 5 * time.Minute},
			{`bottomk(1, max_over_time(iwhist_temperature[1h]))`, time.Hour},
			{`absent(iwhist_nonexistent)`, time.Hour},
			{`absent(iwhist_temperature{room="r9"})`, time.Hour},
			{`iwhist_temperature offset 30m`, 5 * time.Minute},
			{`rate(iwhist_requests_total[5m] offset 1h)`, 15 * time.Minute},
			{`label_replace(iwhist_temperature, "where", "$1-x", "room", "r(.*)")`, 5 * time.Minute},
			{`iwhist_temperature`, 5 * time.Minute},
			{`max_over_time(iwhist_temperature[1h])`, time.Hour},
			{`min_over_time(iwhist_temperature[15m])`, 15 * time.Minute},
			{`sum_over_time(iwhist_requests_total[1h])`, time.Hour},
			{`last_over_time(iwhist_temperature[30m])`, 30 * time.Minute},
			{`avg_over_time(iwhist_temperature[1h])`, time.Hour},
			{`count_over_time(iwhist_temperature[1h])`, time.Hour},
			{`sum(iwhist_temperature) / count(iwhist_temperature)`, 5 * time.Minute},
			{`iwhist_requests_total{path=~"/a|/c"} - ignoring(path) group_left iwhist_requests_total{path="/b"}`, 5 * time.Minute},
		} {
			compare(t, ref, w, key, c.query, ref.histStart.Add(time.Hour), ref.histEnd, c.step)
		}
		// Subqueries, at times that are no multiple of their inner step (see above).
		off := 17*time.Second + 317*time.Millisecond
		for _, c := range []struct {
			query string
			step  time.Duration
		}{
			{`max_over_time(rate(iwhist_requests_total[5m])[30m:1m])`, 15 * time.Minute},
			{`avg_over_time(iwhist_temperature[20m:5m])`, 20 * time.Minute},
			{`min_over_time(sum by (host) (rate(iwhist_requests_total[2m]))[1h:])`, time.Hour},
		} {
			compare(t, ref, w, key, c.query, ref.histStart.Add(time.Hour+off), ref.histEnd, c.step)
		}
		for _, tier := range []string{"5m", "1h"} {
			if engine.SeriesRead(tier) == 0 {
				t.Errorf("no selector of the history was read from the %s tier: the comparison did not cover rollups", tier)
			}
		}

		// Live: every 5 s over the scrapes, at a millisecond no sample has.
		for _, q := range []string{
			`up`,
			`rate(iwtest_requests_total[30s])`,
			`increase(iwtest_requests_total[1m])`,
			`sum by (path) (rate(iwtest_requests_total[30s]))`,
			`histogram_quantile(0.9, sum by (le) (rate(iwtest_latency_seconds_bucket[30s])))`,
			`topk(2, iwtest_temperature)`,
			`absent(iwtest_missing)`,
			`iwtest_temperature offset 10s`,
			`label_replace(iwtest_temperature, "where", "$1", "room", "(.*)")`,
			`sum by (mode) (rate(node_cpu_seconds_total[30s]))`,
			`node_load1`,
			`node_memory_MemTotal_bytes`,
		} {
			if strings.HasPrefix(q, "node_") || strings.Contains(q, "(node_") {
				if nodeExporter == "" {
					continue
				}
			}
			compare(t, ref, w, key, q, ref.liveFrom, ref.liveTo, 5*time.Second)
		}
	})
}

// reference is a running Prometheus that holds what infrawatch holds.
type reference struct {
	url                string
	histStart, histEnd time.Time // the history's samples lie in [histStart, histEnd)
	liveFrom, liveTo   time.Time // the live comparison's first and last evaluation times
	log                *lockedLog
}

// lockedLog collects the output of the peers' processes, which write it from goroutines of their own.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startReference backfills the history into both, starts the exporters and Prometheus, and returns once
// two and a half minutes of live scrapes have reached infrawatch.
func startReference(t *testing.T, w *world, prometheusBin, promtool, nodeExporter string) *reference {
	t.Helper()
	dir := t.TempDir()
	ref := &reference{log: &lockedLog{}}
	ref.histEnd = time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	ref.histStart = ref.histEnd.Add(-6 * time.Hour)
	writeHistory(t, w, dir, promtool, ref.histStart, ref.histEnd)
	// The rollups hold the history materialized, as a running scheduler would have them.
	dbtest.MaterializeRollups(t, w.d, ref.histEnd)

	exporter := httptest.NewServer(testExporter())
	t.Cleanup(exporter.Close)
	targets := []string{strings.TrimPrefix(exporter.URL, "http://")}
	if nodeExporter != "" {
		port, err := pgcluster.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		ne := exec.Command(nodeExporter, "--web.listen-address="+addr, "--collector.disable-defaults",
			"--collector.cpu", "--collector.loadavg", "--collector.meminfo")
		ne.Stdout, ne.Stderr = ref.log, ref.log
		if err := ne.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ne.Process.Kill(); _ = ne.Wait() })
		targets = append(targets, addr)
	}
	port, err := pgcluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	ref.url = fmt.Sprintf("http://127.0.0.1:%d", port)
	quoted := make([]string, len(targets))
	for i, tg := range targets {
		quoted[i] = "'" + tg + "'"
	}
	// One shard: samples are sent in the order they were scraped, so the highest timestamp sent says
	// that everything before it was sent too.
	config := fmt.Sprintf(`
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: iwtest
    static_configs:
      - targets: [%s]
remote_write:
  - url: %s/api/v1/prom/write
    authorization:
      credentials: %s
    queue_config:
      max_shards: 1
      min_shards: 1
      batch_send_deadline: 1s
      min_backoff: 100ms
      max_backoff: 1s
`, strings.Join(quoted, ", "), w.srv.URL, w.ingestKey(t, w.a))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(prometheusBin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+strings.TrimPrefix(ref.url, "http://"))
	cmd.Stdout, cmd.Stderr = ref.log, ref.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	// Wait, push by push, until Prometheus has sent two and a half minutes of scrapes.
	var firstSent float64
	guard := time.After(5 * time.Minute) // a hang guard, not a wait
	for {
		select {
		case <-w.pushed:
		case <-guard:
			t.Fatalf("Prometheus did not remote-write 150 s of scrapes within 5 minutes; its log:\n%s", ref.log.String())
		}
		sent := ref.highestSent(t)
		if sent == 0 {
			continue
		}
		if firstSent == 0 {
			firstSent = sent
		}
		if sent-firstSent >= 150 {
			// The longest live window is a minute (and 10 s of offset): start past it.
			from := time.UnixMilli(int64(firstSent * 1000)).Add(80 * time.Second)
			to := time.UnixMilli(int64(sent * 1000)).Add(-5 * time.Second) // sent in full: scrapes of all targets up to here
			ref.liveFrom, ref.liveTo = alignLive(t, w, from, to)
			return ref
		}
	}
}

// highestSent is the newest sample timestamp Prometheus's remote write has sent, in seconds, from its
// own /metrics; 0 before the first send.
func (r *reference) highestSent(t *testing.T) float64 {
	t.Helper()
	resp, err := http.Get(r.url + "/metrics")
	if err != nil {
		return 0 // not listening yet
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "prometheus_remote_storage_queue_highest_sent_timestamp_seconds{") {
			v, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			return v
		}
	}
	return 0
}

// alignLive picks the live comparison's times: from and to moved to the same millisecond of the
// second, one that no sample of the tenant has, so that no sample lies on a window's edge.
func alignLive(t *testing.T, w *world, from, to time.Time) (time.Time, time.Time) {
	t.Helper()
	rows, err := w.d.Pool.Query(context.Background(), `
		SELECT DISTINCT (floor(date_part('epoch', s.time) * 1000)::bigint % 1000)::int
		  FROM ts.samples s JOIN app.series r ON r.id = s.series_id
		 WHERE r.tenant_id = $1 AND s.time >= $2`, w.a.id, from.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	taken := map[int]bool{}
	for rows.Next() {
		var ms int
		if err := rows.Scan(&ms); err != nil {
			t.Fatal(err)
		}
		for d := -3; d <= 3; d++ { // and a margin: a scrape's time moves by a millisecond or two
			taken[(ms+d+1000)%1000] = true
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for ms := 500; ms < 1500; ms += 7 {
		if !taken[ms%1000] {
			at := func(x time.Time) time.Time {
				return x.Truncate(time.Second).Add(time.Duration(ms%1000) * time.Millisecond)
			}
			return at(from), at(to)
		}
	}
	t.Fatalf("every millisecond of the second has a sample; cannot avoid the windows' edges")
	return from, to
}

// history series: the infrawatch name (with dots), the PromQL name, labels, and the value at step k.
type histSeries struct {
	name, prom string
	host       string
	labels     map[string]string
	value      func(k int) float64
}

func historySeries() []histSeries {
	var out []histSeries
	counter := func(rate, resetAt int) func(int) float64 {
		return func(k int) float64 {
			if resetAt > 0 && k >= resetAt {
				k -= resetAt
			}
			return float64(k*rate + (k*k)%7)
		}
	}
	out = append(out,
		histSeries{"iwhist.requests_total", "iwhist_requests_total", "h1", map[string]string{"path": "/a"}, counter(3, 700)},
		histSeries{"iwhist.requests_total", "iwhist_requests_total", "h1", map[string]string{"path": "/b"}, counter(5, 0)},
		histSeries{"iwhist.requests_total", "iwhist_requests_total", "h2", map[string]string{"path": "/a"}, counter(1, 0)},
	)
	for i, room := range []string{"r1", "r2", "r3"} {
		i := i
		out = append(out, histSeries{"iwhist.temperature", "iwhist_temperature", "h1", map[string]string{"room": room},
			func(k int) float64 { return 18 + float64((k*(7+i)+i*13)%40)/4 }})
	}
	// A histogram: per step, observations spread over the buckets; cumulative in le and in time.
	les := []string{"0.05", "0.1", "0.25", "0.5", "1", "+Inf"}
	per := func(k, b int) int { return (k*(b+3) + b) % (b + 4) } // observations of step k that fall in bucket b alone
	cumulative := func(k, upTo int) float64 {
		var n int
		for j := 0; j <= k; j++ {
			for b := 0; b <= upTo; b++ {
				n += per(j, b)
			}
		}
		return float64(n)
	}
	for b, le := range les {
		b := b
		out = append(out, histSeries{"iwhist.latency_seconds_bucket", "iwhist_latency_seconds_bucket", "h1", map[string]string{"le": le},
			func(k int) float64 { return cumulative(k, b) }})
	}
	return out
}

// writeHistory writes the history as OpenMetrics, makes Prometheus's blocks of it with promtool, and
// pushes the same samples to infrawatch's ingest API with an ingest key.
func writeHistory(t *testing.T, w *world, dir, promtool string, start, end time.Time) {
	t.Helper()
	series := historySeries()
	steps := int(end.Sub(start) / (15 * time.Second))
	at := func(k int) int64 {
		return start.Add(time.Duration(k)*15*time.Second + 1234*time.Millisecond).UnixMilli()
	}
	var om strings.Builder
	for k := 0; k < steps; k++ {
		ms := at(k)
		for _, s := range series {
			keys := []string{"host"}
			for l := range s.labels {
				keys = append(keys, l)
			}
			sort.Strings(keys)
			var parts []string
			for _, l := range keys {
				v := s.host
				if l != "host" {
					v = s.labels[l]
				}
				parts = append(parts, fmt.Sprintf("%s=%q", l, v))
			}
			fmt.Fprintf(&om, "%s{%s} %s %d.%03d\n", s.prom, strings.Join(parts, ","),
				strconv.FormatFloat(s.value(k), 'f', -1, 64), ms/1000, ms%1000)
		}
	}
	om.WriteString("# EOF\n")
	file := filepath.Join(dir, "history.om")
	if err := os.WriteFile(file, []byte(om.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "tsdb", "create-blocks-from", "openmetrics", file, filepath.Join(dir, "data")).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool: %v\n%s", err, out)
	}
	// infrawatch: one push per host, every series with all its points.
	key := w.ingestKey(t, w.a)
	byHost := map[string][]map[string]any{}
	for _, s := range series {
		points := make([][2]float64, steps)
		for k := range points {
			points[k] = [2]float64{float64(at(k)), s.value(k)}
		}
		byHost[s.host] = append(byHost[s.host], map[string]any{"name": s.name, "labels": s.labels, "points": points})
	}
	for host, metrics := range byHost {
		body, _ := json.Marshal(map[string]any{"host": map[string]any{"name": host}, "metrics": metrics})
		got := w.raw(t, "/api/v1/ingest", key, body)
		if got.status != http.StatusOK || !strings.Contains(got.raw, `"rejected":[]`) {
			t.Fatalf("history push for %s: %d %s", host, got.status, got.raw)
		}
	}
}

// testExporter serves, at each scrape, counters (one reset at the 40th scrape), gauges and a histogram
// whose values follow the number of scrapes.
func testExporter() http.Handler {
	var scrapes atomic.Int64
	var totals [2]atomic.Int64
	var buckets [5]atomic.Int64
	return http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		n := scrapes.Add(1)
		a := totals[0].Add(n%5 + 1)
		if n == 40 {
			totals[0].Store(0)
			a = 0
		}
		b := totals[1].Add((n * 3) % 7)
		var cum [5]int64
		var sum int64
		for i := range buckets {
			sum += buckets[i].Add((n + int64(i)) % 3)
			cum[i] = sum
		}
		rw.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(rw, "# TYPE iwtest_requests_total counter\n")
		fmt.Fprintf(rw, "iwtest_requests_total{path=\"/a\"} %d\niwtest_requests_total{path=\"/b\"} %d\n", a, b)
		fmt.Fprintf(rw, "# TYPE iwtest_temperature gauge\n")
		for i, room := range []string{"r1", "r2", "r3"} {
			fmt.Fprintf(rw, "iwtest_temperature{room=%q} %g\n", room, 20+float64((n*int64(i+2))%9)/2)
		}
		fmt.Fprintf(rw, "# TYPE iwtest_latency_seconds histogram\n")
		for i, le := range []string{"0.1", "0.25", "0.5", "1", "+Inf"} {
			fmt.Fprintf(rw, "iwtest_latency_seconds_bucket{le=%q} %d\n", le, cum[i])
		}
		fmt.Fprintf(rw, "iwtest_latency_seconds_sum %g\niwtest_latency_seconds_count %d\n", float64(cum[4])*0.3, cum[4])
	})
}

// compare evaluates q over [from, to] at step on both and fails on any difference.
func compare(t *testing.T, ref *reference, w *world, key, q string, from, to time.Time, step time.Duration) {
	t.Helper()
	params := url.Values{"query": {q}, "start": {seconds(from)}, "end": {seconds(to)}, "step": {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)}}
	resp, err := http.Get(ref.url + "/api/v1/query_range?" + params.Encode())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := decodePromMatrix(t, "Prometheus "+q, body)
	got := decodePromMatrix(t, "infrawatch "+q, []byte(w.promCall(t, "POST", "/api/v1/query_range", key, params).raw))
	if len(want) == 0 {
		t.Errorf("%s: Prometheus answers no series; the comparison proves nothing", q)
		return
	}
	var wantKeys, gotKeys []string
	for k := range want {
		wantKeys = append(wantKeys, k)
	}
	for k := range got {
		gotKeys = append(gotKeys, k)
	}
	sort.Strings(wantKeys)
	sort.Strings(gotKeys)
	if !slices.Equal(wantKeys, gotKeys) {
		t.Errorf("%s: series differ\n  Prometheus: %v\n  infrawatch: %v", q, wantKeys, gotKeys)
		return
	}
	for _, k := range wantKeys {
		wp, gp := want[k], got[k]
		if len(wp) != len(gp) {
			t.Errorf("%s: %s has %d points in Prometheus, %d in infrawatch\n  Prometheus: %v\n  infrawatch: %v", q, k, len(wp), len(gp), wp, gp)
			continue
		}
		for i := range wp {
			if wp[i].t != gp[i].t || !closeEnough(wp[i].v, gp[i].v) {
				t.Errorf("%s: %s at %s: Prometheus %v, infrawatch %v", q, k, time.UnixMilli(wp[i].t).UTC().Format(time.RFC3339Nano), wp[i], gp[i])
				break
			}
		}
	}
}

type promPoint struct {
	t int64
	v float64
}

// decodePromMatrix reads a query_range answer into its series' points by label set.
func decodePromMatrix(t *testing.T, what string, body []byte) map[string][]promPoint {
	t.Helper()
	var a struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &a); err != nil || a.Status != "success" || a.Data.ResultType != "matrix" {
		t.Fatalf("%s: %v %s", what, err, body)
	}
	out := map[string][]promPoint{}
	for _, s := range a.Data.Result {
		names := make([]string, 0, len(s.Metric))
		for k, v := range s.Metric {
			names = append(names, k+"="+strconv.Quote(v))
		}
		sort.Strings(names)
		var pts []promPoint
		for _, p := range s.Values {
			v, err := strconv.ParseFloat(p[1].(string), 64)
			if err != nil {
				t.Fatalf("%s: value %v", what, p[1])
			}
			pts = append(pts, promPoint{int64(math.Round(p[0].(float64) * 1000)), v})
		}
		out["{"+strings.Join(names, ",")+"}"] = pts
	}
	return out
}

func closeEnough(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	if math.IsInf(a, 0) || math.IsInf(b, 0) {
		return a == b
	}
	return a == b || math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

func seconds(t time.Time) string {
	ms := t.UnixMilli()
	return fmt.Sprintf("%d.%03d", ms/1000, ms%1000)
}
