package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang/snappy"
	"google.golang.org/protobuf/encoding/protowire"
)

// Every push holds metricsPerPush series of its agent with pointsPerPush points each, at timestamps no
// other push of that agent uses: each (series, timestamp) is pushed by one push only, so what is stored
// can be matched against what was acknowledged exactly.
const (
	metricsPerPush = 10
	pointsPerPush  = 2
	// floodAgents push floodPoints-sample bodies at one replica while the samples' writes stall, to fill its
	// ingest queue. They are agents of the accounting like the others (one series each).
	floodAgents = 6
	floodPoints = 10_000
)

// protocols the agents push with: agent a uses protocols[a%3].
var protocols = []string{"json", "line", "remote-write"}

// push is one push of an agent: its series are m0…m(metrics-1), its points ms, ms+1, … with value value.
type push struct {
	agent   int
	ms      int64
	metrics int
	points  int
	value   float64
}

func (p push) samples() int { return p.metrics * p.points }

// recorder keeps what was acknowledged. acked[a] is written only by agent a's goroutine and read after
// every agent is done.
type recorder struct {
	acked          [][]push
	pushesAcked    atomic.Int64
	samplesAcked   atomic.Int64
	unacked        atomic.Int64 // pushes still unacknowledged when the drain ended (not a loss: never acknowledged)
	attempts       atomic.Int64
	floodRefused   atomic.Int64 // flood pushes answered 429 (the queue was full) or 503
	rejectedPoints atomic.Int64 // points a 2xx answer said it did not take (must be 0: the run sends only valid points)

	mu       sync.Mutex
	statuses map[string]int // answers by status ("conn" for no answer), for the table
	oddities []string       // the first unexpected answers, for the log
}

func newRecorder(agents int) *recorder {
	return &recorder{acked: make([][]push, agents), statuses: map[string]int{}}
}

func (r *recorder) status(s string) {
	r.mu.Lock()
	r.statuses[s]++
	r.mu.Unlock()
}

func (r *recorder) oddity(s string) {
	r.mu.Lock()
	if len(r.oddities) < 20 {
		r.oddities = append(r.oddities, s)
	}
	r.mu.Unlock()
}

func (r *recorder) ack(p push) {
	r.acked[p.agent] = append(r.acked[p.agent], p)
	r.pushesAcked.Add(1)
	r.samplesAcked.Add(int64(p.samples()))
}

func (r *recorder) statusSummary() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	keys := make([]string, 0, len(r.statuses))
	for k := range r.statuses {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s×%d", k, r.statuses[k])
	}
	return strings.Join(parts, " ")
}

// client sends pushes to the replicas round-robin, so a retry goes to the next replica (fail-over), and
// measures the longest span in which clients tried and no replica acknowledged anything.
type client struct {
	addrs []string
	next  atomic.Uint64
	hc    *http.Client
	rec   *recorder

	mu        sync.Mutex
	lastOK    time.Time
	failing   bool
	maxGap    time.Duration
	maxGapEnd time.Time
}

func newClient(addrs []string, rec *recorder) *client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &client{addrs: addrs, rec: rec, lastOK: time.Now(),
		hc: &http.Client{Timeout: 5 * time.Second, Transport: tr}}
}

// send makes one attempt at the next replica: the status (0 when no answer came) and the answer's body.
func (c *client) send(ctx context.Context, addr, path, key string, headers map[string]string, body []byte) (int, []byte) {
	c.rec.attempts.Add(1)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil
	}
	req.Header.Set("Authorization", "Bearer "+key)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.rec.status("conn")
		c.observe(false)
		return 0, nil
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	c.rec.status(fmt.Sprint(resp.StatusCode))
	c.observe(resp.StatusCode/100 == 2)
	return resp.StatusCode, answer
}

func (c *client) pick() string { return c.addrs[c.next.Add(1)%uint64(len(c.addrs))] }

