package ingest

// Delta series (Series.Delta, OTLP's delta sums and histograms) are stored as running totals, so that
// they read like the cumulative counters of every other protocol:
//
//   - the stored value at time t is the series' newest stored value before t plus the delta at t (0 plus
//     the delta for the first point a series ever gets);
//   - a delta point at or before the series' newest stored time is a retry when a sample is stored at
//     exactly its time (it is counted as accepted and stores nothing, like any retry), and otherwise comes
//     too late to be added (refused: the totals after it are stored already);
//   - a delta that is not a finite number is refused: it would spoil every total after it.
//
// Within a process, writes of one series are serialized from reading its newest value to committing the
// new ones, so concurrent pushes sum exactly. Across processes nothing orders them: two ingest replicas
// that take deltas of one series at the same moment may both add to the same previous total, and one
// delta is then missing from the totals. Send a source's deltas to one replica (most do: an SDK exports
// from one process, one request at a time), or export cumulative temporality, the SDKs' default.

import (
	"context"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// deltaStripes serialize delta writes per series within the process: a series takes the stripe of its id.
const deltaStripes = 256

var deltaSeed = maphash.MakeSeed()

type deltaLocks [deltaStripes]sync.Mutex

// lock takes the stripes of ids in order (so two pushes never wait on each other crosswise) and returns
// what releases them.
func (l *deltaLocks) lock(ids []int64) func() {
	stripes := make([]int, 0, len(ids))
	for _, id := range ids {
		stripes = append(stripes, int(maphash.Comparable(deltaSeed, id)%deltaStripes))
	}
	slices.Sort(stripes)
	stripes = slices.Compact(stripes)
	for _, s := range stripes {
		l[s].Lock()
	}
	return func() {
		for _, s := range stripes {
			l[s].Unlock()
		}
	}
}

// accumulate turns the samples of the delta series among keep into running totals, refusing those that
// cannot be added, and returns what must be called once the samples are committed (or not): until then
// the series stay locked in this process.
func (s *Service) accumulate(ctx context.Context, tenant uuid.UUID, keep []validSeries, ids []int64, res *Result) (func(), error) {
	var deltaIDs []int64
	for i, v := range keep {
		if v.series.Delta && ids[i] != 0 && len(v.samples) > 0 {
			deltaIDs = append(deltaIDs, ids[i])
		}
	}
	if len(deltaIDs) == 0 {
		return func() {}, nil
	}
	slices.Sort(deltaIDs)
	deltaIDs = slices.Compact(deltaIDs)
	unlock := s.deltas.lock(deltaIDs)
	q := dbsqlc.New(s.pool)
	latest, err := q.SamplesLatestStored(ctx, dbsqlc.SamplesLatestStoredParams{TenantID: tenant, SeriesIds: deltaIDs})
	if err != nil {
		unlock()
		return nil, s.classify(fmt.Errorf("read the running totals of delta series: %w", err))
	}
	type total struct {
		time  int64
		value float64
	}
	totals := make(map[int64]total, len(latest))
	for _, l := range latest {
		totals[l.SeriesID] = total{l.Time.UnixMilli(), l.Value}
	}
	// Points at or before a series' newest stored time: retries when a sample is there already.
	var lateIDs []int64
	var lateTimes []time.Time
	for i, v := range keep {
		if !v.series.Delta || ids[i] == 0 {
			continue
		}
		t, ok := totals[ids[i]]
		if !ok {
			continue
		}
		for _, p := range v.samples {
			if p.TimeMs <= t.time {
				lateIDs = append(lateIDs, ids[i])
				lateTimes = append(lateTimes, time.UnixMilli(p.TimeMs))
			}
		}
	}
	stored := map[[2]int64]bool{}
	if len(lateIDs) > 0 {
		rows, err := q.SamplesStoredAt(ctx, dbsqlc.SamplesStoredAtParams{TenantID: tenant, SeriesIds: lateIDs, Times: lateTimes})
		if err != nil {
			unlock()
			return nil, s.classify(fmt.Errorf("look for retried delta points: %w", err))
		}
		for _, r := range rows {
			stored[[2]int64{r.SeriesID, r.Time.UnixMilli()}] = true
		}
	}
	for i := range keep {
		v := &keep[i]
		if !v.series.Delta || ids[i] == 0 || len(v.samples) == 0 {
			continue
		}
		t, known := totals[ids[i]]
		if !known {
			t.time = math.MinInt64
		}
		slices.SortFunc(v.samples, func(a, b Sample) int { return int(min(max(a.TimeMs-b.TimeMs, -1), 1)) })
		out := v.samples[:0]
		for _, p := range v.samples {
			switch {
			case math.IsNaN(p.Value) || math.IsInf(p.Value, 0):
				s.reject(res, v.index, sampleIndex(v.series, p.TimeMs), "delta_invalid",
					"the delta at %d is not a finite number and cannot be added to the running total", p.TimeMs)
				continue
			case p.TimeMs > t.time:
				t = total{p.TimeMs, t.value + p.Value}
				out = append(out, Sample{TimeMs: p.TimeMs, Value: t.value})
			case stored[[2]int64{ids[i], p.TimeMs}]:
				out = append(out, p) // a retry: the stored total stays (the writer skips what is stored)
			default:
				s.reject(res, v.index, sampleIndex(v.series, p.TimeMs), "delta_late",
					"the delta at %d is older than the series' newest stored point; the totals after it are stored already", p.TimeMs)
			}
		}
		v.samples = out
		totals[ids[i]] = t
	}
	return unlock, nil
}

// sampleIndex is the index in the push of the sample of series at ms: validation left one at most.
func sampleIndex(sr *Series, ms int64) int {
	for j, p := range sr.Samples {
		if p.TimeMs == ms {
			return j
		}
	}
	return -1
}
