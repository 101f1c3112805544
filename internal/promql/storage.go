package promql

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/query"
)

// store is the storage the engine evaluates one query over: one tenant's series and samples, read
// through the tenant runner (row-level security and the api views do the filtering), each statement in
// a read-only transaction of its own. It is a storage.Queryable and its own storage.Querier.
type store struct {
	e        *Engine
	tenant   uuid.UUID
	tiers    bool // the query may be answered from rollup tiers (see tiers.go)
	lookback time.Duration
	// samples counts what the query has read so far, against MaxSamples.
	samples atomic.Int64
}

var (
	_ storage.Queryable = (*store)(nil)
	_ storage.Querier   = (*store)(nil)
)

// Querier is the store itself: every selector of the query reads with the hints the engine gives it.
func (s *store) Querier(_, _ int64) (storage.Querier, error) { return s, nil }

// Close releases nothing: every statement has ended when Select returns.
func (s *store) Close() error { return nil }

// LabelValues is not used by the engine's evaluation; the label endpoints read through Engine.
func (s *store) LabelValues(context.Context, string, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, errors.New("promql store: label values are read through the engine")
}

// LabelNames is not used by the engine's evaluation; the label endpoints read through Engine.
func (s *store) LabelNames(context.Context, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, errors.New("promql store: label names are read through the engine")
}

// Select reads the series of one selector and their samples for the hinted range: raw, or from a
// rollup tier where planRead finds that it gives the raw answer.
func (s *store) Select(ctx context.Context, _ bool, h *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	found, err := s.e.matchSeries(ctx, s.tenant, ms, nil, time.Time{})
	if err != nil {
		return storage.ErrSeriesSet(err)
	}
	set := &seriesSet{series: found, i: -1}
	if h == nil || h.Func == "series" || len(found) == 0 {
		return set
	}
	if err := s.readSamples(ctx, h, found); err != nil {
		return storage.ErrSeriesSet(err)
	}
	return set
}

// readSamples fills the samples of found for the hints.
func (s *store) readSamples(ctx context.Context, h *storage.SelectHints, found []*memSeries) error {
	from, to := clampMillis(h.Start), clampMillis(h.End)
	if to < from {
		return nil
	}
	plan := planRead(h, s.lookback, s.tiers)
	byID := make(map[int64]*memSeries, len(found))
	var ids []int64
	for _, sr := range found {
		for _, id := range sr.ids {
			byID[id] = sr
			ids = append(ids, id)
		}
	}
	rawIDs := ids
	if plan.tier != nil {
		var err error
		if rawIDs, err = s.readTier(ctx, plan, found, byID, ids); err != nil {
			return err
		}
	}
	if len(rawIDs) > 0 {
		if err := s.readRaw(ctx, from, to, rawIDs, byID); err != nil {
			return err
		}
	}
	for _, sr := range found {
		if len(sr.ids) > 1 {
			sr.mergeParts()
		}
	}
	return nil
}

// count adds n samples read to the query's tally and refuses the query past MaxSamples.
func (s *store) count(n int64) error {
	if total := s.samples.Add(n); total > int64(s.e.cfg.MaxSamples) {
		return &Error{Type: Execution, Err: fmt.Errorf("the query reads more than %d samples (it has read %d); "+
			"narrow the time range or the selectors (the limit is --promql-max-samples)", s.e.cfg.MaxSamples, total)}
	}
	return nil
}

// readRaw reads the raw samples of ids in [from, to] (milliseconds, both ends).
func (s *store) readRaw(ctx context.Context, from, to int64, ids []int64, byID map[int64]*memSeries) error {
	var rows []dbsqlc.SamplesPromRawRow
	err := s.e.read(ctx, s.tenant, func(q *dbsqlc.Queries) (err error) {
		rows, err = q.SamplesPromRaw(ctx, dbsqlc.SamplesPromRawParams{SeriesIds: ids, FromTime: time.UnixMilli(from),
			ToTime: time.UnixMilli(to)})
		return err
	})
	if err != nil {
		return storageErr("read samples", err)
	}
	s.e.reads.WithLabelValues("raw").Add(float64(len(ids)))
	var n int64
	for _, r := range rows {
		n += int64(len(r.Times))
	}
	if err := s.count(n); err != nil { // before the samples are converted: a query over the limit holds no more
		return err
	}
	for _, r := range rows {
		sr := byID[r.SeriesID]
		if sr == nil {
			continue
		}
		ps := make(points, min(len(r.Times), len(r.Values)))
		for i := range ps {
			ps[i] = point{r.Times[i].UnixMilli(), r.Values[i]}
		}
		sr.addPart(ps)
	}
	return nil
}

