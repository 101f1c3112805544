//go:build linux

// The ICMP tests need Linux: they build network namespaces with ip(8) and join them with setns(2).
// Network rule: they send only to 127.0.0.0/8, ::1, or hosts inside namespaces they create.

package checks

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// icmpMetricNames are every metric an answered ICMP check reports.
var icmpMetricNames = []string{
	"icmp.jitter_ms", "icmp.loss_pct", "icmp.received", "icmp.rtt_avg_ms", "icmp.rtt_max_ms",
	"icmp.rtt_min_ms", "icmp.sent",
}

// icmpCheck is an ICMP check of target with quick pings.
func icmpCheck(target string, settings string) Check {
	return Check{ID: 1, Kind: "icmp", Target: target, Timeout: 5 * time.Second, Settings: json.RawMessage(settings)}
}

// icmpMetrics indexes an outcome's metrics by name, failing on a duplicate.
func icmpMetrics(t *testing.T, out Outcome) map[string]float64 {
	t.Helper()
	m := map[string]float64{}
	for _, x := range out.Metrics {
		if _, dup := m[x.Name]; dup {
			t.Errorf("metric %s reported twice", x.Name)
		}
		m[x.Name] = x.Value
	}
	return m
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func TestICMPParams(t *testing.T) {
	tests := []struct {
		name, settings string
		want           icmpParams
		wantErr        string
	}{
		{name: "defaults", settings: "", want: icmpParams{count: 3, interval: time.Second, size: 56}},
		{name: "empty object", settings: "{}", want: icmpParams{count: 3, interval: time.Second, size: 56}},
		{
			name:     "all set",
			settings: `{"count":20,"interval_ms":100,"packet_size":1472}`,
			want:     icmpParams{count: 20, interval: 100 * time.Millisecond, size: 1472},
		},
		{name: "count out of range", settings: `{"count":21}`, wantErr: "settings.count must be from 1 to 20"},
		{name: "unknown setting", settings: `{"ttl":3}`, wantErr: "settings.ttl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := icmpParamsOf("192.0.2.1", json.RawMessage(tt.settings))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestICMPOutcome(t *testing.T) {
	addr := netip.MustParseAddr("192.0.2.7")
	tests := []struct {
		name       string
		stats      icmpStats
		wantUp     bool
		wantLoss   float64
		wantReason string
	}{
		{
			name:   "all answered",
			stats:  icmpStats{sent: 3, received: 3, min: time.Millisecond, avg: 2 * time.Millisecond, max: 3 * time.Millisecond, mdev: 800 * time.Microsecond},
			wantUp: true,
		},
		{
			name:     "one answered",
			stats:    icmpStats{sent: 3, received: 1, min: time.Millisecond, avg: time.Millisecond, max: time.Millisecond},
			wantUp:   true,
			wantLoss: 200.0 / 3,
		},
		{
			name:       "none answered",
			stats:      icmpStats{sent: 3},
			wantLoss:   100,
			wantReason: "no reply to 3 pings to 192.0.2.7 (100 % loss)",
		},
		{
			name:       "one sent, none answered",
			stats:      icmpStats{sent: 1},
			wantLoss:   100,
			wantReason: "no reply to 1 ping to 192.0.2.7 (100 % loss)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := icmpOutcome(addr, tt.stats)
			m := icmpMetrics(t, out)
			if out.Up != tt.wantUp || out.Reason != tt.wantReason {
				t.Fatalf("up %v reason %q; want %v %q", out.Up, out.Reason, tt.wantUp, tt.wantReason)
			}
			if math.Abs(m["icmp.loss_pct"]-tt.wantLoss) > 1e-9 || out.Detail["loss_pct"] != m["icmp.loss_pct"] {
				t.Errorf("loss %v / %v, want %v", m["icmp.loss_pct"], out.Detail["loss_pct"], tt.wantLoss)
			}
			if m["icmp.sent"] != float64(tt.stats.sent) || m["icmp.received"] != float64(tt.stats.received) {
				t.Errorf("sent/received metrics %v/%v", m["icmp.sent"], m["icmp.received"])
			}
			if out.Detail["address"] != "192.0.2.7" || out.Detail["sent"] != tt.stats.sent || out.Detail["received"] != tt.stats.received {
				t.Errorf("detail %v", out.Detail)
			}
			if tt.wantUp {
				if got := sortedKeys(m); !slices.Equal(got, icmpMetricNames) {
					t.Errorf("metrics %v, want %v", got, icmpMetricNames)
				}
				if out.Latency != tt.stats.avg || m["icmp.rtt_avg_ms"] != float64(tt.stats.avg)/1e6 {
					t.Errorf("latency %v, avg metric %v; want %v", out.Latency, m["icmp.rtt_avg_ms"], tt.stats.avg)
				}
				if m["icmp.jitter_ms"] != float64(tt.stats.mdev)/1e6 {
					t.Errorf("jitter %v, want %v", m["icmp.jitter_ms"], tt.stats.mdev)
				}
			} else if got := sortedKeys(m); !slices.Equal(got, []string{"icmp.loss_pct", "icmp.received", "icmp.sent"}) {
				t.Errorf("metrics %v, want no RTT metrics without a reply", got)
			}
		})
	}
}

func TestICMPLoopback(t *testing.T) {
	p := NewProber(&Guard{AllowPrivate: true})
	tests := []struct {
		name, target, settings string
		count                  int
		ipv6                   bool
	}{
		{name: "127.0.0.1", target: "127.0.0.1", settings: `{"interval_ms":100}`, count: 3},
		{name: "127.0.0.2", target: "127.0.0.2", settings: `{"interval_ms":100}`, count: 3},
		{name: "smallest packet", target: "127.0.0.3", settings: `{"count":2,"interval_ms":100,"packet_size":8}`, count: 2},
		{name: "largest packet", target: "127.0.0.4", settings: `{"count":2,"interval_ms":100,"packet_size":1472}`, count: 2},
		{name: "::1", target: "::1", settings: `{"interval_ms":100}`, count: 3, ipv6: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.ipv6 {
				c, err := net.ListenPacket("udp6", "[::1]:0")
				if err != nil {
					t.Skipf("IPv6 loopback does not work here: %v", err)
				}
				c.Close()
			}
			out := p.Probe(t.Context(), icmpCheck(tt.target, tt.settings))
			if !out.Up || out.Reason != "" {
				t.Fatalf("down: %q (detail %v)", out.Reason, out.Detail)
			}
			m := icmpMetrics(t, out)
			if got := sortedKeys(m); !slices.Equal(got, icmpMetricNames) {
				t.Errorf("metrics %v, want %v", got, icmpMetricNames)
			}
			if m["icmp.loss_pct"] != 0 || m["icmp.sent"] != float64(tt.count) || m["icmp.received"] != float64(tt.count) {
				t.Errorf("loss %v%%, sent %v, received %v; want 0%%, %d, %d", m["icmp.loss_pct"], m["icmp.sent"], m["icmp.received"], tt.count, tt.count)
			}
			if !(0 < m["icmp.rtt_min_ms"] && m["icmp.rtt_min_ms"] <= m["icmp.rtt_avg_ms"] && m["icmp.rtt_avg_ms"] <= m["icmp.rtt_max_ms"]) {
				t.Errorf("rtt min %v avg %v max %v", m["icmp.rtt_min_ms"], m["icmp.rtt_avg_ms"], m["icmp.rtt_max_ms"])
			}
			if m["icmp.jitter_ms"] < 0 || out.Latency <= 0 {
				t.Errorf("jitter %v, latency %v", m["icmp.jitter_ms"], out.Latency)
			}
			if out.Detail["address"] != tt.target || out.Detail["sent"] != tt.count || out.Detail["received"] != tt.count || out.Detail["loss_pct"] != 0.0 {
				t.Errorf("detail %v", out.Detail)
			}
		})
	}
	t.Logf("ICMP socket mode chosen by this process: %s", &icmpSockets)
}

func TestICMPDownHost(t *testing.T) {
	ns := icmpNetns(t)
	host := icmpVethHost(t, ns)
	p := NewProber(&Guard{AllowPrivate: true})
	check := icmpCheck(host.String(), `{"interval_ms":100}`)
	check.Timeout = 2 * time.Second

	// The namespaced host answers while nothing drops its pings, so the setup works.
	if out := p.Probe(t.Context(), check); !out.Up {
		t.Fatalf("host in namespace %s does not answer before the drop: %q", ns, out.Reason)
	}

	// The host's kernel now ignores echo requests, as a firewall dropping them would.
	icmpSysctl(t, ns, "net.ipv4.icmp_echo_ignore_all", "1")
	out := p.Probe(t.Context(), check)
	if out.Up {
		t.Fatalf("up after the drop: %v", out.Detail)
	}
	if want := fmt.Sprintf("no reply to 3 pings to %s (100 %% loss)", host); out.Reason != want {
		t.Errorf("reason %q, want %q", out.Reason, want)
	}
	m := icmpMetrics(t, out)
	if got := sortedKeys(m); !slices.Equal(got, []string{"icmp.loss_pct", "icmp.received", "icmp.sent"}) {
		t.Errorf("metrics %v, want no RTT metrics without a reply", got)
	}
	if m["icmp.loss_pct"] != 100 || m["icmp.sent"] != 3 || m["icmp.received"] != 0 || out.Latency != 0 {
		t.Errorf("loss %v%%, sent %v, received %v, latency %v", m["icmp.loss_pct"], m["icmp.sent"], m["icmp.received"], out.Latency)
	}
}

// TestICMPSocketChoice checks the choice between datagram and raw sockets, for IPv4 and IPv6, in
// namespaces whose net.ipv4.ping_group_range does and does not let this process's group ping
// without privilege.
func TestICMPSocketChoice(t *testing.T) {
	ns := icmpNetns(t)
	gid := strconv.Itoa(os.Getegid())
	tests := []struct {
		name, pingGroups string
		want             int32
	}{
		{name: "no group may ping", pingGroups: "1 0", want: icmpRaw},
		{name: "our group may ping", pingGroups: gid + " " + gid, want: icmpDatagram},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			icmpSysctl(t, ns, "net.ipv4.ping_group_range", tt.pingGroups)
			var sc socketChooser
			t.Cleanup(sc.close)
			for _, target := range []string{"127.0.0.1", "::1"} {
				addr := netip.MustParseAddr(target)
				var stats icmpStats
				var err, noIPv6 error
				icmpInNetns(t, ns, func() {
					if addr.Is6() {
						c, err := net.ListenPacket("udp6", "[::1]:0")
						if err != nil {
							noIPv6 = err
							return
						}
						c.Close()
					}
					stats, err = sc.ping(t.Context(), addr, icmpParams{count: 2, interval: 100 * time.Millisecond, size: 56})
				})
				if noIPv6 != nil {
					t.Logf("IPv6 loopback does not work in the namespace: %v", noIPv6)
					continue
				}
				if err != nil || stats.received != 2 {
					t.Fatalf("ping %s in namespace: %v, %+v", addr, err, stats)
				}
				family := icmpV4
				if addr.Is6() {
					family = icmpV6
				}
				if got := sc.mode[family].Load(); got != tt.want {
					t.Errorf("%s: chose %s", addr, &sc)
				}
			}
			t.Logf("with ping_group_range %q: %s", tt.pingGroups, &sc)
		})
	}
}

