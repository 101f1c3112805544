package checks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// NETWORK RULE for every test in this package: traffic goes only to 127.0.0.0/8 or ::1. Names are
// looked up in /etc/hosts or by a test DNS server on loopback, never by the system resolver.

// noDNSResolver reads /etc/hosts and refuses to send any DNS query, so a test that resolves a name
// can never reach the system resolver.
func noDNSResolver() *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(context.Context, string, string) (net.Conn, error) {
			return nil, errors.New("test resolver: DNS queries are not allowed in this test")
		},
	}
}

// saasGuard is a guard in SaaS mode that cannot send DNS queries.
func saasGuard() *Guard { return &Guard{Resolver: noDNSResolver()} }

// countingListener accepts TCP connections on 127.0.0.1 and reports the peer address of each.
type countingListener struct {
	net.Listener
	accepted chan string
}

func newCountingListener(t *testing.T) *countingListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: ln, accepted: make(chan string, 1000)}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			select {
			case cl.accepted <- conn.RemoteAddr().String():
			default: // a test that lets 1,000 connections pile up counts none of them
			}
			conn.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return cl
}

func (cl *countingListener) port() int { return cl.Addr().(*net.TCPAddr).Port }

// assertNoneAccepted proves that no connection reached the listener: it connects once itself and waits
// for that connection to be accepted. Connections are accepted in the order they arrived, so any
// earlier one is reported before it.
func (cl *countingListener) assertNoneAccepted(t *testing.T) {
	t.Helper()
	conn, err := net.Dial("tcp", cl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	own := conn.LocalAddr().String()
	conn.Close()
	var others []string
	for {
		select {
		case peer := <-cl.accepted:
			if peer != own {
				others = append(others, peer)
				continue
			}
			if len(others) > 0 {
				t.Fatalf("the listener accepted %d connections besides the test's own (from %v), want 0", len(others), others)
			}
			return
		case <-time.After(5 * time.Second): // a guard against hanging
			t.Fatal("the listener did not accept the test's own connection")
		}
	}
}

// forbiddenHosts are hosts every SaaS guard must refuse, in the forms an attacker would try.
var forbiddenHosts = []string{
	"127.0.0.1",
	"::1",
	"[::1]",
	"::ffff:127.0.0.1",
	"::127.0.0.1", // deprecated IPv4-compatible form
	"10.0.0.1",
	"172.16.0.1",
	"192.168.1.1",
	"169.254.169.254",
	"0.0.0.0",
	"100.64.0.1",
	"fd00::1",
	"fe80::1",
	"fe80::1%eth0",
	"2130706433", // 127.0.0.1 as one decimal number
	"0x7f000001", // … as one hexadecimal number
	"0177.0.0.1", // … with an octal first part
	"0x7f.1",
	"127.1",
	"127.0.0.1.",
	"localhost", // from /etc/hosts
}

func TestGuardRefusesForbiddenHosts(t *testing.T) {
	t.Parallel()
	g := saasGuard()
	ctx := context.Background()
	for _, host := range forbiddenHosts {
		t.Run(host, func(t *testing.T) {
			if _, err := g.Resolve(ctx, host); !errors.Is(err, ErrForbiddenTarget) {
				t.Errorf("Resolve(%q) = %v, want an error wrapping ErrForbiddenTarget", host, err)
			}
			if ps := g.CheckEndpoints(ctx, "icmp", host, nil); !refused(ps, "target") {
				t.Errorf("CheckEndpoints(icmp, %q) = %v, want the target refused", host, ps)
			}
			hostport := net.JoinHostPort(strings.Trim(host, "[]"), "80")
			if ps := g.CheckEndpoints(ctx, "tcp", hostport, nil); !refused(ps, "target") {
				t.Errorf("CheckEndpoints(tcp, %q) = %v, want the target refused", hostport, ps)
			}
			server, _ := json.Marshal(map[string]string{"server": hostport})
			if ps := g.CheckEndpoints(ctx, "dns", "example.com", server); !refused(ps, "settings.server") {
				t.Errorf("CheckEndpoints(dns, server %q) = %v, want settings.server refused", hostport, ps)
			}
		})
	}
}

// refused says whether the guard's problems are one refusal of field, in the guard's words.
func refused(ps []Problem, field string) bool {
	return len(ps) == 1 && ps[0].Field == field && strings.HasPrefix(ps[0].Message, "is not allowed: ") &&
		strings.Contains(ps[0].Message, ErrForbiddenTarget.Error())
}

func TestGuardRefusesForbiddenURLs(t *testing.T) {
	t.Parallel()
	g := saasGuard()
	for _, target := range []string{
		"http://127.0.0.1:5432/",
		"http://[::1]/",
		"http://[::ffff:127.0.0.1]/",
		"http://[fe80::1%25eth0]/",
		"http://169.254.169.254/latest/meta-data/",
		"http://0.0.0.0/",
		"http://2130706433/",
		"http://0x7f.1/",
		"https://10.0.0.1/",
		"http://100.64.0.1/",
		"http://localhost:8080/",
		"http://LOCALHOST./",
	} {
		if ps := g.CheckEndpoints(context.Background(), "http", target, nil); !refused(ps, "target") {
			t.Errorf("CheckEndpoints(http, %q) = %v, want the target refused", target, ps)
		}
	}
}

func TestGuardAllowsPublicAddresses(t *testing.T) {
	t.Parallel()
	g := saasGuard()
	// Literals only: nothing here is looked up or connected to.
	for _, s := range []string{"203.0.113.10", "8.8.8.8", "2606:4700:4700::1111", "::ffff:203.0.113.10"} {
		if err := g.CheckAddr(netip.MustParseAddr(s)); err != nil {
			t.Errorf("CheckAddr(%s) = %v, want allowed", s, err)
		}
	}
	addrs, err := g.Resolve(context.Background(), "3405803786") // 203.0.113.10 as one number
	if err != nil || len(addrs) != 1 || addrs[0] != netip.MustParseAddr("203.0.113.10") {
		t.Errorf("Resolve(3405803786) = %v, %v; want [203.0.113.10]", addrs, err)
	}
	if ps := g.CheckEndpoints(context.Background(), "http", "https://203.0.113.10/health", nil); len(ps) != 0 {
		t.Errorf("CheckEndpoints(http, public literal) = %v", ps)
	}
}

func TestGuardAllowPrivateAllowsEverything(t *testing.T) {
	t.Parallel()
	g := &Guard{AllowPrivate: true, Resolver: noDNSResolver()}
	ctx := context.Background()
	for _, host := range forbiddenHosts {
		if _, err := g.Resolve(ctx, host); err != nil {
			t.Errorf("Resolve(%q) = %v, want allowed", host, err)
		}
		if ps := g.CheckEndpoints(ctx, "icmp", host, nil); len(ps) != 0 {
			t.Errorf("CheckEndpoints(icmp, %q) = %v, want allowed", host, ps)
		}
	}
	for _, s := range []string{"127.0.0.1", "::1", "169.254.169.254", "10.0.0.1", "fe80::1"} {
		if err := g.CheckAddr(netip.MustParseAddr(s)); err != nil {
			t.Errorf("CheckAddr(%s) = %v, want allowed", s, err)
		}
	}
	if ps := g.CheckEndpoints(ctx, "http", "http://127.0.0.1:8080/", nil); len(ps) != 0 {
		t.Errorf("CheckEndpoints(http, loopback) = %v, want allowed", ps)
	}
}

func TestGuardCheckAddrReasons(t *testing.T) {
	t.Parallel()
	g := saasGuard()
	for addr, want := range map[string]string{
		"127.0.0.1":       "loopback",
		"10.1.2.3":        "private",
		"169.254.169.254": "link-local",
		"0.0.0.0":         "unspecified",
		"224.0.0.1":       "multicast",
		"100.64.0.1":      "special-purpose",
	} {
		err := g.CheckAddr(netip.MustParseAddr(addr))
		if !errors.Is(err, ErrForbiddenTarget) || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckAddr(%s) = %v, want ErrForbiddenTarget saying %q", addr, err, want)
		}
	}
}