// readTier reads the plan's tier for ids and hands the engine one sample per bucket (bucketSamples). It
// answers the ids that must be read raw instead: series merged from several stored ones, series with
// a raw sample on an edge of a window, and series with a NaN in a bucket.
func (s *store) readTier(ctx context.Context, plan readPlan, found []*memSeries, byID map[int64]*memSeries, ids []int64) ([]int64, error) {
	raw := map[int64]bool{}
	var tierIDs []int64
	for _, sr := range found {
		for _, id := range sr.ids {
			if len(sr.ids) > 1 {
				raw[id] = true // whose last is newer is not in the buckets: read raw
			} else {
				tierIDs = append(tierIDs, id)
			}
		}
	}
	from, to := plan.bucketRange()
	edges := plan.edges()
	edgeTimes := make([]time.Time, len(edges))
	for i, t := range edges {
		edgeTimes[i] = time.UnixMilli(t)
	}
	var onEdge []int64
	buckets := map[int64]bucketRows{}
	err := s.e.read(ctx, s.tenant, func(q *dbsqlc.Queries) error {
		var err error
		if onEdge, err = q.SamplesPromAt(ctx, dbsqlc.SamplesPromAtParams{SeriesIds: tierIDs, Times: edgeTimes}); err != nil {
			return fmt.Errorf("probe the windows' edges: %w", err)
		}
		return tierBuckets(ctx, q, plan.tier.name, tierIDs, time.UnixMilli(from), time.UnixMilli(to), buckets)
	})
	if err != nil {
		return nil, storageErr("read the "+plan.tier.name+" rollup", err)
	}
	for _, id := range onEdge {
		raw[id] = true
	}
	var fromTier, n int
	for _, id := range tierIDs {
		if raw[id] {
			continue
		}
		b := buckets[id]
		b.sort()
		ps, ok := bucketSamples(plan, b.starts, b.mins, b.maxes, b.sums, b.lasts)
		if !ok {
			raw[id] = true
			continue
		}
		byID[id].addPart(ps)
		fromTier++
		n += len(ps)
	}
	if err := s.count(int64(n)); err != nil {
		return nil, err
	}
	s.e.reads.WithLabelValues(plan.tier.name).Add(float64(fromTier))
	out := make([]int64, 0, len(raw))
	for _, id := range ids {
		if raw[id] {
			out = append(out, id)
		}
	}
	return out, nil
}

// bucketRows are one series' buckets as a tier's statement answers them.
type bucketRows struct {
	starts                   []int64
	mins, maxes, sums, lasts []float64
}

// sort puts the buckets in time order: the statement leaves the order to the plan.
func (b *bucketRows) sort() {
	if slices.IsSorted(b.starts) {
		return
	}
	idx := make([]int, len(b.starts))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(i, j int) bool { return b.starts[idx[i]] < b.starts[idx[j]] })
	perm := func(v []float64) []float64 {
		out := make([]float64, len(idx))
		for i, k := range idx {
			out[i] = v[k]
		}
		return out
	}
	starts := make([]int64, len(idx))
	for i, k := range idx {
		starts[i] = b.starts[k]
	}
	b.starts, b.mins, b.maxes, b.sums, b.lasts = starts, perm(b.mins), perm(b.maxes), perm(b.sums), perm(b.lasts)
}

// tierBuckets reads the buckets of one tier that start in [from, to) into out, by series id. The three
// tiers' statements differ only in the view they read.
func tierBuckets(ctx context.Context, q *dbsqlc.Queries, name string, ids []int64, from, to time.Time, out map[int64]bucketRows) error {
	add := func(id int64, starts []time.Time, mins, maxes, sums, lasts []float64) {
		ms := make([]int64, len(starts))
		for i, t := range starts {
			ms[i] = t.UnixMilli()
		}
		out[id] = bucketRows{starts: ms, mins: mins, maxes: maxes, sums: sums, lasts: lasts}
	}
	p := dbsqlc.SamplesProm5mRangeParams{SeriesIds: ids, FromBucket: from, ToBucket: to}
	switch name {
	case "5m":
		rows, err := q.SamplesProm5mRange(ctx, p)
		for _, r := range rows {
			add(r.SeriesID, r.Buckets, r.Mins, r.Maxes, r.Sums, r.Lasts)
		}
		return err
	case "1h":
		rows, err := q.SamplesProm1hRange(ctx, dbsqlc.SamplesProm1hRangeParams(p))
		for _, r := range rows {
			add(r.SeriesID, r.Buckets, r.Mins, r.Maxes, r.Sums, r.Lasts)
		}
		return err
	case "1d":
		rows, err := q.SamplesProm1dRange(ctx, dbsqlc.SamplesProm1dRangeParams(p))
		for _, r := range rows {
			add(r.SeriesID, r.Buckets, r.Mins, r.Maxes, r.Sums, r.Lasts)
		}
		return err
	}
	return fmt.Errorf("no rollup tier %q", name)
}

