package api

import (
	"net/netip"
	"slices"
	"testing"
)

func TestNetworksFlag(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		ok   bool
	}{
		{"10.0.0.0/8, 192.0.2.7,2001:db8::/32", []string{"10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32"}, true},
		{"10.1.2.3/8", []string{"10.0.0.0/8"}, true},
		{"", nil, true},
		{"10.0.0.0/33", nil, false}, {"proxy.internal", nil, false}, {"10.0.0.0/8,nope", nil, false},
	} {
		var got []netip.Prefix
		err := networks{&got}.Set(tc.in)
		var strs []string
		for _, p := range got {
			strs = append(strs, p.String())
		}
		if (err == nil) != tc.ok || (tc.ok && !slices.Equal(strs, tc.want)) {
			t.Errorf("Set(%q) = %v, %v; want %v, ok %v", tc.in, strs, err, tc.want, tc.ok)
		}
	}
}
