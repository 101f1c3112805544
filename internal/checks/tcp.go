package checks

import (
	"context"
	"encoding/json"
	"net"
	"time"
)

// tcpKind checks that a port accepts connections. Target: host:port. It has no settings.
type tcpKind struct{ noSecrets }

// TCPSettings are a TCP check's settings: none.
type TCPSettings struct{}

func (tcpKind) Name() string { return "tcp" }

func (tcpKind) Validate(target string, settings json.RawMessage) []Problem {
	var ps problems
	if !isHostPort(target) {
		ps.add("target", "must be host:port with a port from 1 to 65535")
	}
	var st TCPSettings
	decodeSettings(&ps, "tcp", settings, &st)
	return ps
}

func (tcpKind) Endpoints(target string, _ json.RawMessage) []Endpoint {
	return []Endpoint{{Field: "target", Host: hostOf(target)}}
}

func (tcpKind) TargetHost(target string) string { return hostOf(target) }

// Probe connects to host:port and closes the connection at once. Its latency is the connect time
// alone: the name is resolved first (through the guard, which refuses a forbidden address before any
// packet leaves), then each address is dialled in turn until one answers.
func (tcpKind) Probe(ctx context.Context, p *Prober, c Check) Outcome {
	host, port, err := net.SplitHostPort(c.Target)
	if err != nil {
		return down("target %q is not host:port: %v", c.Target, err)
	}
	start := time.Now()
	addrs, err := p.guard.Resolve(ctx, host)
	if err != nil {
		return down("%s", netReason(err, c.Timeout))
	}
	resolved := time.Since(start)

	dialer := p.guard.Dialer(c.Timeout)
	var firstErr error
	for i, a := range addrs {
		addr := net.JoinHostPort(a.String(), port)
		// Like net.Dialer with several addresses, give each an equal share of the time left, so one
		// that never answers cannot use up the time of the others.
		dctx, cancel := ctx, context.CancelFunc(func() {})
		if deadline, ok := ctx.Deadline(); ok && i < len(addrs)-1 {
			dctx, cancel = context.WithTimeout(ctx, time.Until(deadline)/time.Duration(len(addrs)-i))
		}
		t := time.Now()
		conn, err := dialer.DialContext(dctx, "tcp", addr)
		connect := time.Since(t)
		cancel()
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		conn.Close()
		detail := map[string]any{"address": addr, "connect_ms": msFloat(connect)}
		if _, literal := parseIPLoose(host); !literal {
			detail["resolve_ms"] = msFloat(resolved)
		}
		return Outcome{
			Up:      true,
			Latency: connect,
			Detail:  detail,
			Metrics: []Metric{{Name: "tcp.connect_ms", Value: msFloat(connect)}},
		}
	}
	return down("%s", netReason(firstErr, c.Timeout))
}
