package checks

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// closedTCPPort returns 127.0.0.1:port where nothing listens: a port that was free a moment ago.
func closedTCPPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func probeTCPCheck(p *Prober, target string) Outcome {
	return p.Probe(context.Background(), Check{Kind: "tcp", Target: target, Timeout: 2 * time.Second})
}

func TestTCPOpenPort(t *testing.T) {
	t.Parallel()
	ln := newCountingListener(t)
	for _, target := range []string{ln.Addr().String(), strings.Replace(ln.Addr().String(), "127.0.0.1", "localhost", 1)} {
		out := probeTCPCheck(loopbackProber(), target)
		if !out.Up {
			t.Fatalf("%s: down: %s", target, out.Reason)
		}
		if out.Latency <= 0 {
			t.Errorf("%s: latency %v, want > 0", target, out.Latency)
		}
		if v := outcomeMetric(t, out, "tcp.connect_ms"); v <= 0 || v != float64(out.Latency)/1e6 {
			t.Errorf("%s: tcp.connect_ms = %v, want the latency %v in ms", target, v, out.Latency)
		}
		if out.Detail["address"] != ln.Addr().String() {
			t.Errorf("%s: detail address %v, want %s", target, out.Detail["address"], ln.Addr())
		}
	}
}

func TestTCPConnectionRefused(t *testing.T) {
	t.Parallel()
	out := probeTCPCheck(loopbackProber(), closedTCPPort(t))
	if out.Up || out.Reason != "connection refused" {
		t.Fatalf("up=%v reason %q, want down: connection refused", out.Up, out.Reason)
	}
	if out.Latency != 0 || len(out.Metrics) != 0 {
		t.Errorf("latency %v metrics %v, want none without a connection", out.Latency, out.Metrics)
	}
}

func TestTCPCancelled(t *testing.T) {
	t.Parallel()
	ln := newCountingListener(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := loopbackProber().Probe(ctx, Check{Kind: "tcp", Target: ln.Addr().String(), Timeout: 2 * time.Second})
	if out.Up || out.Reason != "the check was cancelled" {
		t.Fatalf("up=%v reason %q, want down: the check was cancelled", out.Up, out.Reason)
	}
}

func TestTCPBadTarget(t *testing.T) {
	t.Parallel()
	for _, target := range []string{"127.0.0.1", "no-port.example.test", ""} {
		out := probeTCPCheck(loopbackProber(), target)
		if out.Up || !strings.Contains(out.Reason, "is not host:port") {
			t.Errorf("%q: up=%v reason %q, want down: not host:port", target, out.Up, out.Reason)
		}
	}
}

func TestTCPUnknownName(t *testing.T) {
	t.Parallel()
	p := NewProber(&Guard{AllowPrivate: true, Resolver: testDNSResolver(startTestDNS(t))})
	out := probeTCPCheck(p, "nonexistent.example.test:80")
	if out.Up || out.Reason != "cannot resolve nonexistent.example.test: no such host" {
		t.Fatalf("up=%v reason %q, want down: cannot resolve … no such host", out.Up, out.Reason)
	}
}
