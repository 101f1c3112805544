package query

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/infrawatch/infrawatch/internal/db"
)

// Limits bound the dashboard queries. A zero or negative field takes its DefaultLimits value.
type Limits struct {
	// MaxSeries is how many series one query may match; more is refused naming the filter to narrow.
	MaxSeries int
	// MaxPointsPerSeries bounds the points of each series in a range answer. Step auto picks the finest
	// step that stays within it; an explicit step that does not is refused naming step.
	MaxPointsPerSeries int
	// MaxPoints bounds the points of one range answer over all its series.
	MaxPoints int
	// MaxRange is the widest from–to range a range query may span.
	MaxRange time.Duration
	// RawAutoRange is the widest range for which step auto answers raw samples. The default, 2 hours,
	// assumes series sampled no more often than every 7.2 s (the agent's default is every 10 s: 720
	// points in 2 hours). A series with more samples than MaxPointsPerSeries in the range makes auto
	// fall back to the 5m tier, so the assumption only decides the tier, never the size of the answer.
	RawAutoRange time.Duration
	// LatestLookback is how far back Latest looks for a series' last sample; a series silent for longer
	// is left out of the answer.
	LatestLookback time.Duration
	// ReportingWindow is how recent a host's newest sample must be for Overview to count it as reporting.
	ReportingWindow time.Duration
}

