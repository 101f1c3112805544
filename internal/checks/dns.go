package checks

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// dnsKind asks a DNS server for a name's records. Target: the DNS name to resolve.
type dnsKind struct{ noSecrets }

// DNSSettings are a DNS check's settings. Unknown settings are refused.
type DNSSettings struct {
	Server     string   `json:"server"`      // host:port to ask; default the system resolver
	RecordType string   `json:"record_type"` // A, AAAA, CNAME, MX, TXT, NS (default A)
	Expected   []string `json:"expected"`    // answers that must all be present
}

// Bounds of a DNS check's settings.
const (
	maxDNSExpected      = 32
	maxDNSExpectedBytes = 1024 // each expected answer
)

func (dnsKind) Name() string { return "dns" }

func (dnsKind) Validate(target string, settings json.RawMessage) []Problem {
	var ps problems
	if !isHost(target) || net.ParseIP(target) != nil {
		ps.add("target", "must be a DNS name to resolve")
	}
	var st DNSSettings
	if decodeSettings(&ps, "dns", settings, &st) {
		if st.Server != "" && !isHostPort(st.Server) {
			ps.add("settings.server", "must be host:port of a DNS server")
		}
		if st.RecordType != "" && !slices.Contains([]string{"A", "AAAA", "CNAME", "MX", "TXT", "NS"}, st.RecordType) {
			ps.add("settings.record_type", "must be A, AAAA, CNAME, MX, TXT or NS")
		}
		if len(st.Expected) > maxDNSExpected {
			ps.add("settings.expected", "must list at most %d answers", maxDNSExpected)
		}
		for _, e := range st.Expected {
			if len(e) > maxDNSExpectedBytes {
				ps.add("settings.expected", "each answer must be at most %d bytes", maxDNSExpectedBytes)
				break
			}
		}
	}
	return ps
}

// Endpoints is the server the check asks, when settings name one. The name it resolves is not
// connected to; a check without a server asks the system's resolver, which a probe's guard refuses when
// it is a private address.
func (dnsKind) Endpoints(_ string, settings json.RawMessage) []Endpoint {
	var st DNSSettings
	if json.Unmarshal(settings, &st) != nil || st.Server == "" {
		return nil
	}
	return []Endpoint{{Field: "settings.server", Host: hostOf(st.Server)}}
}

func (dnsKind) TargetHost(target string) string { return target }

// dnsTypes are the record types a DNS check may ask for.
var dnsTypes = map[string]uint16{
	"A":     dns.TypeA,
	"AAAA":  dns.TypeAAAA,
	"CNAME": dns.TypeCNAME,
	"MX":    dns.TypeMX,
	"TXT":   dns.TypeTXT,
	"NS":    dns.TypeNS,
}

// resolvConf is where the system resolver is configured; a check without a server asks the first
// nameserver listed there.
const resolvConf = "/etc/resolv.conf"

