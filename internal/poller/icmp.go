package poller

// ICMP checks ping a host a few times, like ping(8), and report loss and round-trip times.
//
// Sockets. pro-bing opens one socket per run and closes it when the run ends. Linux offers two kinds:
//
//   - An ICMP datagram socket ("unprivileged ping"): any process whose group is inside the sysctl
//     net.ipv4.ping_group_range (which also governs ICMPv6) may open one; the kernel picks the echo
//     identifier and hands each socket only the replies to its own requests.
//   - A raw ICMP socket: needs CAP_NET_RAW, and every raw socket receives a copy of every ICMP packet
//     the host receives; pro-bing attaches a BPF filter on the echo identifier so the copies die in
//     the kernel, but the cost still grows with the number of runs in flight.
//
// The process decides once which kind to use: the first run that opens a socket tries a datagram
// socket and, only when the kernel refuses it for lack of permission or support, a raw one; the kind
// that opened is used by every later run. A failure that says nothing about privilege (no IPv6 on
// this host, out of file descriptors) decides nothing, so the next run tries again in the same order.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"time"

	probing "github.com/prometheus-community/pro-bing"
)

// probingMinSize is the smallest payload pro-bing sends: a send timestamp (8 bytes) and the run's
// tracker UUID (16 bytes), which it needs to match replies. Smaller packet_size settings are sent as
// this many bytes.
const probingMinSize = 24

// icmpNoDeadlineWait bounds a run whose context has no deadline (Probe always sets one): how long
// after the last ping it waits for replies.
const icmpNoDeadlineWait = 2 * time.Second

// Kinds of ICMP socket, as decided by socketChooser.
const (
	icmpUndecided int32 = iota
	icmpDatagram
	icmpRaw
)

// icmpSockets is the process's choice of ICMP socket; see the comment at the top of this file.
var icmpSockets socketChooser

// icmpParams are an ICMP check's settings with defaults applied.
type icmpParams struct {
	count    int
	interval time.Duration
	size     int
}

func (p *Prober) probeICMP(ctx context.Context, c Check) Outcome {
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
		return down("cancelled after %d of %d pings to %s", stats.PacketsSent, pp.count, addr)
	case err != nil:
		return down("%v", err)
	}
	return icmpOutcome(addr, stats)
}