func TestICMPGuardRefuses(t *testing.T) {
	p := NewProber(&Guard{AllowPrivate: false})
	for _, target := range []string{"127.0.0.1", "0x7f000001", "::1", "10.250.0.2"} {
		t.Run(target, func(t *testing.T) {
			out := p.Probe(t.Context(), icmpCheck(target, ""))
			if out.Up || !strings.Contains(out.Reason, "not allowed") {
				t.Fatalf("up %v, reason %q; want a refusal", out.Up, out.Reason)
			}
			if len(out.Metrics) != 0 || out.Detail["sent"] != nil {
				t.Errorf("a refused check reported metrics %v, detail %v", out.Metrics, out.Detail)
			}
		})
	}

	// In a namespace of its own the kernel's echo counter proves it: a refused check sends nothing.
	t.Run("sends nothing", func(t *testing.T) {
		ns := icmpNetns(t)
		before := icmpOutEchos(t, ns)
		var out Outcome
		icmpInNetns(t, ns, func() { out = p.Probe(t.Context(), icmpCheck("127.0.0.1", "")) })
		if out.Up || !strings.Contains(out.Reason, "not allowed") {
			t.Fatalf("up %v, reason %q; want a refusal", out.Up, out.Reason)
		}
		if after := icmpOutEchos(t, ns); after != before {
			t.Fatalf("the refused check sent %d echo requests", after-before)
		}
		// The counter does see pings from this namespace.
		var sc socketChooser
		t.Cleanup(sc.close)
		icmpInNetns(t, ns, func() {
			_, _ = sc.ping(t.Context(), netip.MustParseAddr("127.0.0.1"), icmpParams{count: 1, interval: 100 * time.Millisecond, size: 56})
		})
		if after := icmpOutEchos(t, ns); after != before+1 {
			t.Fatalf("one ping moved the echo counter from %d to %d", before, after)
		}
	})
}

