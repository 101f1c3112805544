package promql

import (
	"math"
	"time"

	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
)

// When a rollup tier gives the same answer as the raw samples (the package doc says it for users).
//
// A tier of width w holds, per series and bucket [b, b+w), the min, max, sum, count and last of the
// raw samples in it. PromQL evaluates a selector at times t: a range selector x[r] sees the samples in
// (t-r, t], an instant selector x the latest sample in (t-δ, t], δ the lookback. When r (or δ) is a
// multiple of w and every t is a multiple of w, the window is exactly the buckets [t-r, t-r+w), …,
// [t-w, t), except for a sample lying exactly on an edge: at t-r (in the buckets, not the window) or
// at t (in the window, not the buckets). Then, for every series with no sample on an edge and no NaN
// in the range (a stale marker is a NaN; PostgreSQL orders NaN above every number, PromQL skips it):
//
//   - max_over_time, min_over_time: the max (min) of the buckets' maxes (mins), exactly;
//   - last_over_time, and an instant selector with δ = w: the last of the newest bucket, exactly;
//   - present_over_time: whether a bucket exists, exactly;
//   - sum_over_time: the sum of the buckets' sums, equal up to floating-point rounding (the raw sum
//     is taken in another order).
//
// The storage hands the engine one sample per bucket at b+w-1 ms — inside (t-r, t] exactly for the
// buckets of the window — valued as the function needs, so the engine's own function computes the
// answer. Everything else reads raw samples: rate, increase, irate, delta, deriv, changes, resets,
// quantile_over_time, avg_over_time and count_over_time (they need each sample, its time or its count
// as the engine counts), timestamp() (the sample's own time), subqueries (their inner steps are
// aligned on their own), top-level range selectors, ranges or steps that are no multiple of a tier,
// and series with a sample on an edge (found by one index probe per series and edge) or a NaN.
//
// A late sample, written after its bucket was materialized, reaches the tier at the next refresh of
// the rollups (a minute or so, see Storage jobs in the README); until then a tier's answer lacks it.

// tier is a rollup tier the storage may read, in milliseconds.
type tier struct {
	name  string
	width int64
}

// tiers are the rollup tiers, coarsest first: the coarsest that fits is read.
var tiers = []tier{{"1d", 24 * 3600 * 1000}, {"1h", 3600 * 1000}, {"5m", 5 * 60 * 1000}}

// Bucket values the engine's functions are given.
const (
	useMax = iota
	useMin
	useSum
	useLast
)

// overTimeFromBuckets are the functions over a range that a tier answers, with the bucket value each takes.
var overTimeFromBuckets = map[string]int{
	"max_over_time":     useMax,
	"min_over_time":     useMin,
	"sum_over_time":     useSum,
	"last_over_time":    useLast,
	"present_over_time": useLast,
}

// readPlan is how the storage reads one selector: raw samples of [Start, End], or a tier's buckets.
type readPlan struct {
	tier *tier // nil: raw
	// use is the bucket value handed to the engine.
	use int
	// first and last are the first and last evaluation times, step their distance (0: one time).
	first, last, step int64
	// window is the selector's range, or the lookback of an instant selector.
	window int64
}

// maxEdges bounds the edge probes of a tier read; a query with more evaluation times reads raw.
const maxEdges = 2 * 11_000

// planRead decides how to read a selector from the engine's hints. tiersAllowed is false when the
// query has a subquery (whose inner evaluation times the hints do not say) or rollups are off.
func planRead(h *storage.SelectHints, lookback time.Duration, tiersAllowed bool) readPlan {
	raw := readPlan{}
	if !tiersAllowed || h == nil || h.Step < 0 || h.End < h.Start {
		return raw
	}
	var window int64
	var use int
	if h.Range > 0 {
		u, ok := overTimeFromBuckets[h.Func]
		if !ok {
			return raw
		}
		window, use = h.Range, u
	} else {
		if h.Func == "timestamp" || h.Func == "series" {
			return raw
		}
		window, use = lookback.Milliseconds(), useLast
	}
	// The engine asks for (t - window, t] from the first evaluation time t on: Start is t - window + 1.
	first := h.Start + window - 1
	if first > h.End {
		return raw
	}
	last := h.End
	if h.Step > 0 {
		last = first + (h.End-first)/h.Step*h.Step
		if (last-first)/h.Step+1 > maxEdges/2 {
			return raw
		}
	}
	for i := range tiers {
		t := &tiers[i]
		if window%t.width != 0 || mod(first, t.width) != 0 || h.Step%t.width != 0 {
			continue
		}
		if h.Range == 0 && window != t.width {
			continue // an instant selector sees one bucket: the lookback must be its width
		}
		return readPlan{tier: t, use: use, first: first, last: last, step: h.Step, window: window}
	}
	return raw
}

// evalTimes calls fn with every evaluation time of the plan.
func (p readPlan) evalTimes(fn func(t int64)) {
	if p.step == 0 {
		fn(p.first)
		return
	}
	for t := p.first; t <= p.last; t += p.step {
		fn(t)
	}
}

// edges are the times a raw sample must not lie at for the tier's answer to be the raw one: every
// evaluation time t and t - window, each once, in order.
func (p readPlan) edges() []int64 {
	var out []int64
	seen := map[int64]bool{}
	add := func(t int64) {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	p.evalTimes(func(t int64) { add(t - p.window); add(t) })
	return out
}

// bucketRange is [from, to) of the bucket starts the plan reads: those inside some window.
func (p readPlan) bucketRange() (from, to int64) { return p.first - p.window, p.last }

func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// tiersAllowedFor tells whether the storage may answer expr's selectors from tiers: not when it holds a
// subquery (see above).
func tiersAllowedFor(expr parser.Expr) bool {
	allowed := true
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		if _, ok := n.(*parser.SubqueryExpr); ok {
			allowed = false
		}
		return nil
	})
	return allowed
}

// bucketSamples turns a series' buckets (sorted by start) into the samples the engine is handed: one
// at b+w-1 per bucket, valued as the plan's function needs. ok is false when a bucket holds a NaN:
// the series is then read raw.
func bucketSamples(p readPlan, starts []int64, mins, maxes, sums, lasts []float64) (points, bool) {
	ps := make(points, len(starts))
	for i, b := range starts {
		if math.IsNaN(sums[i]) || math.IsNaN(lasts[i]) || math.IsNaN(maxes[i]) || math.IsNaN(mins[i]) {
			return nil, false
		}
		ps[i].t = b + p.tier.width - 1
		switch p.use {
		case useMax:
			ps[i].f = maxes[i]
		case useMin:
			ps[i].f = mins[i]
		case useSum:
			ps[i].f = sums[i]
		default:
			ps[i].f = lasts[i]
		}
	}
	return ps, true
}
