package maintenance

import (
	"testing"
	"time"
)

func TestDaysFlag(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"30d", 30 * day, true}, {"1825d", 1825 * day, true}, {"36h", 36 * time.Hour, true},
		{"0d", 0, false}, {"-3d", 0, false}, {"d", 0, false}, {"3 weeks", 0, false}, {"-1h", 0, false},
	} {
		var d, also time.Duration
		err := days{&d, &also}.Set(tc.in)
		if (err == nil) != tc.ok || (tc.ok && (d != tc.want || also != tc.want)) {
			t.Errorf("Set(%q) = %s and %s, %v; want %s in both, ok %v", tc.in, d, also, err, tc.want, tc.ok)
		}
	}
	d := 730 * day
	if s := (days{&d}).String(); s != "730d" {
		t.Errorf("String() = %q, want 730d", s)
	}
}