// TestGuardDialerRefusesBeforeConnecting checks the connect-time guard itself: the listener must never
// see the refused connections.
func TestGuardDialerRefusesBeforeConnecting(t *testing.T) {
	t.Parallel()
	ln := newCountingListener(t)
	d := saasGuard().Dialer(time.Second)
	for _, addr := range []string{
		ln.Addr().String(),
		fmt.Sprintf("[::ffff:127.0.0.1]:%d", ln.port()),
		fmt.Sprintf("localhost:%d", ln.port()),
	} {
		conn, err := d.DialContext(context.Background(), "tcp", addr)
		if err == nil {
			conn.Close()
			t.Fatalf("dial %s: connected, want refused", addr)
		}
		if !errors.Is(err, ErrForbiddenTarget) {
			t.Errorf("dial %s: %v, want an error wrapping ErrForbiddenTarget", addr, err)
		}
	}
	ln.assertNoneAccepted(t)

	allowed := (&Guard{AllowPrivate: true}).Dialer(time.Second)
	conn, err := allowed.DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial with AllowPrivate: %v", err)
	}
	conn.Close()
}

// TestGuardProbesSendNothingToForbiddenTargets runs HTTP and TCP checks at a loopback listener in every
// spelling, with a SaaS guard: each is down saying the target is not allowed, and the listener sees
// no connection.
func TestGuardProbesSendNothingToForbiddenTargets(t *testing.T) {
	t.Parallel()
	ln := newCountingListener(t)
	p := NewProber(saasGuard())
	port := ln.port()
	var checks []Check
	for _, host := range []string{"127.0.0.1", "[::1]", "[::ffff:127.0.0.1]", "2130706433", "0x7f000001", "0177.0.0.1", "127.1", "localhost"} {
		checks = append(checks,
			Check{Kind: "http", Target: fmt.Sprintf("http://%s:%d/", host, port)},
			Check{Kind: "tcp", Target: fmt.Sprintf("%s:%d", host, port)},
		)
	}
	// A check saved in self-hosted mode and polled by a SaaS poller is refused the same way.
	checks = append(checks, Check{Kind: "http", Target: fmt.Sprintf("https://127.0.0.1:%d/", port),
		Settings: json.RawMessage(`{"tls_verify": false}`)})
	for _, c := range checks {
		c.Timeout = 2 * time.Second
		out := p.Probe(context.Background(), c)
		if out.Up || !strings.Contains(out.Reason, "not allowed") {
			t.Errorf("%s %s: up=%v reason %q, want down saying the target is not allowed", c.Kind, c.Target, out.Up, out.Reason)
		}
	}
	ln.assertNoneAccepted(t)
}

