// Package query plans and runs the dashboard queries: ranges of time series at the step that fits
// (raw samples or a rollup tier), the newest sample of series, the series a tenant has, and the tenant
// at a glance. It reads only as a tenant, through the tenant runner (app tables under row-level
// security, api views over the time series), and bounds every request in series, points and time range
// (Limits); the runner bounds its database time.
//
// Refusals are typed — *LimitError, *InvalidError, ErrTimeout — and know nothing of HTTP: whoever serves
// the planner (the REST API, the live stream, reports to come) maps them to its own answers.
//
// A range answers whole buckets from the rollup tier whose step it names (api.samples_5m, _1h, _1d), or
// the raw samples for step raw. The tiers are real-time views, complete up to now, so the planner never
// has to stitch raw data onto a rollup itself.
package query

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// ErrTimeout: a statement of the query ran past the statement timeout. The request is too expensive as
// asked, and repeating it unchanged would cost the database the same time again.
var ErrTimeout = errors.New("query timed out")

// Planner runs the dashboard queries of any tenant, within its limits.
type Planner struct {
	tenants *db.TenantRunner
	limits  Limits
	now     func() time.Time
}

// New returns a planner that reads through tenants. Zero fields of limits take DefaultLimits'.
func New(tenants *db.TenantRunner, limits Limits) *Planner {
	return &Planner{tenants: tenants, limits: limits.withDefaults(), now: time.Now}
}

// Selector picks series by name (Metric, exact) or id, narrowed by host name and labels; every filter
// given must match. Metric or IDs is required. Ids that are not the tenant's series match nothing,
// exactly like ids that do not exist.
type Selector struct {
	Metric string
	IDs    []int64
	Host   string
	Labels map[string]string
}

// RangeRequest asks for the points of the selected series in [From, To). Step is auto, raw, 5m, 1h or
// 1d; Agg (for the rollup steps) avg, min, max, last, sum or count.
type RangeRequest struct {
	Selector Selector
	From, To time.Time
	Step     string
	Agg      string
}

// SeriesFilter picks a page of series: by exact Name or NamePrefix, host name and labels (each optional),
// the first Limit with an id above AfterID.
type SeriesFilter struct {
	Name, NamePrefix, Host string
	Labels                 map[string]string
	AfterID                int64
	Limit                  int32
}

// Sample is the newest sample of one series.
type Sample struct {
	SeriesID int64
	Time     time.Time
	Value    float64
}

// ValidateRange returns every parameter of r the planner refuses, as *InvalidError and *LimitError, in
// the order of the parameters; none when Range may run it. A zero From or To is taken as a time the
// caller could not read and has refused already: it is checked no further.
func (p *Planner) ValidateRange(r RangeRequest) []error { return p.limits.validateRange(r) }

// ValidateSelector returns every parameter of a Latest selector the planner refuses, as ValidateRange.
func (p *Planner) ValidateSelector(s Selector) []error { return p.limits.validateSelector(s) }