func TestICMPContext(t *testing.T) {
	p := NewProber(&Guard{AllowPrivate: true})

	t.Run("cancelled before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		out := p.Probe(ctx, icmpCheck("127.0.0.1", ""))
		if out.Up || out.Reason != "not pinged: the check was cancelled" {
			t.Fatalf("up %v, reason %q", out.Up, out.Reason)
		}
		if len(out.Metrics) != 0 {
			t.Errorf("metrics %v from a check that never ran", out.Metrics)
		}
	})

	// Twenty pings a second apart, cancelled after the first: the outcome is down, not the up that
	// the full run would give.
	t.Run("cancelled during", func(t *testing.T) {
		ctx := cancelAtFirstPing(t)
		check := icmpCheck("127.0.0.1", `{"count":20,"interval_ms":1000}`)
		check.Timeout = time.Minute
		out := p.Probe(ctx, check)
		if out.Up || !strings.HasPrefix(out.Reason, "cancelled after 1 of 20 pings to 127.0.0.1") {
			t.Fatalf("up %v, reason %q", out.Up, out.Reason)
		}
	})

	// A timeout shorter than the run ends it; the pings answered until then count.
	t.Run("timeout ends the run", func(t *testing.T) {
		check := icmpCheck("127.0.0.1", `{"count":20,"interval_ms":200}`)
		check.Timeout = 500 * time.Millisecond
		out := p.Probe(t.Context(), check)
		sent, _ := out.Detail["sent"].(int)
		if !out.Up || sent < 1 || sent >= 20 {
			t.Fatalf("up %v, reason %q, detail %v", out.Up, out.Reason, out.Detail)
		}
	})
}

