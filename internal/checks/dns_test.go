package checks

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// testZone is what the test DNS server knows, by name and type.
var testZone = map[string][]string{
	"example.test. A":         {"example.test. 60 IN A 192.0.2.1", "example.test. 60 IN A 192.0.2.2"},
	"example.test. AAAA":      {"example.test. 60 IN AAAA 2001:db8::1"},
	"example.test. MX":        {"example.test. 60 IN MX 10 mail.example.test.", "example.test. 60 IN MX 20 Backup.Example.Test."},
	"example.test. TXT":       {`example.test. 60 IN TXT "v=spf1 " "-all"`},
	"example.test. NS":        {"example.test. 60 IN NS ns1.example.test."},
	"www.example.test. CNAME": {"www.example.test. 60 IN CNAME example.test."},
	"www.example.test. A":     {"www.example.test. 60 IN CNAME example.test.", "example.test. 60 IN A 192.0.2.1", "example.test. 60 IN A 192.0.2.2"},
	"rebind.example.test. A":  {"rebind.example.test. 1 IN A 127.0.0.1"},
	"big.example.test. TXT":   bigTXT(),
	"empty.example.test. A":   {},
}

// bigTXT is more than fits in a UDP answer of 1232 bytes, so it needs TCP.
func bigTXT() []string {
	var rrs []string
	for i := range 20 {
		rrs = append(rrs, fmt.Sprintf(`big.example.test. 60 IN TXT "%02d %s"`, i, strings.Repeat("x", 100)))
	}
	return rrs
}

// testDNS is a DNS server for the test zone on 127.0.0.1, over UDP and TCP on the same port. Names
// it does not know are NXDOMAIN; a name it knows without records of the asked type gets an empty
// answer; servfail.example.test gets SERVFAIL.
type testDNS struct {
	queries atomic.Int64
}

func (s *testDNS) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	s.queries.Add(1)
	m := new(dns.Msg)
	m.SetReply(q)
	qn := q.Question[0]
	name := strings.ToLower(qn.Name)
	rrs, ok := testZone[name+" "+dns.TypeToString[qn.Qtype]]
	known := false
	for k := range testZone {
		known = known || strings.HasPrefix(k, name+" ")
	}
	_, udp := w.RemoteAddr().(*net.UDPAddr)
	switch {
	case name == "servfail.example.test.":
		m.Rcode = dns.RcodeServerFailure
	case !known:
		m.Rcode = dns.RcodeNameError
	case name == "big.example.test." && udp:
		m.Truncated = true // ask again over TCP
	case ok:
		for _, s := range rrs {
			rr, err := dns.NewRR(s)
			if err != nil {
				panic(err)
			}
			m.Answer = append(m.Answer, rr)
		}
	}
	w.WriteMsg(m)
}

// startTestDNS starts a test DNS server and returns its address, 127.0.0.1:port.
func startTestDNS(t *testing.T) string {
	addr, _ := startTestDNSServer(t)
	return addr
}

func startTestDNSServer(t *testing.T) (string, *testDNS) {
	t.Helper()
	h := &testDNS{}
	var pc net.PacketConn
	var ln net.Listener
	for range 10 {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close() // that port is taken for TCP; try another
		pc = nil
	}
	if pc == nil {
		t.Fatal("no port free for both UDP and TCP")
	}
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
		t.Cleanup(func() { srv.Shutdown() })
	}
	return pc.LocalAddr().String(), h
}

// testDNSResolver is a Go resolver that sends every query to the test server at addr.
func testDNSResolver(addr string) *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
}

func probeDNSCheck(p *Prober, target string, st DNSSettings) Outcome {
	settings, _ := json.Marshal(st)
	return p.Probe(context.Background(), Check{Kind: "dns", Target: target, Timeout: 2 * time.Second, Settings: settings})
}

func TestDNSRecordTypes(t *testing.T) {
	t.Parallel()
	server := startTestDNS(t)
	p := loopbackProber()
	for _, tc := range []struct {
		name, recordType string
		expected         []string
		answers          []string
	}{
		{"example.test", "", nil, []string{"192.0.2.1", "192.0.2.2"}},
		{"example.test", "A", []string{"192.0.2.2"}, []string{"192.0.2.1", "192.0.2.2"}},
		{"example.test.", "A", []string{"192.0.2.1", "192.0.2.2"}, []string{"192.0.2.1", "192.0.2.2"}},
		{"EXAMPLE.test", "AAAA", []string{"2001:DB8:0::1"}, []string{"2001:db8::1"}},
		{"example.test", "MX", []string{"10 mail.example.test", "backup.example.test."}, []string{"10 mail.example.test", "20 Backup.Example.Test"}},
		{"example.test", "TXT", []string{"V=SPF1 -all"}, []string{"v=spf1 -all"}},
		{"example.test", "NS", []string{"NS1.example.test."}, []string{"ns1.example.test"}},
		{"www.example.test", "CNAME", []string{"example.test"}, []string{"example.test"}},
		{"www.example.test", "A", []string{"192.0.2.1"}, []string{"192.0.2.1", "192.0.2.2"}}, // the CNAME is not an answer
	} {
		t.Run(tc.name+" "+tc.recordType, func(t *testing.T) {
			t.Parallel()
			out := probeDNSCheck(p, tc.name, DNSSettings{Server: server, RecordType: tc.recordType, Expected: tc.expected})
			if !out.Up {
				t.Fatalf("down: %s", out.Reason)
			}
			if got := out.Detail["answers"]; !slices.Equal(got.([]string), tc.answers) {
				t.Errorf("answers %v, want %v", got, tc.answers)
			}
			if out.Detail["rcode"] != "NOERROR" {
				t.Errorf("rcode %v, want NOERROR", out.Detail["rcode"])
			}
			if out.Latency <= 0 {
				t.Errorf("latency %v, want > 0", out.Latency)
			}
			if v := outcomeMetric(t, out, "dns.duration_ms"); v <= 0 || v != float64(out.Latency)/1e6 {
				t.Errorf("dns.duration_ms = %v, want the latency %v in ms", v, out.Latency)
			}
			if v := outcomeMetric(t, out, "dns.answers"); v != float64(len(tc.answers)) {
				t.Errorf("dns.answers = %v, want %d", v, len(tc.answers))
			}
		})
	}
}

