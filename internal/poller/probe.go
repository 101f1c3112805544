package poller

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"time"
)

// Check is one check as a probe sees it.
type Check struct {
	ID       int64
	Kind     string
	Target   string
	Timeout  time.Duration
	Settings json.RawMessage
}

// Metric is one sample a probe measured. The engine stores it under the check's host, adding the
// labels check and check_id.
type Metric struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// Outcome is what one run of a check found.
type Outcome struct {
	Up bool
	// Reason says why the check is down, for a person reading an alert ("connection refused",
	// "status 503, expected 200"); empty when up.
	Reason string
	// Latency is the probe's headline time (round trip, connect, response); zero when it got no answer.
	Latency time.Duration
	// Detail holds what else the probe learnt, shown with the result (status code, answers, loss…).
	Detail  map[string]any
	Metrics []Metric
}

// down returns a down outcome with a reason.
func down(format string, args ...any) Outcome {
	return Outcome{Reason: fmt.Sprintf(format, args...)}
}

// Prober runs checks of every kind. It is safe for concurrent use.
type Prober struct {
	guard *Guard
	snmp  *snmpCounters
}

// NewProber returns a prober whose probes connect only where guard allows.
func NewProber(guard *Guard) *Prober {
	return &Prober{guard: guard, snmp: newSNMPCounters()}
}

// Probe runs one check within its timeout. It never panics: a probe's panic becomes a down outcome.
func (p *Prober) Probe(ctx context.Context, c Check) (out Outcome) {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			out = down("internal error in the %s probe: %v", c.Kind, r)
			out.Detail = map[string]any{"stack": string(debug.Stack())}
		}
	}()
	switch c.Kind {
	case "icmp":
		out = p.probeICMP(ctx, c)
	case "snmp":
		out = p.probeSNMP(ctx, c)
	case "http":
		out = p.probeHTTP(ctx, c)
	case "tcp":
		out = p.probeTCP(ctx, c)
	case "dns":
		out = p.probeDNS(ctx, c)
	default:
		out = down("unknown check kind %q", c.Kind)
	}
	if out.Detail == nil {
		out.Detail = map[string]any{}
	}
	return out
}
