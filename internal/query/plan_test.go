package query

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestBuckets(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct {
		from, to string
		width    time.Duration
		want     int
	}{
		{"2026-11-28T10:00:00Z", "2026-11-28T11:00:00Z", 5 * time.Minute, 12},
		{"2026-11-28T10:02:00Z", "2026-11-28T11:00:00Z", 5 * time.Minute, 12}, // the first bucket starts at 10:00
		{"2026-11-28T10:02:00Z", "2026-11-28T11:00:01Z", 5 * time.Minute, 13},
		{"2026-11-28T23:59:00Z", "2026-11-29T00:01:00Z", 24 * time.Hour, 2},
		{"1969-12-31T23:00:00Z", "1970-01-01T01:00:00Z", time.Hour, 2},
	} {
		if got := buckets(at(c.from), at(c.to), c.width); got != c.want {
			t.Errorf("buckets(%s, %s, %s) = %d, want %d", c.from, c.to, c.width, got, c.want)
		}
	}
	if got := bucketStart(at("2026-11-28T10:07:31Z"), 5*time.Minute); !got.Equal(at("2026-11-28T10:05:00Z")) {
		t.Errorf("bucketStart = %s", got)
	}
}

// describe writes a planner's answer as the tests compare it: a step's name, or "<kind> <param>: <message>"
// for a refusal, kind being limit or invalid.
func describe(st step, err error) string {
	var le *LimitError
	var ie *InvalidError
	switch {
	case errors.As(err, &le):
		return "limit " + le.Param + ": " + le.Msg
	case errors.As(err, &ie):
		return "invalid " + ie.Param + ": " + ie.Msg
	case err != nil:
		return "untyped: " + err.Error()
	}
	return st.name
}

func TestPlanStep(t *testing.T) {
	l := DefaultLimits()
	to := time.Date(2026, 11, 28, 15, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		asked  string
		span   time.Duration
		series int
		want   string // a step, or "limit <param>: <part of the message>"
	}{
		{"auto", time.Hour, 1, "raw"},
		{"auto", 2 * time.Hour, 100, "raw"},
		{"auto", 2*time.Hour + time.Minute, 1, "5m"},
		{"auto", 83 * time.Hour, 1, "5m"}, // 996 buckets
		{"auto", 84 * time.Hour, 1, "1h"}, // 1008 buckets of 5 minutes
		{"auto", 41 * 24 * time.Hour, 1, "1h"},
		{"auto", 42 * 24 * time.Hour, 1, "1d"},
		{"auto", 999 * 24 * time.Hour, 100, "1d"},
		{"auto", 1000 * 24 * time.Hour, 1, "limit from: narrow the range"}, // 1001 buckets: to is not on a day boundary
		{"auto", 30 * 24 * time.Hour, 200, "1d"},                           // 721 hours × 200 series is over 100,000 points
		{"raw", 365 * 24 * time.Hour, 1, "raw"},                            // raw is checked against the samples found
		{"5m", 24 * time.Hour, 1, "5m"},
		{"5m", 4 * 24 * time.Hour, 1, "limit step: use step=1h"},
		{"1h", 60 * 24 * time.Hour, 1, "limit step: use step=1d"},
		{"1d", 1200 * 24 * time.Hour, 1, "limit step: no coarser step fits"},
	} {
		desc := describe(l.planStep(c.asked, to.Add(-c.span), to, c.series))
		head, part, refusal := strings.Cut(c.want, ": ")
		if !refusal && desc != c.want || refusal && (!strings.HasPrefix(desc, head+": ") || !strings.Contains(desc, part)) {
			t.Errorf("planStep(%s, %s, %d series) = %s, want %s", c.asked, c.span, c.series, desc, c.want)
		}
	}
}

// Whatever the range and the number of series, step=auto answers within the point limits or refuses
// naming from, and an explicit tier it accepts is within them too.
func FuzzPlanStep(f *testing.F) {
	f.Add(int64(1_795_878_000_000), int64(3_600_000), 1, "auto")
	f.Add(int64(0), int64(86_400_000*400), 100, "1h")
	f.Add(int64(-5), int64(1), 0, "1d")
	f.Fuzz(func(t *testing.T, toMs, spanMs int64, n int, asked string) {
		l := DefaultLimits()
		if spanMs <= 0 || spanMs > l.MaxRange.Milliseconds() || n < 0 || n > l.MaxSeries ||
			(asked != "auto" && asked != "raw" && tierByName(asked) == nil) {
			t.Skip("outside what the planner is asked: validation refuses it first")
		}
		to := time.UnixMilli(toMs)
		from := to.Add(-time.Duration(spanMs) * time.Millisecond)
		if from.Before(earliestTime) || !to.Before(latestTime) {
			t.Skip("outside 1970–2200: validation refuses it first")
		}
		st, err := l.planStep(asked, from, to, n)
		var le *LimitError
		switch {
		case err != nil && !errors.As(err, &le):
			t.Fatalf("planStep: %v", err)
		case err != nil:
			if le.Param != "from" && le.Param != "step" {
				t.Fatalf("refusal names %q", le.Param)
			}
		case st.width > 0:
			if b := buckets(from, to, st.width); b > l.MaxPointsPerSeries || b*n > l.MaxPoints {
				t.Fatalf("%s over %s answers %d buckets for %d series", st.name, to.Sub(from), b, n)
			}
		case st == stepRaw && asked == "auto" && to.Sub(from) > l.RawAutoRange:
			t.Fatalf("auto answered raw over %s", to.Sub(from))
		}
	})
}