func TestParseIPLoose(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want string // "" when in must not parse
	}{
		{"127.0.0.1", "127.0.0.1"},
		{"2130706433", "127.0.0.1"},
		{"0x7f000001", "127.0.0.1"},
		{"0X7F000001", "127.0.0.1"},
		{"0177.0.0.1", "127.0.0.1"},
		{"0x7f.0.0.1", "127.0.0.1"},
		{"0x7f.1", "127.0.0.1"},
		{"127.1", "127.0.0.1"},
		{"127.0.1", "127.0.0.1"},
		{"10.0x10000", "10.1.0.0"},
		{"0", "0.0.0.0"},
		{"4294967295", "255.255.255.255"},
		{"::1", "::1"},
		{"::ffff:127.0.0.1", "::ffff:127.0.0.1"},
		{"fe80::1%eth0", "fe80::1"},
		{"256.1.1.1", ""},
		{"1.2.3.4.5", ""},
		{"0x1g", ""},
		{"4294967296", ""},
		{"1.16777216", ""},
		{"1.2.65536", ""},
		{"08.1.1.1", ""},
		{"0x", ""},
		{"1..2", ""},
		{"1.2.3.", ""},
		{"", ""},
		{"-1", ""},
		{"+1", ""},
		{"1_000", ""},
		{" 1.2.3.4", ""},
		{"example.com", ""},
		{"1e3", ""},
	} {
		got, ok := parseIPLoose(tc.in)
		switch {
		case tc.want == "" && ok:
			t.Errorf("parseIPLoose(%q) = %s, want no address", tc.in, got)
		case tc.want != "" && (!ok || got != netip.MustParseAddr(tc.want)):
			t.Errorf("parseIPLoose(%q) = %s, %v; want %s", tc.in, got, ok, tc.want)
		}
	}
}

func FuzzParseIPLoose(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "0x7f.1", "0177.0.0.1", "2130706433", "::1", "1.2.3.4.5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, ok := parseIPLoose(s)
		if ok && !a.IsValid() {
			t.Fatalf("parseIPLoose(%q) = invalid address, ok", s)
		}
		// A form every parser agrees on must read the same here.
		if b, err := netip.ParseAddr(s); err == nil && (!ok || a != b.WithZone("")) {
			t.Fatalf("parseIPLoose(%q) = %s, %v; netip reads %s", s, a, ok, b)
		}
	})
}
