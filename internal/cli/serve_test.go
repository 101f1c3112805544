package cli

import (
	"net/netip"
	"slices"
	"strings"
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

// A short operator token could be guessed; serve refuses to start with one and says why, before it
// touches the database.
func TestServeRefusesAShortOperatorToken(t *testing.T) {
	code, _, stderr := run(t, "serve", "--database-url", "postgres://nobody@127.0.0.1:1/none", "--operator-token", "only-24-characters-long!")
	if code != 1 || !strings.Contains(stderr, "--operator-token must be at least 32 characters") {
		t.Fatalf("serve with a 24-character operator token: exit %d, %q; want 1 and a message asking for 32 characters", code, stderr)
	}
}