// TestICMPLeavesNoGoroutines checks that a run, whether it ends with its pings, at its timeout or by
// cancellation, has stopped every goroutine it started by the time the probe returns. The shared
// socket's reader, started by the first run, stays; so a warm-up run opens it before counting.
func TestICMPLeavesNoGoroutines(t *testing.T) {
	p := NewProber(&Guard{AllowPrivate: true})
	if out := p.Probe(t.Context(), icmpCheck("127.0.0.1", `{"count":1}`)); !out.Up {
		t.Fatalf("warm-up run down: %q", out.Reason)
	}
	readers := icmpReaders()
	if readers < 1 {
		t.Fatal("no goroutine reads an ICMP socket after a run; icmpReaders looks for the wrong function")
	}
	before := runtime.NumGoroutine()
	p.Probe(t.Context(), icmpCheck("127.0.0.1", `{"count":2,"interval_ms":100}`))
	timedOut := icmpCheck("127.0.0.1", `{"count":20,"interval_ms":100}`)
	timedOut.Timeout = 250 * time.Millisecond
	p.Probe(t.Context(), timedOut)
	if out := p.Probe(cancelAtFirstPing(t), icmpCheck("127.0.0.1", `{"count":20,"interval_ms":100}`)); !strings.HasPrefix(out.Reason, "cancelled") {
		t.Errorf("reason %q, want a cancellation", out.Reason)
	}
	icmpV4Socket(t).testSent = nil
	// Many runs at once share the one socket and its reader.
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			if out := p.Probe(t.Context(), icmpCheck(fmt.Sprintf("127.0.2.%d", i+1), `{"count":2,"interval_ms":100}`)); !out.Up {
				t.Errorf("127.0.2.%d: %s", i+1, out.Reason)
			}
		})
	}
	wg.Wait()
	if got := icmpReaders(); got != readers {
		t.Errorf("%d socket readers after the runs, %d before", got, readers)
	}
	// Goroutines of earlier tests may still be winding down; none may have been added.
	for range 50 {
		if runtime.NumGoroutine() <= before {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	buf := make([]byte, 1<<20)
	t.Fatalf("%d goroutines before the runs, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
}

// icmpV4Socket is the process's shared IPv4 ICMP socket, which runs to 127.0.0.1 use.
func icmpV4Socket(t *testing.T) *icmpSocket {
	t.Helper()
	s, err := icmpSockets.socketFor(false)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// cancelAtFirstPing returns a context that is cancelled as soon as the shared IPv4 socket has sent the
// next ping. The probe that uses it must run on the test's goroutine, which sets the socket's test
// signal, and no other run may use that socket meanwhile (the ICMP tests are not parallel).
func cancelAtFirstPing(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	sent := make(chan struct{}, 1)
	s := icmpV4Socket(t)
	s.testSent = sent
	t.Cleanup(func() { s.testSent = nil })
	go func() {
		select {
		case <-sent:
		case <-ctx.Done():
		}
		cancel()
	}()
	return ctx
}

// icmpReaders counts the goroutines reading shared ICMP sockets.
func icmpReaders() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "checks.(*icmpSocket).read(")
		}
		buf = make([]byte, 2*len(buf))
	}
}

