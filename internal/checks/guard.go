package checks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrForbiddenTarget is wrapped by every refusal of the guard.
var ErrForbiddenTarget = errors.New("target not allowed")

// Guard decides which addresses checks may reach. In SaaS mode (AllowPrivate false) a tenant must not
// use the poller to reach the deployment's own network: loopback, private, link-local (cloud metadata
// at 169.254.169.254), unspecified, multicast and other special-purpose addresses are refused — when a
// check is saved, and again on every connection, so a name that later resolves elsewhere (DNS
// rebinding) or a redirect gains nothing.
type Guard struct {
	AllowPrivate bool
	// Resolver looks names up; nil means net.DefaultResolver.
	Resolver *net.Resolver
}

// blockedPrefixes are special-purpose ranges that the netip predicates do not name.
var blockedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),      // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),  // carrier-grade NAT, often internal
	netip.MustParsePrefix("192.0.0.0/24"),   // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),  // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),    // reserved, and 255.255.255.255
	netip.MustParsePrefix("64:ff9b::/96"),   // NAT64: embeds an IPv4 address
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use NAT64
	netip.MustParsePrefix("2002::/16"),      // 6to4: embeds an IPv4 address
	netip.MustParsePrefix("2001::/32"),      // Teredo: embeds an IPv4 address
	netip.MustParsePrefix("100::/64"),       // discard-only
	netip.MustParsePrefix("fec0::/10"),      // deprecated site-local
	netip.MustParsePrefix("::/96"),          // deprecated IPv4-compatible: ::127.0.0.1 embeds 127.0.0.1
}

// CheckAddr says whether a check may connect to addr.
func (g *Guard) CheckAddr(addr netip.Addr) error {
	if g.AllowPrivate {
		return nil
	}
	a := addr.Unmap()
	reason := ""
	switch {
	case !a.IsValid():
		reason = "an invalid address"
	case a.IsLoopback():
		reason = "a loopback address"
	case a.IsPrivate():
		reason = "a private address"
	case a.IsLinkLocalUnicast():
		reason = "a link-local address (cloud metadata lives there)"
	case a.IsUnspecified():
		reason = "the unspecified address"
	case a.IsMulticast(), a.IsLinkLocalMulticast(), a.IsInterfaceLocalMulticast():
		reason = "a multicast address"
	default:
		for _, p := range blockedPrefixes {
			if p.Contains(a) {
				reason = "a special-purpose address (" + p.String() + ")"
				break
			}
		}
	}
	if reason == "" {
		return nil
	}
	return fmt.Errorf("%w: %s is %s; this deployment polls only public addresses", ErrForbiddenTarget, addr, reason)
}

// Resolve returns the addresses of host, refusing it when any of them is not allowed. A host written
// as an IP address in any form inet_aton accepts (2130706433, 0x7f000001, 0177.1) is taken as that
// address and never looked up.
func (g *Guard) Resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if a, ok := parseIPLoose(host); ok {
		if err := g.CheckAddr(a); err != nil {
			return nil, err
		}
		return []netip.Addr{a}, nil
	}
	r := g.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", host, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("resolve %s: no addresses", host)
	}
	for i, a := range addrs {
		// LookupNetIP answers IPv4 addresses in their IPv4-mapped IPv6 form (::ffff:1.2.3.4); callers
		// dial and ping them as IPv4.
		a = a.Unmap()
		if err := g.CheckAddr(a); err != nil {
			return nil, fmt.Errorf("%s resolves to %s: %w", host, a, err)
		}
		addrs[i] = a
	}
	return addrs, nil
}

// CheckEndpoints is the save-time check: it resolves every host a check would connect to (its kind's
// Endpoints: the target, a DNS check's server) and answers a problem, naming the field, for each that is
// not allowed. It sends nothing to the hosts themselves.
func (g *Guard) CheckEndpoints(ctx context.Context, kind, target string, settings json.RawMessage) []Problem {
	k, ok := Lookup(kind)
	if !ok {
		return []Problem{{Field: "kind", Message: "must be one of " + strings.Join(Names(), ", ")}}
	}
	if g.AllowPrivate {
		return nil
	}
	var ps problems
	for _, e := range k.Endpoints(target, settings) {
		if _, err := g.Resolve(ctx, e.Host); err != nil {
			ps.add(e.Field, "is not allowed: %v", err)
		}
	}
	return ps
}

// Dialer returns a dialer that refuses, before connecting, any address the guard does not allow; the
// address checked is the one actually dialled, after name resolution. Names are looked up with the
// guard's Resolver, as in Resolve.
func (g *Guard) Dialer(timeout time.Duration) *net.Dialer {
	return &net.Dialer{Timeout: timeout, Control: g.control, Resolver: g.Resolver}
}

func (g *Guard) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot parse dialled address %q", ErrForbiddenTarget, address)
	}
	return g.CheckAddr(ap.Addr())
}

// parseIPLoose parses an IP address, accepting for IPv4 every form inet_aton does: one to four parts,
// each decimal, octal (leading 0) or hexadecimal (leading 0x), the last filling the remaining bytes.
func parseIPLoose(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.WithZone(""), true
	}
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	vals := make([]uint64, len(parts))
	for i, p := range parts {
		base := 10
		switch {
		case len(p) > 2 && (p[:2] == "0x" || p[:2] == "0X"):
			base, p = 16, p[2:]
		case len(p) > 1 && p[0] == '0':
			base, p = 8, p[1:]
		}
		v, err := strconv.ParseUint(p, base, 32)
		if err != nil {
			return netip.Addr{}, false
		}
		vals[i] = v
	}
	var n uint64
	last := len(vals) - 1
	for i, v := range vals[:last] {
		if v > 255 {
			return netip.Addr{}, false
		}
		n |= v << (24 - 8*uint(i))
	}
	if vals[last] >= 1<<(8*uint(4-last)) {
		return netip.Addr{}, false
	}
	n |= vals[last]
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), true
}