// read runs fn as the tenant, each statement in a read-only transaction of its own with the planner's
// StatementOptions. A statement past the statement timeout fails with ErrTimeout.
func (p *Planner) read(ctx context.Context, tenantID uuid.UUID, fn func(q *dbsqlc.Queries) error) error {
	err := p.tenants.WithTenantReadOnly(ctx, tenantID, StatementOptions(), fn)
	if errors.Is(err, db.ErrTimeout) {
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return err
}

// labelsJSON is the JSON object a containment match on labels takes; none matches every series.
func labelsJSON(labels map[string]string) []byte {
	if labels == nil {
		labels = map[string]string{}
	}
	b, _ := json.Marshal(labels) // a map of strings always encodes
	return b
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// matchSeries resolves the selector to the tenant's series, refusing more than MaxSeries.
func (p *Planner) matchSeries(ctx context.Context, q *dbsqlc.Queries, s Selector) ([]Series, error) {
	ids := s.IDs
	if ids == nil {
		ids = []int64{}
	}
	rows, err := q.SeriesMatch(ctx, dbsqlc.SeriesMatchParams{Ids: ids, Name: optional(s.Metric), Host: optional(s.Host),
		Labels: labelsJSON(s.Labels), MaxRows: int32(p.limits.MaxSeries)})
	if err != nil {
		return nil, fmt.Errorf("match series: %w", err)
	}
	if len(rows) > 0 && rows[0].Matched > int64(p.limits.MaxSeries) {
		param := "metric"
		if s.Metric == "" {
			param = "series"
		}
		return nil, limitErr(param, "matches %d series; the limit is %d, narrow with host= or label.KEY=VALUE",
			rows[0].Matched, p.limits.MaxSeries)
	}
	out := make([]Series, len(rows))
	for i, r := range rows {
		out[i] = Series{ID: r.ID, Name: r.Name, Host: r.Host, Labels: r.Labels}
	}
	return out, nil
}

// Range answers the points of the selected series of the tenant in [r.From, r.To), at the step asked
// for or, for auto, the finest that fits the limits.
func (p *Planner) Range(ctx context.Context, tenantID uuid.UUID, r RangeRequest) (RangeResult, error) {
	if r.From.IsZero() || r.To.IsZero() {
		return RangeResult{}, &InvalidError{Param: "from", Msg: "from and to are required"}
	}
	if errs := p.ValidateRange(r); len(errs) > 0 {
		return RangeResult{}, errs[0]
	}
	res := RangeResult{From: r.From.UnixMilli(), To: r.To.UnixMilli()}
	err := p.read(ctx, tenantID, func(q *dbsqlc.Queries) error {
		series, err := p.matchSeries(ctx, q, r.Selector)
		if err != nil {
			return err
		}
		st, err := p.limits.planStep(r.Step, r.From, r.To, len(series))
		if err != nil {
			return err
		}
		ids := make([]int64, len(series))
		res.Series = make([]RangeSeries, len(series))
		index := make(map[int64]int, len(series))
		for i, sr := range series {
			ids[i], index[sr.ID] = sr.ID, i
			res.Series[i] = RangeSeries{Series: sr, Points: Points{}}
		}
		if st == stepRaw {
			fitted, err := p.rawPoints(ctx, q, ids, index, r, res.Series)
			if err != nil || fitted {
				res.Step = "raw"
				return err
			}
			// Auto, and a series holds more samples than the limit: answer the finest tier that fits.
			t := p.limits.finestTier(nil, r.From, r.To, len(series))
			if t == nil {
				return p.limits.rangeTooLong(r.From, r.To, len(series))
			}
			st = *t
			for i := range res.Series {
				res.Series[i].Points = Points{}
			}
		}
		res.Step = st.name
		err = tierRange(ctx, q, st, dbsqlc.Samples5mRangeParams{Agg: r.Agg, SeriesIds: ids,
			FromBucket: bucketStart(r.From, st.width), ToTime: r.To}, func(id int64, buckets []time.Time, values []float64) {
			res.Series[index[id]].Points = tierPoints(buckets, values)
		})
		if err != nil {
			return fmt.Errorf("read %s rollup: %w", st.name, err)
		}
		return nil
	})
	return res, err
}

// tierRange reads the buckets of one rollup tier and hands each series' buckets and values to add. The
// three tiers' queries differ only in the view they read, so their parameters convert into one another.
func tierRange(ctx context.Context, q *dbsqlc.Queries, t step, p dbsqlc.Samples5mRangeParams,
	add func(id int64, buckets []time.Time, values []float64)) error {
	switch t.name {
	case "5m":
		rows, err := q.Samples5mRange(ctx, p)
		for _, r := range rows {
			add(r.SeriesID, r.Buckets, r.Values)
		}
		return err
	case "1h":
		rows, err := q.Samples1hRange(ctx, dbsqlc.Samples1hRangeParams(p))
		for _, r := range rows {
			add(r.SeriesID, r.Buckets, r.Values)
		}
		return err
	case "1d":
		rows, err := q.Samples1dRange(ctx, dbsqlc.Samples1dRangeParams(p))
		for _, r := range rows {
			add(r.SeriesID, r.Buckets, r.Values)
		}
		return err
	}
	return fmt.Errorf("no rollup tier %q", t.name)
}

// tierPoints pairs a series' bucket starts with their values, oldest first. A tier's query leaves the
// order to the plan, which reads the rollup chunk by chunk, each in time order but the chunks in any
// order: the buckets come as a few ascending runs over disjoint time ranges, and the runs are copied
// out in order where sorting 14,400 points would cost a millisecond. Runs that overlap, which that
// plan never yields, are sorted.
func tierPoints(buckets []time.Time, values []float64) Points {
	n := min(len(buckets), len(values))
	type run struct{ start, end int }
	var runs []run
	for i := 1; i <= n; i++ {
		if i == n || !buckets[i].After(buckets[i-1]) {
			start := 0
			if len(runs) > 0 {
				start = runs[len(runs)-1].end
			}
			runs = append(runs, run{start, i})
		}
	}
	slices.SortFunc(runs, func(a, b run) int { return buckets[a.start].Compare(buckets[b.start]) })
	overlap := false
	for k := 1; k < len(runs); k++ {
		overlap = overlap || !buckets[runs[k].start].After(buckets[runs[k-1].end-1])
	}
	ps := make(Points, 0, n)
	for _, r := range runs {
		for i := r.start; i < r.end; i++ {
			ps = append(ps, Point{Time: buckets[i].UnixMilli(), Value: values[i]})
		}
	}
	if overlap {
		slices.SortFunc(ps, func(a, b Point) int { return cmp.Compare(a.Time, b.Time) })
	}
	return ps
}

// rawPoints fills out with the raw samples of [from, to). It reports false, having filled nothing, when a
// series or the answer holds more samples than the limits and the step was auto (the caller then falls
// back to a tier); for an explicit step raw that is a *LimitError naming step.
func (p *Planner) rawPoints(ctx context.Context, q *dbsqlc.Queries, ids []int64, index map[int64]int, r RangeRequest,
	out []RangeSeries) (bool, error) {
	l := p.limits
	rows, err := q.SamplesRange(ctx, dbsqlc.SamplesRangeParams{SeriesIds: ids, FromTime: r.From, ToTime: r.To,
		MaxPoints: int32(l.MaxPointsPerSeries + 1)})
	if err != nil {
		return false, fmt.Errorf("read samples: %w", err)
	}
	perSeries := make([]int, len(out))
	for _, s := range rows {
		perSeries[index[s.SeriesID]]++
	}
	over := -1
	for i, n := range perSeries {
		if n > l.MaxPointsPerSeries {
			over = i
			break
		}
	}
	if over >= 0 || len(rows) > l.MaxPoints {
		if r.Step == "auto" {
			return false, nil
		}
		suggest := "5m"
		if t := l.finestTier(nil, r.From, r.To, len(ids)); t != nil {
			suggest = t.name
		}
		if over >= 0 {
			return false, limitErr("step", "series %d has more than %d samples in this range; use step=%s or coarser, or step=auto",
				out[over].ID, l.MaxPointsPerSeries, suggest)
		}
		return false, limitErr("step", "the series hold more than %d samples in all in this range; use step=%s or coarser, or step=auto",
			l.MaxPoints, suggest)
	}
	for _, s := range rows {
		sr := &out[index[s.SeriesID]]
		sr.Points = append(sr.Points, Point{Time: s.Time.UnixMilli(), Value: s.Value})
	}
	return true, nil
}

// Latest answers the newest sample of each selected series of the tenant within LatestLookback;
// silent series are left out.
func (p *Planner) Latest(ctx context.Context, tenantID uuid.UUID, sel Selector) ([]LatestSeries, error) {
	if errs := p.ValidateSelector(sel); len(errs) > 0 {
		return nil, errs[0]
	}
	out := []LatestSeries{}
	err := p.read(ctx, tenantID, func(q *dbsqlc.Queries) error {
		series, err := p.matchSeries(ctx, q, sel)
		if err != nil {
			return err
		}
		ids := make([]int64, len(series))
		byID := make(map[int64]Series, len(series))
		for i, sr := range series {
			ids[i], byID[sr.ID] = sr.ID, sr
		}
		samples, err := newestSamples(ctx, q, ids, p.now().Add(-p.limits.LatestLookback))
		for _, s := range samples {
			out = append(out, LatestSeries{Series: byID[s.SeriesID], Time: s.Time.UnixMilli(), Value: Value(s.Value)})
		}
		return err
	})
	return out, err
}

// NewestSamples answers the newest sample at or after since of each of the tenant's series ids, by id;
// series with none, and ids that are not the tenant's, are left out. The live stream sends these.
func (p *Planner) NewestSamples(ctx context.Context, tenantID uuid.UUID, ids []int64, since time.Time) ([]Sample, error) {
	var out []Sample
	err := p.read(ctx, tenantID, func(q *dbsqlc.Queries) (err error) {
		out, err = newestSamples(ctx, q, ids, since)
		return err
	})
	return out, err
}

func newestSamples(ctx context.Context, q *dbsqlc.Queries, ids []int64, since time.Time) ([]Sample, error) {
	rows, err := q.SamplesLatest(ctx, dbsqlc.SamplesLatestParams{SeriesIds: ids, Since: since})
	if err != nil {
		return nil, fmt.Errorf("read latest samples: %w", err)
	}
	out := make([]Sample, len(rows))
	for i, r := range rows {
		out[i] = Sample{SeriesID: r.SeriesID, Time: r.Time, Value: r.Value}
	}
	return out, nil
}

// Series answers one page of the tenant's series that pass f, by id.
func (p *Planner) Series(ctx context.Context, tenantID uuid.UUID, f SeriesFilter) ([]Series, error) {
	items := []Series{}
	err := p.read(ctx, tenantID, func(q *dbsqlc.Queries) error {
		rows, err := q.SeriesSearch(ctx, dbsqlc.SeriesSearchParams{AfterID: f.AfterID, Name: optional(f.Name),
			NamePrefix: optional(f.NamePrefix), Host: optional(f.Host), Labels: labelsJSON(f.Labels), MaxRows: f.Limit})
		for _, r := range rows {
			items = append(items, Series{ID: r.ID, Name: r.Name, Host: r.Host, Labels: r.Labels})
		}
		if err != nil {
			return fmt.Errorf("search series: %w", err)
		}
		return nil
	})
	return items, err
}

// Overview counts the tenant's hosts (and those reporting within ReportingWindow), checks by status and
// series.
func (p *Planner) Overview(ctx context.Context, tenantID uuid.UUID) (Overview, error) {
	var o Overview
	err := p.read(ctx, tenantID, func(q *dbsqlc.Queries) error {
		r, err := q.TenantOverview(ctx, p.now().Add(-p.limits.ReportingWindow))
		if err != nil {
			return fmt.Errorf("read overview: %w", err)
		}
		o = Overview{Hosts: OverviewHosts{Total: r.HostsTotal, Reporting: r.HostsReporting},
			Checks: OverviewChecks{Total: r.ChecksTotal, Up: r.ChecksUp, Down: r.ChecksDown, Unknown: r.ChecksUnknown,
				Disabled: r.ChecksDisabled},
			Series: r.Series}
		return nil
	})
	return o, err
}
