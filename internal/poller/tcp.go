package poller

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"syscall"
	"time"
)

// probeTCP connects to host:port and closes the connection at once. Its latency is the connect time
// alone: the name is resolved first (through the guard, which refuses a forbidden address before any
// packet leaves), then each address is dialled in turn until one answers.
func (p *Prober) probeTCP(ctx context.Context, c Check) Outcome {
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
