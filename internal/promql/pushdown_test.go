package promql

import (
	"math"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

func nan() float64 { return math.NaN() }

func mustMatcher(t *testing.T, mt labels.MatchType, name, value string) *labels.Matcher {
	t.Helper()
	m, err := labels.NewMatcher(mt, name, value)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// What SQL is given of a selector: names (and their prefix) for the index, the other labels as one
// jsonpath predicate; what SQL cannot express is left out (Go applies every matcher anyway).
func TestPushDown(t *testing.T) {
	eq, neq, re, nre := labels.MatchEqual, labels.MatchNotEqual, labels.MatchRegexp, labels.MatchNotRegexp
	for _, c := range []struct {
		name     string
		ms       [][3]string
		types    []labels.MatchType
		names    []string
		like     string
		labels   string
		none     bool
		noLabels bool
	}{
		{name: "a name", ms: [][3]string{{"", "__name__", "cpu_usage"}}, types: []labels.MatchType{eq}, names: []string{"cpu_usage"}, noLabels: true},
		{name: "names that are two things at once", ms: [][3]string{{"", "__name__", "a"}, {"", "__name__", "b"}},
			types: []labels.MatchType{eq, eq}, none: true, noLabels: true},
		{name: "an alternation of names", ms: [][3]string{{"", "__name__", "b|a"}}, types: []labels.MatchType{re}, names: []string{"a", "b"}, noLabels: true},
		{name: "an alternation narrowed by a name", ms: [][3]string{{"", "__name__", "a|b"}, {"", "__name__", "b"}},
			types: []labels.MatchType{re, eq}, names: []string{"b"}, noLabels: true},
		{name: "a prefix", ms: [][3]string{{"", "__name__", "node_cpu.*"}}, types: []labels.MatchType{re}, like: `node\_cpu%`, noLabels: true},
		{name: "anything but a name", ms: [][3]string{{"", "__name__", "x"}}, types: []labels.MatchType{neq}, noLabels: true},
		{name: "a label", ms: [][3]string{{"", "env", "prod"}}, types: []labels.MatchType{eq}, labels: `exists($."env" ? (@ == "prod"))`},
		{name: "an absent label", ms: [][3]string{{"", "env", ""}}, types: []labels.MatchType{eq}, labels: `!(exists($."env" ? (@ != "")))`},
		{name: "not a value", ms: [][3]string{{"", "env", "prod"}}, types: []labels.MatchType{neq}, labels: `!(exists($."env" ? (@ == "prod")))`},
		{name: "a present label", ms: [][3]string{{"", "env", ""}}, types: []labels.MatchType{neq}, labels: `!(!(exists($."env" ? (@ != ""))))`},
		{name: "a set of values", ms: [][3]string{{"", "env", "prod|dev"}}, types: []labels.MatchType{re},
			labels: `(exists($."env" ? (@ == "prod" || @ == "dev")))`},
		{name: "a set with the empty value", ms: [][3]string{{"", "env", "prod|"}}, types: []labels.MatchType{re},
			labels: `(exists($."env" ? (@ == "prod")) || !(exists($."env" ? (@ != ""))))`},
		{name: "not in a set", ms: [][3]string{{"", "env", "prod|dev"}}, types: []labels.MatchType{nre},
			labels: `!((exists($."env" ? (@ == "prod" || @ == "dev"))))`},
		{name: "a label prefix", ms: [][3]string{{"", "pod", "web-.+"}}, types: []labels.MatchType{re}, labels: `exists($."pod" ? (@ starts with "web-"))`},
		{name: "a regular expression SQL cannot take", ms: [][3]string{{"", "pod", ".*web.*"}}, types: []labels.MatchType{re}, noLabels: true},
		{name: "quotes and backslashes", ms: [][3]string{{"", `a"b`, `c\d"`}}, types: []labels.MatchType{eq},
			labels: `exists($."a\"b" ? (@ == "c\\d\""))`},
		{name: "a value no text can hold", ms: [][3]string{{"", "env", "a\x00b"}}, types: []labels.MatchType{eq}, noLabels: true},
		{name: "two labels", ms: [][3]string{{"", "env", "prod"}, {"", "host", "web-1"}}, types: []labels.MatchType{eq, eq},
			labels: `exists($."env" ? (@ == "prod")) && exists($."host" ? (@ == "web-1"))`},
	} {
		var ms []*labels.Matcher
		for i, m := range c.ms {
			ms = append(ms, mustMatcher(t, c.types[i], m[1], m[2]))
		}
		f := pushDown(ms)
		if f.none != c.none {
			t.Errorf("%s: none %v, want %v", c.name, f.none, c.none)
		}
		if !c.none && len(c.names) > 0 && !equalStrings(f.names, c.names) {
			t.Errorf("%s: names %q, want %q", c.name, f.names, c.names)
		}
		if len(c.names) == 0 && !c.none && f.names != nil {
			t.Errorf("%s: names %q, want none", c.name, f.names)
		}
		if got := deref(f.nameLike); got != c.like {
			t.Errorf("%s: like %q, want %q", c.name, got, c.like)
		}
		if got := deref(f.labels); got != c.labels || (c.noLabels && f.labels != nil) {
			t.Errorf("%s: labels %q, want %q", c.name, got, c.labels)
		}
	}
}

// PromQL names: dots become underscores; labels with an empty value are left out.
func TestSeriesLabels(t *testing.T) {
	var b labels.ScratchBuilder
	ls := seriesLabels(&b, "cpu.usage_pct", map[string]string{"host": "web-1", "cpu": "", "__name__": "forged"})
	if got := ls.String(); got != `{__name__="cpu_usage_pct", host="web-1"}` {
		t.Errorf("labels %s", got)
	}
	if PromName("go_goroutines") != "go_goroutines" || PromName("a.b.c") != "a_b_c" {
		t.Error("PromName")
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