func TestICMPStats(t *testing.T) {
	var st icmpStats
	for _, ms := range []time.Duration{3, 1, 4, 2} {
		st.add(ms * time.Millisecond)
	}
	st.sent = 5
	// ping(8)'s mdev is the population standard deviation: sqrt(((1.5)² + (0.5)² + (0.5)² + (1.5)²) / 4).
	wantMdev := time.Duration(math.Sqrt(1.25) * float64(time.Millisecond))
	if st.min != time.Millisecond || st.max != 4*time.Millisecond || st.avg != 2500*time.Microsecond ||
		(st.mdev-wantMdev).Abs() > time.Nanosecond {
		t.Errorf("min %v avg %v max %v mdev %v; want 1ms 2.5ms 4ms %v", st.min, st.avg, st.max, st.mdev, wantMdev)
	}
	if st.received != 4 || st.loss() != 20 {
		t.Errorf("received %d, loss %v%%; want 4, 20%%", st.received, st.loss())
	}
	if (&icmpStats{}).loss() != 0 {
		t.Error("loss of a run that sent nothing is not 0")
	}
}

// TestICMPDeliver checks how the reader matches what it reads to waiting requests.
func TestICMPDeliver(t *testing.T) {
	s := &icmpSocket{raw: true, id: 0x1234, dead: make(chan struct{}), waiting: map[icmpKey]icmpWaiter{}}
	copy(s.cookie[:], "cookie!!")
	from := netip.MustParseAddr("127.0.0.9")
	replies := make(chan time.Duration, 4)
	key, err := s.expect(from, replies)
	if err != nil {
		t.Fatal(err)
	}
	sent := s.waiting[key].sent
	reply := func(typ byte, id, seq uint16, cookie string) []byte {
		msg := make([]byte, 8+56)
		msg[0] = typ
		binary.BigEndian.PutUint16(msg[4:], id)
		binary.BigEndian.PutUint16(msg[6:], seq)
		copy(msg[8:], cookie)
		return msg
	}
	good := reply(0, 0x1234, key.seq, "cookie!!")
	steps := []struct {
		name  string
		msg   []byte
		from  netip.Addr
		match bool
	}{
		{name: "another source", msg: good, from: netip.MustParseAddr("127.0.0.8")},
		{name: "another sequence", msg: reply(0, 0x1234, key.seq+1, "cookie!!"), from: from},
		{name: "another identifier", msg: reply(0, 0x1235, key.seq, "cookie!!"), from: from},
		{name: "another cookie", msg: reply(0, 0x1234, key.seq, "biscuit!"), from: from},
		{name: "an echo request", msg: reply(8, 0x1234, key.seq, "cookie!!"), from: from},
		{name: "truncated", msg: good[:12], from: from},
		{name: "the reply", msg: good, from: from, match: true},
		{name: "its duplicate", msg: good, from: from},
	}
	for _, st := range steps {
		at := sent.Add(3 * time.Millisecond)
		s.deliver(st.msg, st.from, at)
		select {
		case rtt := <-replies:
			if !st.match {
				t.Errorf("%s: matched", st.name)
			} else if rtt != 3*time.Millisecond {
				t.Errorf("%s: rtt %v, want 3ms", st.name, rtt)
			}
		default:
			if st.match {
				t.Errorf("%s: not matched", st.name)
			}
		}
	}

	// A request whose run has ended matches nothing, even when a later request to another address
	// reuses its sequence number after the counter wraps.
	late, _ := s.expect(from, replies)
	s.forget(late)
	icmpSeq.Store(uint32(late.seq) - 1 + 1<<16)
	other, _ := s.expect(netip.MustParseAddr("127.0.0.10"), replies)
	if other.seq != late.seq {
		t.Fatalf("sequence %d after the wrap, want %d", other.seq, late.seq)
	}
	s.deliver(reply(0, 0x1234, late.seq, "cookie!!"), from, time.Now())
	if len(replies) != 0 {
		t.Error("a reply to an ended run matched")
	}

	// A sequence number still waiting for a reply from the same address is skipped.
	icmpSeq.Store(uint32(other.seq) - 1)
	next, _ := s.expect(other.addr, replies)
	if next.seq != other.seq+1 {
		t.Errorf("sequence %d still waiting was reused: got %d", other.seq, next.seq)
	}

	// A datagram socket's kernel sets the identifier; any is accepted.
	s.raw = false
	s.deliver(reply(0, 0x4321, next.seq, "cookie!!"), other.addr, time.Now())
	if len(replies) != 1 {
		t.Error("a datagram socket's reply with the kernel's identifier did not match")
	}
}