// ValidateRange refuses every parameter it cannot take, each by name, in the order of the parameters;
// times the caller could not read (zero) are left to the caller's own refusal.
func TestValidateRange(t *testing.T) {
	p := New(nil, Limits{})
	to := time.Date(2026, 11, 28, 15, 0, 0, 0, time.UTC)
	ok := RangeRequest{Selector: Selector{Metric: "cpu"}, From: to.Add(-time.Hour), To: to, Step: "auto", Agg: "avg"}
	for _, c := range []struct {
		name   string
		change func(r *RangeRequest)
		want   []string
	}{
		{"valid", func(*RangeRequest) {}, nil},
		{"by series id", func(r *RangeRequest) { r.Selector = Selector{IDs: []int64{7}} }, nil},
		{"no selector", func(r *RangeRequest) { r.Selector = Selector{Host: "web-1"} },
			[]string{"invalid metric: is required, unless series=ID names the series"}},
		{"too many ids", func(r *RangeRequest) { r.Selector = Selector{IDs: make([]int64, 101)} },
			[]string{"limit series: lists 101 series; the limit is 100"}},
		{"from after to", func(r *RangeRequest) { r.From = to.Add(time.Minute) }, []string{"invalid from: must be before to"}},
		{"from equals to", func(r *RangeRequest) { r.From = to }, []string{"invalid from: must be before to"}},
		{"span over the limit", func(r *RangeRequest) { r.From = to.Add(-6 * 8766 * time.Hour) },
			[]string{"limit from: the range spans 2191.5 days; it may span at most 1826.2 days"}},
		{"before 1970", func(r *RangeRequest) { r.From = time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC) },
			[]string{"invalid from: must fall between 1970 and 2200"}},
		{"from unreadable", func(r *RangeRequest) { r.From = time.Time{} }, nil},
		{"unknown step and agg", func(r *RangeRequest) { r.Step, r.Agg = "10m", "median" },
			[]string{"invalid step: must be one of auto, raw, 5m, 1h, 1d", "invalid agg: must be one of avg, min, max, last, sum, count"}},
		{"all at once", func(r *RangeRequest) {
			r.Selector, r.To, r.Agg = Selector{}, time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), ""
		},
			[]string{"invalid metric: is required, unless series=ID names the series", "invalid to: must fall between 1970 and 2200",
				"invalid agg: must be one of avg, min, max, last, sum, count"}},
	} {
		r := ok
		r.Selector.IDs = slices.Clone(ok.Selector.IDs)
		c.change(&r)
		var got []string
		for _, err := range p.ValidateRange(r) {
			got = append(got, describe(step{}, err))
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: ValidateRange = %q, want %q", c.name, got, c.want)
		}
	}
}

func TestTierPoints(t *testing.T) {
	at := func(minutes ...int64) ([]time.Time, []float64, Points) {
		buckets, values, want := make([]time.Time, len(minutes)), make([]float64, len(minutes)), make(Points, len(minutes))
		for i, m := range minutes {
			buckets[i], values[i] = time.Unix(m*60, 0), float64(m)/10
		}
		sorted := slices.Clone(minutes)
		slices.Sort(sorted)
		for i, m := range sorted {
			want[i] = Point{Time: m * 60_000, Value: float64(m) / 10}
		}
		return buckets, values, want
	}
	for _, c := range []struct {
		name    string
		minutes []int64
	}{
		{"empty", nil},
		{"one bucket", []int64{5}},
		{"in order", []int64{1, 2, 3, 7}},
		{"chunks newest first", []int64{7, 8, 9, 4, 5, 6, 1, 2, 3}},
		{"chunks shuffled", []int64{4, 5, 1, 2, 3, 8, 9, 6, 7}},
		{"runs that overlap", []int64{1, 5, 9, 2, 6, 3, 7}},
		{"reversed", []int64{3, 2, 1}},
	} {
		buckets, values, want := at(c.minutes...)
		if got := tierPoints(buckets, values); !slices.Equal(got, want) {
			t.Errorf("%s: tierPoints = %v, want %v", c.name, got, want)
		}
	}
}
