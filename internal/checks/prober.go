package checks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/infrawatch/infrawatch/internal/events"
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
// Every outcome it answers is bounded, so it can be stored and announced.
func (p *Prober) Probe(ctx context.Context, c Check) Outcome {
	return bounded(p.probe(ctx, c))
}

func (p *Prober) probe(ctx context.Context, c Check) (out Outcome) {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			out = down("internal error in the %s probe: %v", c.Kind, r)
			out.Detail = map[string]any{"stack": string(debug.Stack())}
		}
	}()
	if k, ok := Lookup(c.Kind); ok {
		out = k.Probe(ctx, p, c)
	} else {
		out = down("unknown check kind %q", c.Kind)
	}
	if out.Detail == nil {
		out.Detail = map[string]any{}
	}
	return out
}

// MaxReasonBytes bounds a run's reason, and every error text of its detail, as stored and announced:
// reasons quote settings and answers that a tenant or a target controls. A longer one is cut on a
// character boundary and ends with "…".
const MaxReasonBytes = events.MaxReasonBytes

// bounded makes an outcome storable whatever the target answered or the settings said: its reason and
// the error texts of its detail (keys ending in _error) are cut to MaxReasonBytes, and every text of
// its detail and metric labels is made valid UTF-8 without NUL bytes, which PostgreSQL's text and jsonb
// refuse (an SNMP agent's NUL-terminated string, say). Without it one such run would fail the
// transaction that stores the runs of many tenants.
func bounded(out Outcome) Outcome {
	out.Reason = events.TruncateReason(storableText(out.Reason))
	for k, v := range out.Detail {
		v = storableValue(v)
		if s, ok := v.(string); ok && strings.HasSuffix(k, "_error") {
			v = events.TruncateReason(s)
		}
		out.Detail[k] = v
	}
	for i, m := range out.Metrics {
		out.Metrics[i].Labels = storableValue(m.Labels).(map[string]string)
	}
	return out
}

// storableText is s as valid UTF-8 without NUL bytes.
func storableText(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}

// storableValue applies storableText to every text of a detail value, map keys included.
func storableValue(v any) any {
	switch v := v.(type) {
	case string:
		return storableText(v)
	case []string:
		out := make([]string, len(v))
		for i, s := range v {
			out[i] = storableText(s)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = storableValue(e)
		}
		return out
	case map[string]string:
		if v == nil {
			return v
		}
		out := make(map[string]string, len(v))
		for k, s := range v {
			out[storableText(k)] = storableText(s)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[storableText(k)] = storableValue(e)
		}
		return out
	}
	return v
}

// netReason says in a short sentence why a connection or an exchange failed, for a down outcome. The
// network probes (TCP, HTTP, DNS) share it. timeout is the check's timeout, named when the deadline is
// what ended the probe.
func netReason(err error, timeout time.Duration) string {
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.Is(err, ErrForbiddenTarget):
		// The guard's own words name the address and why it is refused; drop the "dial tcp …:" and
		// `Get "…":` wrappers around them.
		for {
			switch e := err.(type) {
			case *url.Error:
				err = e.Err
				continue
			case *net.OpError:
				err = e.Err
				continue
			}
			return err.Error()
		}
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Sprintf("timeout after %s", timeout)
	case errors.Is(err, context.Canceled):
		return "the check was cancelled"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset by peer"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "host unreachable"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network unreachable"
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return fmt.Sprintf("cannot resolve %s: no such host", dnsErr.Name)
		}
		return fmt.Sprintf("cannot resolve %s: %s", dnsErr.Name, dnsErr.Err)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // the URL is the check's target, already shown with the result
	}
	return err.Error()
}

// dialableAddr rewrites host:port so that a host written as an IPv4 address in a form only inet_aton
// reads (2130706433, 0x7f.1, 127.1) is dialled as that address, the way Guard.Resolve reads it,
// rather than looked up as a name.
func dialableAddr(hostport string) string {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport
	}
	if a, ok := parseIPLoose(host); ok {
		return net.JoinHostPort(a.String(), port)
	}
	return hostport
}

// msFloat is d in milliseconds, the unit of every duration metric.
func msFloat(d time.Duration) float64 {
	return float64(d) / float64(time.Millisecond)
}