// DefaultLimits keep a dashboard answer under a few megabytes and a few seconds of database time. They
// are the only copy of these defaults.
func DefaultLimits() Limits {
	return Limits{
		MaxSeries:          100,
		MaxPointsPerSeries: 1000,
		MaxPoints:          100_000,
		MaxRange:           5 * 8766 * time.Hour, // 5 years of 365.25 days
		RawAutoRange:       2 * time.Hour,
		LatestLookback:     24 * time.Hour,
		ReportingWindow:    10 * time.Minute,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	pick := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	pickD := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	pick(&l.MaxSeries, d.MaxSeries)
	pick(&l.MaxPointsPerSeries, d.MaxPointsPerSeries)
	pick(&l.MaxPoints, d.MaxPoints)
	pickD(&l.MaxRange, d.MaxRange)
	pickD(&l.RawAutoRange, d.RawAutoRange)
	pickD(&l.LatestLookback, d.LatestLookback)
	pickD(&l.ReportingWindow, d.ReportingWindow)
	return l
}

// StatementOptions plan each statement of a query for its own parameters (a cached generic plan
// cannot tell which rollup chunks and series a range touches, and reads a tier's whole time range of
// every series instead), without JIT (the planner cannot see a rollup's watermark, so it overestimates
// the real-time part of a tier, and the cost passes jit_above_cost: compiling then takes up to a second
// for a query that runs in milliseconds).
func StatementOptions() db.StatementOptions {
	return db.StatementOptions{Settings: []db.Setting{{Name: "plan_cache_mode", Value: "force_custom_plan"}, {Name: "jit", Value: "off"}}}
}

// LimitError refuses a request that asks for more than the limits allow: too many series, too many
// points, too long a range. Param names the request parameter to change (metric, series, from, step)
// and Msg says how.
type LimitError struct {
	Param, Msg string
}

func (e *LimitError) Error() string { return e.Param + ": " + e.Msg }

// InvalidError refuses a request parameter the planner cannot take: a step or aggregate it does not
// know, a range that does not start before it ends, a time outside 1970–2200, no series named.
type InvalidError struct {
	Param, Msg string
}

func (e *InvalidError) Error() string { return e.Param + ": " + e.Msg }

func limitErr(param, format string, args ...any) error {
	return &LimitError{Param: param, Msg: fmt.Sprintf(format, args...)}
}

// step is the resolution of a range answer: raw samples (width 0) or a rollup tier.
type step struct {
	name  string
	width time.Duration
}

var (
	stepRaw = step{name: "raw"}
	// tiers are the rollup tiers, finest first.
	tiers = []step{{"5m", 5 * time.Minute}, {"1h", time.Hour}, {"1d", 24 * time.Hour}}
	aggs  = []string{"avg", "min", "max", "last", "sum", "count"}
)

// Times outside these bounds are refused, which also keeps every computation on nanoseconds in range.
var (
	earliestTime = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	latestTime   = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// buckets is how many buckets of width w overlap [from, to). Buckets start at multiples of w since the
// Unix epoch, as time_bucket and date_bin place them for widths of a day or less.
func buckets(from, to time.Time, w time.Duration) int {
	return int(floorDiv(to.UnixNano()-1, int64(w)) - floorDiv(from.UnixNano(), int64(w)) + 1)
}

// bucketStart is the start of the bucket of width w that holds t.
func bucketStart(t time.Time, w time.Duration) time.Time {
	return time.Unix(0, floorDiv(t.UnixNano(), int64(w))*int64(w))
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// validateSelector refuses a selector that names no series, or more ids than MaxSeries.
func (l Limits) validateSelector(s Selector) []error {
	var errs []error
	if len(s.IDs) > l.MaxSeries {
		errs = append(errs, limitErr("series", "lists %d series; the limit is %d", len(s.IDs), l.MaxSeries))
	}
	if s.Metric == "" && len(s.IDs) == 0 {
		errs = append(errs, &InvalidError{Param: "metric", Msg: "is required, unless series=ID names the series"})
	}
	return errs
}

// validateRange refuses what a range request asks that no step can answer, parameter by parameter.
func (l Limits) validateRange(r RangeRequest) []error {
	errs := l.validateSelector(r.Selector)
	timesOK := !r.From.IsZero() && !r.To.IsZero()
	for _, f := range []struct {
		name string
		t    time.Time
	}{{"from", r.From}, {"to", r.To}} {
		if !f.t.IsZero() && (f.t.Before(earliestTime) || !f.t.Before(latestTime)) {
			errs = append(errs, &InvalidError{Param: f.name, Msg: "must fall between 1970 and 2200"})
			timesOK = false
		}
	}
	switch {
	case !timesOK:
	case !r.From.Before(r.To):
		errs = append(errs, &InvalidError{Param: "from", Msg: "must be before to"})
	case r.To.Sub(r.From) > l.MaxRange:
		errs = append(errs, limitErr("from", "the range spans %s; it may span at most %s", spanText(r.To.Sub(r.From)), spanText(l.MaxRange)))
	}
	if r.Step != "auto" && r.Step != "raw" && tierByName(r.Step) == nil {
		errs = append(errs, &InvalidError{Param: "step", Msg: "must be one of auto, raw, 5m, 1h, 1d"})
	}
	if !slices.Contains(aggs, r.Agg) {
		errs = append(errs, &InvalidError{Param: "agg", Msg: "must be one of " + strings.Join(aggs, ", ")})
	}
	return errs
}

// spanText writes a duration for a message: in days from two days up.
func spanText(d time.Duration) string {
	if d < 48*time.Hour {
		return d.String()
	}
	return strconv.FormatFloat(d.Hours()/24, 'f', 1, 64) + " days"
}

func tierByName(name string) *step {
	for i := range tiers {
		if tiers[i].name == name {
			return &tiers[i]
		}
	}
	return nil
}

// fits tells whether a tier answers n series over [from, to) within the point limits.
func (l Limits) fits(t step, from, to time.Time, n int) bool {
	b := buckets(from, to, t.width)
	return b <= l.MaxPointsPerSeries && b*n <= l.MaxPoints
}

// finestTier is the finest tier no finer than after (nil: any) that fits, or nil.
func (l Limits) finestTier(after *step, from, to time.Time, n int) *step {
	for i := range tiers {
		if after != nil && tiers[i].width <= after.width {
			continue
		}
		if l.fits(tiers[i], from, to, n) {
			return &tiers[i]
		}
	}
	return nil
}

// planStep decides the step of a range query over n series: the one asked for, or for auto raw samples
// up to RawAutoRange and otherwise the finest tier within the point limits. It refuses an explicit tier
// over the limits naming step, and a range no tier can answer naming from.
func (l Limits) planStep(asked string, from, to time.Time, n int) (step, error) {
	switch asked {
	case "raw":
		return stepRaw, nil
	case "auto":
		if to.Sub(from) <= l.RawAutoRange {
			return stepRaw, nil
		}
		if t := l.finestTier(nil, from, to, n); t != nil {
			return *t, nil
		}
		return step{}, l.rangeTooLong(from, to, n)
	}
	t := tierByName(asked)
	if t == nil {
		return step{}, &InvalidError{Param: "step", Msg: "must be one of auto, raw, 5m, 1h, 1d"}
	}
	if l.fits(*t, from, to, n) {
		return *t, nil
	}
	return step{}, l.tooManyPoints(*t, from, to, n)
}

func (l Limits) rangeTooLong(from, to time.Time, n int) error {
	return limitErr("from", "the range spans %s: even step=1d gives %d points per series (%d series); the limits are %d per series and %d per answer; narrow the range",
		spanText(to.Sub(from)), buckets(from, to, 24*time.Hour), n, l.MaxPointsPerSeries, l.MaxPoints)
}

func (l Limits) tooManyPoints(t step, from, to time.Time, n int) error {
	b := buckets(from, to, t.width)
	coarser := l.finestTier(&t, from, to, n)
	if coarser == nil {
		return limitErr("step", "step=%s gives %d points per series, %d in all; the limits are %d per series and %d per answer, and no coarser step fits: narrow the range",
			t.name, b, b*n, l.MaxPointsPerSeries, l.MaxPoints)
	}
	return limitErr("step", "step=%s gives %d points per series, %d in all; the limits are %d per series and %d per answer; use step=%s or coarser, or step=auto",
		t.name, b, b*n, l.MaxPointsPerSeries, l.MaxPoints, coarser.name)
}