func TestDNSDown(t *testing.T) {
	t.Parallel()
	server := startTestDNS(t)
	p := loopbackProber()
	for _, tc := range []struct {
		name, recordType string
		expected         []string
		reason           string
		rcode            string
	}{
		{"nope.example.test", "A", nil, "NXDOMAIN: nope.example.test does not exist", "NXDOMAIN"},
		{"servfail.example.test", "A", nil, "SERVFAIL: the server failed to answer for servfail.example.test", "SERVFAIL"},
		{"empty.example.test", "A", nil, "no A records for empty.example.test", "NOERROR"},
		{"example.test", "CNAME", nil, "no CNAME records for example.test", "NOERROR"},
		{"example.test", "A", []string{"192.0.2.9"}, "expected answer 192.0.2.9 missing (got 192.0.2.1, 192.0.2.2)", "NOERROR"},
		{"example.test", "A", []string{"192.0.2.1", "192.0.2.8", "192.0.2.9"}, "expected answers 192.0.2.8, 192.0.2.9 missing (got 192.0.2.1, 192.0.2.2)", "NOERROR"},
		{"example.test", "MX", []string{"30 mail.example.test"}, "expected answer 30 mail.example.test missing (got 10 mail.example.test, 20 Backup.Example.Test)", "NOERROR"},
		{"example.test", "TXT", []string{"v=spf1"}, "expected answer v=spf1 missing (got v=spf1 -all)", "NOERROR"},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			t.Parallel()
			out := probeDNSCheck(p, tc.name, DNSSettings{Server: server, RecordType: tc.recordType, Expected: tc.expected})
			if out.Up || out.Reason != tc.reason {
				t.Fatalf("up=%v reason %q, want down: %q", out.Up, out.Reason, tc.reason)
			}
			if out.Detail["rcode"] != tc.rcode {
				t.Errorf("rcode %v, want %s", out.Detail["rcode"], tc.rcode)
			}
			// The server answered, so the answer time is known.
			if v := outcomeMetric(t, out, "dns.duration_ms"); v <= 0 {
				t.Errorf("dns.duration_ms = %v, want > 0", v)
			}
		})
	}
}

func TestDNSTruncatedAnswerRetriedOverTCP(t *testing.T) {
	t.Parallel()
	server := startTestDNS(t)
	out := probeDNSCheck(loopbackProber(), "big.example.test", DNSSettings{Server: server, RecordType: "TXT"})
	if !out.Up {
		t.Fatalf("down: %s", out.Reason)
	}
	if n := outcomeMetric(t, out, "dns.answers"); n != 20 {
		t.Errorf("dns.answers = %v, want 20", n)
	}
}

// TestDNSTimeout asks a server that reads queries and never answers.
func TestDNSTimeout(t *testing.T) {
	t.Parallel()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	settings, _ := json.Marshal(DNSSettings{Server: pc.LocalAddr().String()})
	out := loopbackProber().Probe(context.Background(), Check{Kind: "dns", Target: "example.test", Timeout: time.Second, Settings: settings})
	if out.Up || out.Reason != "timeout after 1s" {
		t.Fatalf("up=%v reason %q, want down: timeout after 1s", out.Up, out.Reason)
	}
	if out.Latency != 0 || len(out.Metrics) != 0 {
		t.Errorf("latency %v metrics %v, want none without an answer", out.Latency, out.Metrics)
	}
}

func TestDNSServerForbidden(t *testing.T) {
	t.Parallel()
	server, h := startTestDNSServer(t)
	out := probeDNSCheck(NewProber(saasGuard()), "example.test", DNSSettings{Server: server})
	if out.Up || !strings.Contains(out.Reason, "not allowed") {
		t.Fatalf("up=%v reason %q, want down: server not allowed", out.Up, out.Reason)
	}
	// One allowed query after the refused one: the server counts only that.
	if out := probeDNSCheck(loopbackProber(), "example.test", DNSSettings{Server: server}); !out.Up {
		t.Fatalf("allowed: down: %s", out.Reason)
	}
	if n := h.queries.Load(); n != 1 {
		t.Errorf("the server got %d queries, want only the allowed one", n)
	}
}

func TestDNSBadRecordType(t *testing.T) {
	t.Parallel()
	out := probeDNSCheck(loopbackProber(), "example.test", DNSSettings{Server: "127.0.0.1:53", RecordType: "SRV"})
	if out.Up || !strings.Contains(out.Reason, `record type "SRV"`) {
		t.Fatalf("up=%v reason %q, want down: bad record type", out.Up, out.Reason)
	}
}