// icmpParamsOf reads an ICMP check's settings. They were validated when the check was saved; they
// are validated again here so that a row changed behind the API's back fails plainly.
func icmpParamsOf(target string, settings json.RawMessage) (icmpParams, error) {
	if ps := Validate("icmp", target, settings); len(ps) > 0 {
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

// icmpOutcome turns a run's statistics into an outcome: up when at least one ping was answered.
func icmpOutcome(addr netip.Addr, s *probing.Statistics) Outcome {
	loss := s.PacketLoss
	if s.PacketsRecv == 0 {
		loss = 100 // also when nothing could be sent
	}
	out := Outcome{
		Up: s.PacketsRecv > 0,
		Detail: map[string]any{
			"address":  addr.String(),
			"sent":     s.PacketsSent,
			"received": s.PacketsRecv,
			"loss_pct": loss,
		},
		Metrics: []Metric{{Name: "icmp.loss_pct", Value: loss}},
	}
	if out.Up {
		out.Latency = s.AvgRtt
		out.Metrics = append(out.Metrics,
			Metric{Name: "icmp.rtt_min_ms", Value: milliseconds(s.MinRtt)},
			Metric{Name: "icmp.rtt_avg_ms", Value: milliseconds(s.AvgRtt)},
			Metric{Name: "icmp.rtt_max_ms", Value: milliseconds(s.MaxRtt)},
			// What ping(8) prints as mdev: the standard deviation of the round-trip times.
			Metric{Name: "icmp.jitter_ms", Value: milliseconds(s.StdDevRtt)},
		)
	} else {
		pings := "pings"
		if s.PacketsSent == 1 {
			pings = "ping"
		}
		out.Reason = fmt.Sprintf("no reply to %d %s to %s (100 %% loss)", s.PacketsSent, pings, addr)
	}
	out.Metrics = append(out.Metrics,
		Metric{Name: "icmp.sent", Value: float64(s.PacketsSent)},
		Metric{Name: "icmp.received", Value: float64(s.PacketsRecv)},
	)
	return out
}

func milliseconds(d time.Duration) float64 {
	return float64(d) / float64(time.Millisecond)
}

// socketChooser remembers which kind of ICMP socket works in this process. The zero value has not
// decided yet. It is safe for concurrent use; runs that start before the decision may each try both.
type socketChooser struct {
	mode atomic.Int32
}

// ping pings addr with a socket of the chosen kind, choosing one first if need be. Its error is
// either the context's error (the statistics then hold what the run counted) or a sentence for a
// person saying why nothing could be measured.
func (sc *socketChooser) ping(ctx context.Context, addr netip.Addr, pp icmpParams) (*probing.Statistics, error) {
	switch sc.mode.Load() {
	case icmpDatagram:
		return runPinger(ctx, addr, pp, false)
	case icmpRaw:
		return runPinger(ctx, addr, pp, true)
	}
	stats, err := runPinger(ctx, addr, pp, false)
	var se *socketError
	if !errors.As(err, &se) {
		sc.mode.CompareAndSwap(icmpUndecided, icmpDatagram)
		return stats, err
	}
	if !errors.Is(se.err, fs.ErrPermission) && !errors.Is(se.err, syscall.EPROTONOSUPPORT) {
		return stats, err
	}
	datagramErr := se.err
	stats, rawErr := runPinger(ctx, addr, pp, true)
	if errors.As(rawErr, &se) {
		if !errors.Is(se.err, fs.ErrPermission) {
			return nil, rawErr
		}
		if errors.Is(datagramErr, fs.ErrPermission) {
			return nil, errors.New("cannot open an ICMP socket: unprivileged ping is not allowed for this " +
				"process's group (sysctl net.ipv4.ping_group_range) and a raw socket needs CAP_NET_RAW")
		}
		return nil, errors.New("cannot open an ICMP socket: this system has no unprivileged ping " +
			"and a raw socket needs CAP_NET_RAW")
	}
	sc.mode.CompareAndSwap(icmpUndecided, icmpRaw)
	return stats, rawErr
}

// String names the kind of socket chosen, for logs and tests.
func (sc *socketChooser) String() string {
	switch sc.mode.Load() {
	case icmpDatagram:
		return "unprivileged (ICMP datagram socket)"
	case icmpRaw:
		return "raw (privileged ICMP socket)"
	}
	return "undecided"
}

// socketError is a socket that could not be opened.
type socketError struct{ err error }

func (e *socketError) Error() string { return "cannot open an ICMP socket: " + errnoWords(e.err) }
func (e *socketError) Unwrap() error { return e.err }

// runPinger runs one pinger against addr and returns what it counted. The run ends after every ping
// is answered, at ctx's deadline, or when ctx is cancelled; it leaves no goroutine behind.
func runPinger(ctx context.Context, addr netip.Addr, pp icmpParams, privileged bool) (*probing.Statistics, error) {
	pinger := probing.New(addr.String())
	pinger.SetIPAddr(&net.IPAddr{IP: addr.AsSlice(), Zone: addr.Zone()})
	pinger.SetPrivileged(privileged)
	pinger.SetLogger(probing.NoopLogger{})
	pinger.Count = pp.count
	pinger.Interval = pp.interval
	pinger.Size = max(pp.size, probingMinSize)
	// Keep only the running min/avg/max/deviation, not every sample.
	pinger.RecordRtts = false
	pinger.RecordTTLs = false
	if deadline, ok := ctx.Deadline(); ok {
		pinger.Timeout = max(time.Until(deadline), time.Millisecond) // pro-bing needs a positive timeout
	} else {
		pinger.Timeout = time.Duration(pp.count-1)*pp.interval + icmpNoDeadlineWait
	}
	// pro-bing calls OnSetup once its socket is open: an error before that is the socket's.
	opened := false
	pinger.OnSetup = func() { opened = true }
	err := pinger.RunWithContext(ctx)
	stats := pinger.Statistics()
	switch {
	case err == nil, errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return stats, err
	case !opened:
		return stats, &socketError{err: err}
	default:
		return stats, fmt.Errorf("cannot ping %s: %s", addr, errnoWords(err))
	}
}

// errnoWords says what a socket call's error means without the call and addresses around it:
// "permission denied" rather than "socket: permission denied", "network is unreachable" rather than
// "write ip4 0.0.0.0->10.0.0.1: sendto: network is unreachable".
func errnoWords(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	return err.Error()
}

// contextWords says why a context ended, for a down reason.
func contextWords(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "the check timed out first"
	}
	return "the check was cancelled"
}
