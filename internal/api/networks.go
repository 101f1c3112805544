package api

import (
	"fmt"
	"net/netip"
	"strings"
)

// networks is a flag value for a comma-separated list of networks in CIDR notation ("10.0.0.0/8"); a
// bare address is the network of that one address.
type networks struct{ p *[]netip.Prefix }

func (v networks) String() string {
	if v.p == nil {
		return ""
	}
	out := make([]string, len(*v.p))
	for i, p := range *v.p {
		out[i] = p.String()
	}
	return strings.Join(out, ",")
}

func (v networks) Set(s string) error {
	var list []netip.Prefix
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		p, err := netip.ParsePrefix(item)
		if err != nil {
			addr, addrErr := netip.ParseAddr(item)
			if addrErr != nil {
				return fmt.Errorf("%q: want a network such as 10.0.0.0/8 or an address such as 192.0.2.7", item)
			}
			p = netip.PrefixFrom(addr, addr.BitLen())
		}
		list = append(list, p.Masked())
	}
	*v.p = list
	return nil
}
