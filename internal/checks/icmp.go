package checks

// ICMP checks ping a host a few times, like ping(8), and report loss and round-trip times.
// The pings go out on the process's shared ICMP sockets: see icmp_pinger.go.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"time"
)

// icmpKind pings a host. Target: a host name or IP address, without port or scheme.
type icmpKind struct{ noSecrets }

// ICMPSettings are an ICMP check's settings. Unknown settings are refused.
type ICMPSettings struct {
	Count      *int `json:"count"`       // pings per run, 1–20 (default 3)
	IntervalMS *int `json:"interval_ms"` // between pings, 100–10000 (default 1000)
	PacketSize *int `json:"packet_size"` // payload bytes, 8–1472 (default 56)
}

func (icmpKind) Name() string { return "icmp" }

func (icmpKind) Validate(target string, settings json.RawMessage) []Problem {
	var ps problems
	if !isHost(target) {
		ps.add("target", "must be a host name or IP address, without port or scheme")
	}
	var st ICMPSettings
	if decodeSettings(&ps, "icmp", settings, &st) {
		ps.between("settings.count", st.Count, 1, 20)
		ps.between("settings.interval_ms", st.IntervalMS, 100, 10000)
		ps.between("settings.packet_size", st.PacketSize, 8, 1472)
	}
	return ps
}

func (icmpKind) Endpoints(target string, _ json.RawMessage) []Endpoint {
	return []Endpoint{{Field: "target", Host: target}}
}

func (icmpKind) TargetHost(target string) string { return target }

// icmpParams are an ICMP check's settings with defaults applied.
type icmpParams struct {
	count    int
	interval time.Duration
	size     int
}

// Probe pings the target's first address count times and counts the replies.
func (icmpKind) Probe(ctx context.Context, p *Prober, c Check) Outcome {
	pp, err := icmpParamsOf(c.Target, c.Settings)
	if err != nil {
		return down("bad settings: %v", err)
	}
	addrs, err := p.guard.Resolve(ctx, c.Target)
	if err != nil {
		return down("%v", err)
	}
	// The resolver may answer IPv4 addresses in their IPv4-mapped IPv6 form; ping them as IPv4.
	addr := addrs[0].Unmap()
	if err := ctx.Err(); err != nil {
		return down("not pinged: %s", contextWords(err))
	}
	stats, err := icmpSockets.ping(ctx, addr, pp)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		// The check's timeout ended the run; what it counted until then is the result.
	case errors.Is(err, context.Canceled):
		return down("cancelled after %d of %d pings to %s", stats.sent, pp.count, addr)
	case err != nil:
		return down("%v", err)
	}
	return icmpOutcome(addr, stats)
}

// icmpParamsOf reads an ICMP check's settings. They were validated when the check was saved; they
// are validated again here so that a row changed behind the API's back fails plainly.
func icmpParamsOf(target string, settings json.RawMessage) (icmpParams, error) {
	if ps := (icmpKind{}).Validate(target, settings); len(ps) > 0 {
		return icmpParams{}, fmt.Errorf("%s %s", ps[0].Field, ps[0].Message)
	}
	var st ICMPSettings
	if len(settings) > 0 {
		if err := json.Unmarshal(settings, &st); err != nil {
			return icmpParams{}, err
		}
	}
	pp := icmpParams{count: 3, interval: time.Second, size: 56}
	if st.Count != nil {
		pp.count = *st.Count
	}
	if st.IntervalMS != nil {
		pp.interval = time.Duration(*st.IntervalMS) * time.Millisecond
	}
	if st.PacketSize != nil {
		pp.size = *st.PacketSize
	}
	return pp, nil
}

// icmpStats is what one run counted. The round-trip statistics are kept as ping(8) and pro-bing
// keep them: a running minimum, maximum, mean and, by Welford's method, standard deviation (mdev).
type icmpStats struct {
	sent, received int
	min, avg, max  time.Duration
	mdev           time.Duration
	m2             float64 // sum of squared deviations from the mean, in ns²
}

// add counts a reply that took rtt.
func (s *icmpStats) add(rtt time.Duration) {
	s.received++
	if s.received == 1 || rtt < s.min {
		s.min = rtt
	}
	if rtt > s.max {
		s.max = rtt
	}
	delta := rtt - s.avg
	s.avg += delta / time.Duration(s.received)
	s.m2 += float64(delta) * float64(rtt-s.avg)
	s.mdev = time.Duration(math.Sqrt(s.m2 / float64(s.received)))
}

// loss is the share of sent pings that went unanswered, in percent; 0 when none was sent.
func (s *icmpStats) loss() float64 {
	if s.sent == 0 {
		return 0
	}
	return float64(s.sent-s.received) / float64(s.sent) * 100
}

// icmpOutcome turns a run's statistics into an outcome: up when at least one ping was answered.
func icmpOutcome(addr netip.Addr, s icmpStats) Outcome {
	loss := s.loss()
	if s.received == 0 {
		loss = 100 // also when nothing could be sent
	}
	out := Outcome{
		Up: s.received > 0,
		Detail: map[string]any{
			"address":  addr.String(),
			"sent":     s.sent,
			"received": s.received,
			"loss_pct": loss,
		},
		Metrics: []Metric{{Name: "icmp.loss_pct", Value: loss}},
	}
	if out.Up {
		out.Latency = s.avg
		out.Metrics = append(out.Metrics,
			Metric{Name: "icmp.rtt_min_ms", Value: milliseconds(s.min)},
			Metric{Name: "icmp.rtt_avg_ms", Value: milliseconds(s.avg)},
			Metric{Name: "icmp.rtt_max_ms", Value: milliseconds(s.max)},
			// What ping(8) prints as mdev: the standard deviation of the round-trip times.
			Metric{Name: "icmp.jitter_ms", Value: milliseconds(s.mdev)},
		)
	} else {
		pings := "pings"
		if s.sent == 1 {
			pings = "ping"
		}
		out.Reason = fmt.Sprintf("no reply to %d %s to %s (100 %% loss)", s.sent, pings, addr)
	}
	out.Metrics = append(out.Metrics,
		Metric{Name: "icmp.sent", Value: float64(s.sent)},
		Metric{Name: "icmp.received", Value: float64(s.received)},
	)
	return out
}

func milliseconds(d time.Duration) float64 {
	return float64(d) / float64(time.Millisecond)
}

// contextWords says why a context ended, for a down reason.
func contextWords(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "the check timed out first"
	}
	return "the check was cancelled"
}