// Probe asks a server for one record type of the target name and checks that every expected answer
// is among the answers. The query goes over UDP, and again over TCP when the answer comes back
// truncated; both connections are dialled through the guard. With no server set, the check asks the
// system's first nameserver, which the guard refuses in SaaS mode when it is a private address: a
// tenant must not learn the deployment's internal names through it.
func (dnsKind) Probe(ctx context.Context, p *Prober, c Check) Outcome {
	var st DNSSettings
	if len(c.Settings) > 0 {
		if err := json.Unmarshal(c.Settings, &st); err != nil {
			return down("settings: %v", err)
		}
	}
	typeName := strings.ToUpper(cmp.Or(st.RecordType, "A"))
	qtype, ok := dnsTypes[typeName]
	if !ok {
		return down("record type %q is not one of A, AAAA, CNAME, MX, TXT, NS", st.RecordType)
	}
	server := st.Server
	if server == "" {
		conf, err := dns.ClientConfigFromFile(resolvConf)
		if err != nil || len(conf.Servers) == 0 {
			return down("no DNS server set, and none found in %s", resolvConf)
		}
		server = net.JoinHostPort(conf.Servers[0], conf.Port)
	}
	server = dialableAddr(server)

	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(c.Target), qtype)
	q.SetEdns0(1232, false) // the size DNS Flag Day 2020 settled on: no IP fragmentation
	start := time.Now()
	r, err := p.dnsExchange(ctx, c.Timeout, q, "udp", server)
	if err == nil && r.Truncated {
		r, err = p.dnsExchange(ctx, c.Timeout, q, "tcp", server)
	}
	elapsed := time.Since(start)
	detail := map[string]any{"server": server, "record_type": typeName}
	if err != nil {
		out := down("%s", netReason(err, c.Timeout))
		out.Detail = detail
		return out
	}

	answers := []string{}
	for _, rr := range r.Answer {
		if a, ok := dnsAnswer(rr, qtype); ok {
			answers = append(answers, a)
		}
	}
	rcode := dns.RcodeToString[r.Rcode]
	detail["rcode"] = rcode
	detail["answers"] = answers
	detail["duration_ms"] = msFloat(elapsed)
	out := Outcome{
		Up:      true,
		Latency: elapsed,
		Detail:  detail,
		Metrics: []Metric{
			{Name: "dns.duration_ms", Value: msFloat(elapsed)},
			{Name: "dns.answers", Value: float64(len(answers))},
		},
	}
	name := strings.TrimSuffix(c.Target, ".")
	var missing []string
	for _, e := range st.Expected {
		if !slices.ContainsFunc(answers, func(a string) bool { return dnsAnswerMatches(qtype, e, a) }) {
			missing = append(missing, e)
		}
	}
	switch {
	case r.Rcode == dns.RcodeNameError:
		out.Reason = fmt.Sprintf("NXDOMAIN: %s does not exist", name)
	case r.Rcode == dns.RcodeServerFailure:
		out.Reason = fmt.Sprintf("SERVFAIL: the server failed to answer for %s", name)
	case r.Rcode != dns.RcodeSuccess:
		out.Reason = fmt.Sprintf("the server answered %s for %s", rcode, name)
	case len(answers) == 0:
		out.Reason = fmt.Sprintf("no %s records for %s", typeName, name)
	case len(missing) == 1:
		out.Reason = fmt.Sprintf("expected answer %s missing (got %s)", missing[0], strings.Join(answers, ", "))
	case len(missing) > 1:
		out.Reason = fmt.Sprintf("expected answers %s missing (got %s)", strings.Join(missing, ", "), strings.Join(answers, ", "))
	}
	out.Up = out.Reason == ""
	return out
}

// dnsExchange sends q to server over network ("udp" or "tcp") through a connection the guard dialled.
func (p *Prober) dnsExchange(ctx context.Context, timeout time.Duration, q *dns.Msg, network, server string) (*dns.Msg, error) {
	// Timeout replaces the client's 2 s defaults for each step; the context's deadline, which
	// ExchangeWithConnContext applies too, ends the whole exchange within the check's timeout.
	client := &dns.Client{Net: network, Dialer: p.guard.Dialer(timeout), Timeout: timeout}
	conn, err := client.DialContext(ctx, server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	// The client watches the context's deadline only; closing the connection also ends a cancelled probe.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	r, _, err := client.ExchangeWithConnContext(ctx, q, conn)
	if err != nil && ctx.Err() != nil {
		return nil, ctx.Err() // "timeout" rather than "use of closed network connection"
	}
	return r, err
}

// dnsAnswer is the presentation of one answer record of type qtype, without a trailing dot; ok is
// false for other records (the CNAMEs on the way to an A record, say).
func dnsAnswer(rr dns.RR, qtype uint16) (string, bool) {
	if rr.Header().Rrtype != qtype {
		return "", false
	}
	switch v := rr.(type) {
	case *dns.A:
		return v.A.String(), true
	case *dns.AAAA:
		return v.AAAA.String(), true
	case *dns.CNAME:
		return strings.TrimSuffix(v.Target, "."), true
	case *dns.MX:
		return fmt.Sprintf("%d %s", v.Preference, strings.TrimSuffix(v.Mx, ".")), true
	case *dns.TXT:
		return strings.Join(v.Txt, ""), true
	case *dns.NS:
		return strings.TrimSuffix(v.Ns, "."), true
	}
	return "", false
}

// dnsAnswerMatches says whether answer satisfies an expected answer: equal ignoring case and a trailing
// dot, the same IP address however written, or for MX the host alone ("mail.example.com" matches
// "10 mail.example.com").
func dnsAnswerMatches(qtype uint16, expected, answer string) bool {
	norm := func(s string) string { return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(s), ".")) }
	e, a := norm(expected), norm(answer)
	if e == a {
		return true
	}
	if ea, err := netip.ParseAddr(e); err == nil {
		aa, err := netip.ParseAddr(a)
		return err == nil && ea == aa
	}
	if qtype == dns.TypeMX {
		_, host, _ := strings.Cut(a, " ")
		return host == e
	}
	return false
}