// PostgreSQL's timestamps span 4713 BC to 294276 AD; PromQL's times go further. Reads are clamped to
// the years 1 to 9999, where no sample can lie anyway (ingest accepts 30 days back).
var (
	minReadMillis = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	maxReadMillis = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC).UnixMilli()
)

func clampMillis(t int64) int64 { return min(max(t, minReadMillis), maxReadMillis) }

// storageErr wraps a failed read: a statement past the statement timeout is a timeout, a database that
// is down is unavailable, anything else an internal error.
func storageErr(action string, err error) error {
	var pe *Error
	switch {
	case errors.As(err, &pe):
		return err
	case errors.Is(err, db.ErrTimeout), errors.Is(err, query.ErrTimeout):
		return &Error{Type: Timeout, Err: fmt.Errorf("%s: a database statement ran past the statement timeout: %w", action, err)}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &Error{Type: Canceled, Err: fmt.Errorf("%s: %w", action, err)}
	case db.IsUnavailable(err):
		return &Error{Type: Unavailable, Err: fmt.Errorf("%s: %w", action, err)}
	}
	return &Error{Type: Internal, Err: fmt.Errorf("%s: %w", action, err)}
}

// memSeries is one PromQL series of a selection: its labels, the stored series behind it (more than one
// when several names map to one PromQL name with the same labels, cpu.load and cpu_load) and, once
// read, its samples in time order.
type memSeries struct {
	labels labels.Labels
	ids    []int64
	points points
	parts  []points // the samples of each stored series, while more than one is read
}

// addPart takes the samples of one stored series of the selection (any order; equal times keep the
// first).
func (m *memSeries) addPart(ps points) {
	ps = ps.sorted()
	if len(m.ids) > 1 {
		m.parts = append(m.parts, ps)
		return
	}
	m.points = ps
}

// mergeParts merges the samples of the stored series behind m into one series; at a time more than
// one has, the first read is kept.
func (m *memSeries) mergeParts() {
	var n int
	for _, p := range m.parts {
		n += len(p)
	}
	all := make(points, 0, n)
	for _, p := range m.parts {
		all = append(all, p...)
	}
	m.points, m.parts = all.sorted(), nil
}

func (m *memSeries) Labels() labels.Labels { return m.labels }

// Iterator walks the samples with the storage package's list iterator, which the points feed without
// an allocation per sample (Get answers a pointer into them).
func (m *memSeries) Iterator(chunkenc.Iterator) chunkenc.Iterator {
	return storage.NewListSeriesIterator(m.points)
}

// point is one float sample: its time in milliseconds and its value.
type point struct {
	t int64
	f float64
}

var _ chunks.Sample = (*point)(nil)

func (p *point) T() int64                      { return p.t }
func (p *point) F() float64                    { return p.f }
func (p *point) ST() int64                     { return 0 } // start timestamps are not stored
func (p *point) H() *histogram.Histogram       { return nil }
func (p *point) FH() *histogram.FloatHistogram { return nil }
func (p *point) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (p *point) Copy() chunks.Sample           { c := *p; return &c }

// points are a series' samples.
type points []point

var _ storage.Samples = points(nil)

func (ps points) Get(i int) chunks.Sample { return &ps[i] }
func (ps points) Len() int                { return len(ps) }

// sorted puts the samples in time order (stably) and drops all but the first of equal times: a time
// stored with sub-millisecond precision (InfluxDB line protocol) can share its millisecond.
func (ps points) sorted() points {
	if !slices.IsSortedFunc(ps, func(a, b point) int { return cmp.Compare(a.t, b.t) }) {
		slices.SortStableFunc(ps, func(a, b point) int { return cmp.Compare(a.t, b.t) })
	}
	w := 0
	for i := range ps {
		if i > 0 && ps[i].t == ps[w-1].t {
			continue
		}
		ps[w] = ps[i]
		w++
	}
	return ps[:w]
}

// seriesSet hands the engine a selection, in label order.
type seriesSet struct {
	series []*memSeries
	i      int
}

func (s *seriesSet) Next() bool {
	s.i++
	return s.i < len(s.series)
}
func (s *seriesSet) At() storage.Series                { return s.series[s.i] }
func (s *seriesSet) Err() error                        { return nil }
func (s *seriesSet) Warnings() annotations.Annotations { return nil }
