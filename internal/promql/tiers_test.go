package promql

import (
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
)

const (
	minute = int64(60_000)
	hour   = 60 * minute
	day    = 24 * hour
)

// The read plan follows the rule of tiers.go: a tier only for the functions it answers, for windows
// and steps that are multiples of its width, evaluation times on its bucket edges, and an instant
// selector's lookback equal to its width.
func TestPlanRead(t *testing.T) {
	start := 1_800_000_000_000 - 1_800_000_000_000%day // a UTC midnight
	lookback := 5 * time.Minute
	matrix := func(fn string, r, first, last, step int64) *storage.SelectHints {
		return &storage.SelectHints{Func: fn, Range: r, Start: first - r + 1, End: last, Step: step}
	}
	instant := func(fn string, first, last, step int64) *storage.SelectHints {
		return &storage.SelectHints{Func: fn, Start: first - lookback.Milliseconds() + 1, End: last, Step: step}
	}
	for _, c := range []struct {
		name string
		h    *storage.SelectHints
		want string // the tier, "" for raw
	}{
		{"max_over_time of an hour at hourly steps", matrix("max_over_time", hour, start, start+day, hour), "1h"},
		{"max_over_time of a day at daily steps", matrix("max_over_time", day, start, start+7*day, day), "1d"},
		{"min_over_time of 10m at 5m steps", matrix("min_over_time", 10*minute, start, start+day, 5*minute), "5m"},
		{"sum_over_time of 1h at 5m steps", matrix("sum_over_time", hour, start, start+day, 5*minute), "5m"},
		{"last_over_time, an instant query", matrix("last_over_time", hour, start+3*hour, start+3*hour, 0), "1h"},
		{"present_over_time", matrix("present_over_time", 15*minute, start, start+hour, 15*minute), "5m"},
		{"rate is never from a tier", matrix("rate", hour, start, start+day, hour), ""},
		{"increase is never from a tier", matrix("increase", hour, start, start+day, hour), ""},
		{"avg_over_time is not answered by buckets", matrix("avg_over_time", hour, start, start+day, hour), ""},
		{"count_over_time is not answered by buckets", matrix("count_over_time", hour, start, start+day, hour), ""},
		{"a top-level range selector", matrix("", hour, start, start, 0), ""},
		{"a range that is no multiple of 5m", matrix("max_over_time", 7*minute, start, start+day, 5*minute), ""},
		{"a step that is no multiple of 5m", matrix("max_over_time", hour, start, start+day, 90_000), ""},
		{"evaluation times off the bucket edges", matrix("max_over_time", hour, start+1000, start+day+1000, hour), ""},
		{"an instant selector at 5m steps", instant("", start, start+day, 5*minute), "5m"},
		{"an instant selector under sum", instant("sum", start, start+day, 30*minute), "5m"},
		{"an instant selector at one time", instant("", start+hour, start+hour, 0), "5m"},
		{"an instant selector at 1m steps", instant("", start, start+hour, minute), ""},
		{"timestamp() needs each sample's time", instant("timestamp", start, start+day, 5*minute), ""},
		{"the series endpoint", instant("series", start, start+day, 5*minute), ""},
		{"no hints", nil, ""},
	} {
		p := planRead(c.h, lookback, true)
		got := ""
		if p.tier != nil {
			got = p.tier.name
		}
		if got != c.want {
			t.Errorf("%s: tier %q, want %q", c.name, got, c.want)
		}
		if off := planRead(c.h, lookback, false); off.tier != nil {
			t.Errorf("%s: a tier although tiers are not allowed", c.name)
		}
	}
	// An instant selector reads a tier only when the lookback is its width.
	if p := planRead(instant("", start, start+day, hour), time.Hour, true); p.tier != nil {
		t.Errorf("an instant selector with a lookback of 1h (hints for 5m) read tier %s", p.tier.name)
	}
	h := &storage.SelectHints{Start: start - hour + 1, End: start + day, Step: hour}
	if p := planRead(h, time.Hour, true); p.tier == nil || p.tier.name != "1h" {
		t.Errorf("an instant selector with a lookback of 1h at hourly steps: %+v, want the 1h tier", p)
	}
}

// The edges are every evaluation time and the start of its window, each once; the buckets read are
// those inside some window.
func TestPlanEdges(t *testing.T) {
	start := int64(1_800_000_000_000) - 1_800_000_000_000%day
	p := planRead(&storage.SelectHints{Func: "max_over_time", Range: hour, Start: start - hour + 1, End: start + 3*hour + 17, Step: hour},
		5*time.Minute, true)
	if p.tier == nil || p.tier.name != "1h" {
		t.Fatalf("plan %+v, want the 1h tier", p)
	}
	want := []int64{start - hour, start, start + hour, start + 2*hour, start + 3*hour}
	if got := p.edges(); !slices.Equal(got, want) {
		t.Errorf("edges %v, want %v", got, want)
	}
	if from, to := p.bucketRange(); from != start-hour || to != start+3*hour {
		t.Errorf("buckets [%d, %d), want [%d, %d)", from, to, start-hour, start+3*hour)
	}
	// A window of two steps: each edge once.
	p = planRead(&storage.SelectHints{Func: "max_over_time", Range: 2 * hour, Start: start - 2*hour + 1, End: start + 2*hour, Step: hour},
		5*time.Minute, true)
	want = []int64{start - 2*hour, start, start - hour, start + hour, start + 2*hour}
	if got := p.edges(); !slices.Equal(got, want) {
		t.Errorf("edges of a 2h window %v, want %v", got, want)
	}
}

// A bucket is handed to the engine as one sample at its last millisecond, valued as the function
// needs; a NaN anywhere sends the series to raw samples.
func TestBucketSamples(t *testing.T) {
	p := readPlan{tier: &tiers[2], use: useMax}
	ps, ok := bucketSamples(p, []int64{0, 5 * minute}, []float64{1, 2}, []float64{3, 4}, []float64{5, 6}, []float64{7, 8})
	if !ok || len(ps) != 2 || ps[0] != (point{5*minute - 1, 3}) || ps[1] != (point{10*minute - 1, 4}) {
		t.Errorf("max: %v %v", ps, ok)
	}
	p.use = useLast
	if ps, _ := bucketSamples(p, []int64{0}, []float64{1}, []float64{3}, []float64{5}, []float64{7}); ps[0].f != 7 {
		t.Errorf("last: %v", ps)
	}
	if _, ok := bucketSamples(p, []int64{0}, []float64{1}, []float64{nan()}, []float64{nan()}, []float64{7}); ok {
		t.Error("a bucket with a NaN was handed on")
	}
}

// A subquery's inner steps are aligned on their own: a query with one reads raw samples throughout.
func TestTiersAllowedFor(t *testing.T) {
	p := parser.NewParser(parser.Options{})
	for q, want := range map[string]bool{
		`max_over_time(cpu[1h])`:                         true,
		`sum by (host) (rate(cpu[5m] offset 1h))`:        true,
		`max_over_time(rate(cpu[5m])[1h:5m])`:            false,
		`max_over_time(cpu[1h]) / max_over_time(x[1h:])`: false,
	} {
		expr, err := p.ParseExpr(q)
		if err != nil {
			t.Fatal(err)
		}
		if got := tiersAllowedFor(expr); got != want {
			t.Errorf("%s: tiers allowed %v, want %v", q, got, want)
		}
	}
}