func (c *client) observe(ok bool) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !ok {
		c.failing = true
		return
	}
	if c.failing {
		if gap := now.Sub(c.lastOK); gap > c.maxGap {
			c.maxGap, c.maxGapEnd = gap, now
		}
		c.failing = false
	}
	if now.After(c.lastOK) {
		c.lastOK = now
	}
}

// longestOutage is the longest span in which clients were trying and no replica acknowledged a push,
// and when it ended.
func (c *client) longestOutage() (time.Duration, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.maxGap, c.maxGapEnd
}

// encode builds the request of a push in its agent's protocol: path, headers, body.
func encode(p push, protocol string) (string, map[string]string, []byte) {
	host := fmt.Sprintf("agent-%d", p.agent)
	switch protocol {
	case "line":
		var b bytes.Buffer
		for pt := range p.points {
			fmt.Fprintf(&b, "chaos,host=%s ", host)
			for m := range p.metrics {
				if m > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, "m%d=%g", m, p.value)
			}
			fmt.Fprintf(&b, " %d\n", p.ms+int64(pt))
		}
		return "/api/v1/write?precision=ms", nil, b.Bytes()
	case "remote-write":
		var req []byte
		for m := range p.metrics {
			var series []byte
			for _, l := range [][2]string{{"__name__", fmt.Sprintf("chaos_m%d", m)}, {"host", host}} {
				label := protowire.AppendTag(nil, 1, protowire.BytesType)
				label = protowire.AppendString(label, l[0])
				label = protowire.AppendTag(label, 2, protowire.BytesType)
				label = protowire.AppendString(label, l[1])
				series = protowire.AppendTag(series, 1, protowire.BytesType)
				series = protowire.AppendBytes(series, label)
			}
			for pt := range p.points {
				sample := protowire.AppendTag(nil, 1, protowire.Fixed64Type)
				sample = protowire.AppendFixed64(sample, math.Float64bits(p.value))
				sample = protowire.AppendTag(sample, 2, protowire.VarintType)
				sample = protowire.AppendVarint(sample, uint64(p.ms+int64(pt)))
				series = protowire.AppendTag(series, 2, protowire.BytesType)
				series = protowire.AppendBytes(series, sample)
			}
			req = protowire.AppendTag(req, 1, protowire.BytesType)
			req = protowire.AppendBytes(req, series)
		}
		return "/api/v1/prom/write", map[string]string{"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
			"X-Prometheus-Remote-Write-Version": "0.1.0"}, snappy.Encode(nil, req)
	default:
		var b bytes.Buffer
		fmt.Fprintf(&b, `{"host":{"name":%q},"metrics":[`, host)
		for m := range p.metrics {
			if m > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"name":"chaos.m%d","points":[`, m)
			for pt := range p.points {
				if pt > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, "[%d,%g]", p.ms+int64(pt), p.value)
			}
			b.WriteString("]}")
		}
		b.WriteString("]}")
		return "/api/v1/ingest", map[string]string{"Content-Type": "application/json"}, b.Bytes()
	}
}

// startAgents runs the agents: each pushes every o.pushEvery until loadCtx ends, and retries a push
// that was not acknowledged (on the next replica, with backoff) until it is, or until retryCtx ends.
// The channel closes when every agent is done.
func startAgents(loadCtx, retryCtx context.Context, o options, w *world, cl *client, rec *recorder) <-chan struct{} {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for a := range o.agents {
		rng := rand.New(rand.NewPCG(uint64(o.seed), uint64(a)))
		wg.Go(func() {
			runAgent(loadCtx, retryCtx, o, a, w.keys[a%len(w.keys)], protocols[a%len(protocols)], cl, rec, rng)
		})
	}
	go func() { wg.Wait(); close(done) }()
	return done
}

func runAgent(loadCtx, retryCtx context.Context, o options, a int, key, protocol string, cl *client, rec *recorder, rng *rand.Rand) {
	next := time.Now().Add(time.Duration(rng.Int64N(int64(o.pushEvery))))
	var lastMS int64
	for seq := 0; ; seq++ {
		select {
		case <-loadCtx.Done():
			return
		case <-time.After(time.Until(next)):
		}
		ms := max(time.Now().UnixMilli(), lastMS+pointsPerPush)
		lastMS = ms + pointsPerPush - 1
		p := push{agent: a, ms: ms, metrics: metricsPerPush, points: pointsPerPush, value: float64(seq % 1000)}
		deliver(retryCtx, cl, rec, key, protocol, p, rng)
		next = next.Add(o.pushEvery)
		if now := time.Now(); next.Before(now) {
			next = now // an agent that spent long retrying pushes its next sample now, not a burst of them
		}
	}
}

// deliver sends p until a replica acknowledges it or retryCtx ends, as the real agent retries its spool.
func deliver(retryCtx context.Context, cl *client, rec *recorder, key, protocol string, p push, rng *rand.Rand) {
	path, headers, body := encode(p, protocol)
	backoff := 250 * time.Millisecond
	for {
		code, answer := cl.send(retryCtx, cl.pick(), path, key, headers, body)
		if code/100 == 2 {
			if protocol == "json" {
				var out struct {
					Accepted int `json:"accepted"`
				}
				if err := json.Unmarshal(answer, &out); err != nil || out.Accepted != p.samples() {
					rec.rejectedPoints.Add(int64(p.samples() - out.Accepted))
					rec.oddity(fmt.Sprintf("agent %d: %d %s", p.agent, code, answer))
				}
			}
			rec.ack(p)
			return
		}
		if code != 0 && code != http.StatusTooManyRequests && code != http.StatusServiceUnavailable {
			rec.oddity(fmt.Sprintf("agent %d (%s): %d %s", p.agent, protocol, code, answer))
		}
		if retryCtx.Err() != nil {
			rec.unacked.Add(1)
			return
		}
		jitter := time.Duration(rng.Int64N(int64(backoff)/2 + 1))
		select {
		case <-retryCtx.Done():
		case <-time.After(backoff/2 + jitter):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// flooder pushes big bodies at one replica, to fill its ingest queue (429) while the writes stall, then
// a little longer once they flow again, so that some of its late samples are acknowledged. While the
// writes stall its client gives up on an answer after floodTimeout, so that pushes pile up in the queue
// instead of waiting for their commit; the outages it sees are not the agents' and are not counted.
type flooder struct {
	impatient, patient *client
	next               []int64 // next timestamp of each flood agent's series: every push has its own
}

const floodTimeout = 300 * time.Millisecond

func newFlooder(addrs []string, rec *recorder) *flooder {
	f := &flooder{impatient: newClient(addrs, rec), patient: newClient(addrs, rec), next: make([]int64, floodAgents)}
	f.impatient.hc.Timeout = floodTimeout
	// Six hours back: samples late for buckets the rollups have materialized, as a spool replay would be.
	for k := range f.next {
		f.next[k] = time.Now().Add(-6 * time.Hour).UnixMilli()
	}
	return f
}

// flood pushes from floodAgents goroutines at addr until ctx ends, without retrying. What is
// acknowledged is recorded like any push.
func (f *flooder) flood(ctx context.Context, cl *client, o options, w *world, rec *recorder, addr string, round int) {
	var wg sync.WaitGroup
	for k := range floodAgents {
		wg.Go(func() {
			key := w.keys[k%len(w.keys)]
			for ctx.Err() == nil {
				p := push{agent: o.agents + k, ms: f.next[k], metrics: 1, points: floodPoints, value: float64(round)}
				f.next[k] += floodPoints
				path, headers, body := encode(p, "json")
				code, _ := cl.send(context.Background(), addr, path, key, headers, body)
				switch {
				case code/100 == 2:
					rec.ack(p)
				case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
					rec.floodRefused.Add(1)
					time.Sleep(50 * time.Millisecond)
				case code != 0:
					time.Sleep(50 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
}