// TestICMPSequenceWrap pings across the wrap of the 16-bit sequence number.
func TestICMPSequenceWrap(t *testing.T) {
	p := NewProber(&Guard{AllowPrivate: true})
	for _, target := range []string{"127.0.0.5", "::1"} {
		t.Run(target, func(t *testing.T) {
			if target == "::1" {
				c, err := net.ListenPacket("udp6", "[::1]:0")
				if err != nil {
					t.Skipf("IPv6 loopback does not work here: %v", err)
				}
				c.Close()
			}
			icmpSeq.Store(math.MaxUint16 - 1) // the run sends 65535, 0, 1
			out := p.Probe(t.Context(), icmpCheck(target, `{"count":3,"interval_ms":100}`))
			if !out.Up || out.Detail["received"] != 3 {
				t.Fatalf("up %v, reason %q, detail %v", out.Up, out.Reason, out.Detail)
			}
		})
	}
}

// TestICMPSocketFailure checks that a socket whose read fails ends the runs waiting on it with a
// reason, and that the next run opens a new one.
func TestICMPSocketFailure(t *testing.T) {
	var sc socketChooser
	t.Cleanup(sc.close)
	addr := netip.MustParseAddr("127.0.0.1")
	s, err := sc.socketFor(false)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		stats icmpStats
		err   error
	}
	done := make(chan result, 1)
	sent := make(chan struct{}, 1)
	s.testSent = sent
	go func() {
		st, err := sc.ping(t.Context(), addr, icmpParams{count: 20, interval: 100 * time.Millisecond, size: 56})
		done <- result{st, err}
	}()
	select {
	case <-sent:
	case <-time.After(5 * time.Second): // a guard against hanging
		t.Fatal("the run sent no ping")
	}
	_ = s.conn.Close() // the reader's next read fails
	select {
	case r := <-done:
		if r.err == nil || !strings.HasPrefix(r.err.Error(), "the ICMP socket failed: ") || r.stats.sent < 1 {
			t.Fatalf("run ended with %v after %d pings; want a socket failure", r.err, r.stats.sent)
		}
		t.Logf("run ended: %v", r.err)
	case <-time.After(5 * time.Second):
		t.Fatal("the run did not end when its socket failed")
	}
	st, err := sc.ping(t.Context(), addr, icmpParams{count: 2, interval: 50 * time.Millisecond, size: 56})
	if err != nil || st.received != 2 {
		t.Fatalf("run after the failure: %v, %+v", err, st)
	}
	if s2, _ := sc.socketFor(false); s2 == s {
		t.Error("the failed socket is still in use")
	}
}

// BenchmarkICMPLoopback measures the CPU one ICMP check with default settings (3 pings a second
// apart) costs against loopback, and what 2,000 such checks a minute would take of one core. Each
// check lasts two seconds, so fix the count rather than the time, and leave -race off:
//
//	go test ./internal/checks -run '^$' -bench ICMPLoopback -benchtime 2000x
func BenchmarkICMPLoopback(b *testing.B) {
	p := NewProber(&Guard{AllowPrivate: true})
	var n atomic.Uint32
	var before, after syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &before); err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(100) // checks mostly wait between pings
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			target := fmt.Sprintf("127.0.%d.%d", i/250%250, i%250+1)
			if out := p.Probe(context.Background(), Check{Kind: "icmp", Target: target, Timeout: 10 * time.Second}); !out.Up {
				b.Errorf("%s: %s", target, out.Reason)
			}
		}
	})
	b.StopTimer()
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &after); err != nil {
		b.Fatal(err)
	}
	cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	perCheck := cpu / time.Duration(b.N)
	b.ReportMetric(float64(perCheck.Microseconds()), "cpu-µs/check")
	b.ReportMetric(perCheck.Seconds()*2000/60*100, "%core@2000/min")
	b.Logf("ICMP socket mode: %s", &icmpSockets)
}

// icmpNetns creates a network namespace with its loopback up and deletes it when the test ends. It
// skips the test where that cannot be done: not root, no ip(8), no namespace support.
func icmpNetns(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: creating a network namespace needs root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skipf("skipped: creating a network namespace needs ip(8): %v", err)
	}
	ns := fmt.Sprintf("iwtest-%08x", rand.Uint32())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("skipped: ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", ns, err, out)
		}
	})
	icmpIP(t, "-n", ns, "link", "set", "lo", "up")
	return ns
}

// icmpVethHost joins namespace ns to this one with a veth pair on an unused 10.250.X.0/30 and
// returns the address of the namespace's end, 10.250.X.2 (this end is 10.250.X.1). It fails the
// test before anything is sent unless the route to that address is the veth.
func icmpVethHost(t *testing.T, ns string) netip.Addr {
	t.Helper()
	used := icmpIP(t, "-4", "-o", "addr", "show") + icmpIP(t, "-4", "route", "show", "table", "all")
	x := -1
	for range 100 {
		if c := rand.IntN(256); !strings.Contains(used, fmt.Sprintf("10.250.%d.", c)) {
			x = c
			break
		}
	}
	if x < 0 {
		t.Skip("skipped: no free 10.250.X.0/30 for the test network")
	}
	suffix := strings.TrimPrefix(ns, "iwtest-")
	here, there := "iwh"+suffix, "iwp"+suffix
	icmpIP(t, "link", "add", here, "type", "veth", "peer", "name", there, "netns", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", here).Run() }) // also deletes the namespace's end
	icmpIP(t, "addr", "add", fmt.Sprintf("10.250.%d.1/30", x), "dev", here)
	icmpIP(t, "link", "set", here, "up")
	icmpIP(t, "-n", ns, "addr", "add", fmt.Sprintf("10.250.%d.2/30", x), "dev", there)
	icmpIP(t, "-n", ns, "link", "set", there, "up")
	host := netip.AddrFrom4([4]byte{10, 250, byte(x), 2})
	if route := icmpIP(t, "route", "get", host.String()); !strings.Contains(route, "dev "+here+" ") {
		t.Fatalf("refusing to ping %s: its route is not the test's veth %s: %s", host, here, route)
	}
	return host
}

// icmpIP runs ip(8) and returns its output, failing the test on an error.
func icmpIP(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// icmpSysctl sets a network sysctl inside namespace ns only.
func icmpSysctl(t *testing.T, ns, key, value string) {
	t.Helper()
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	icmpIP(t, "netns", "exec", ns, "sh", "-c", `echo "$1" > "$2"`, "sh", value, path)
}

// icmpOutEchos returns how many ICMP echo requests namespace ns has sent (Icmp OutEchos).
func icmpOutEchos(t *testing.T, ns string) int {
	t.Helper()
	snmp := icmpIP(t, "netns", "exec", ns, "cat", "/proc/net/snmp")
	var names []string
	for line := range strings.Lines(snmp) {
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] != "Icmp:" {
			continue
		}
		if names == nil {
			names = fields
			continue
		}
		if i := slices.Index(names, "OutEchos"); i > 0 && i < len(fields) {
			n, err := strconv.Atoi(fields[i])
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no Icmp OutEchos in /proc/net/snmp of %s", ns)
	return 0
}

// icmpInNetns runs f on an OS thread that has joined network namespace ns, so that the sockets f
// opens live there. f must not call t.Fatal. The thread is never unlocked: the runtime retires it
// when f returns rather than reuse a thread that sits in another namespace.
func icmpInNetns(t *testing.T, ns string, f func()) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := syscall.Open("/var/run/netns/"+ns, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("open namespace %s: %w", ns, err)
			return
		}
		defer syscall.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("join namespace %s: %w", ns, err)
			return
		}
		f()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}
