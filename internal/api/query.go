package api

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// The dashboard query API: GET /api/v1/query/range, /query/latest, /series and /overview. It reads only
// through the tenant runner, app tables under row-level security and the api views over time series,
// and bounds every request in series, points and time range (QueryLimits); the tenant runner bounds its
// database time (statement timeout) and the heavy-read gate how many run at once.
//
// A range query answers whole buckets from the rollup tier whose step it names (api.samples_5m, _1h,
// _1d), or the raw samples for step raw. The tiers are real-time views, complete up to now, so the
// handler never has to stitch raw data onto a rollup itself.

// QueryLimits bounds the dashboard query API. A zero or negative field takes its DefaultQueryLimits value.
type QueryLimits struct {
	// MaxSeries is how many series one query may match; more answers 400 naming the filter to narrow.
	MaxSeries int
	// MaxPointsPerSeries bounds the points of each series in a range answer. step=auto picks the finest
	// step that stays within it; an explicit step that does not answers 400 naming step.
	MaxPointsPerSeries int
	// MaxPoints bounds the points of one range answer over all its series.
	MaxPoints int
	// MaxRange is the widest from–to range a range query may span.
	MaxRange time.Duration
	// RawAutoRange is the widest range for which step=auto answers raw samples. The default, 2 hours,
	// assumes series sampled no more often than every 7.2 s (the agent's default is every 10 s: 720
	// points in 2 hours). A series with more samples than MaxPointsPerSeries in the range makes auto
	// fall back to the 5m tier, so the assumption only decides the tier, never the size of the answer.
	RawAutoRange time.Duration
	// LatestLookback is how far back /query/latest looks for a series' last sample; a series silent
	// for longer is left out of the answer.
	LatestLookback time.Duration
	// ReportingWindow is how recent a host's newest sample must be for /overview to count it as reporting.
	ReportingWindow time.Duration
}

// DefaultQueryLimits keep a dashboard answer under a few megabytes and a few seconds of database time.
var DefaultQueryLimits = QueryLimits{
	MaxSeries:          100,
	MaxPointsPerSeries: 1000,
	MaxPoints:          100_000,
	MaxRange:           5 * 8766 * time.Hour, // 5 years of 365.25 days
	RawAutoRange:       2 * time.Hour,
	LatestLookback:     24 * time.Hour,
	ReportingWindow:    10 * time.Minute,
}

func (l QueryLimits) withDefaults() QueryLimits {
	d := DefaultQueryLimits
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

// Series is a metric series as the query API shows it. Host is the name of the host it was pushed for
// (null when none, or when that host was deleted).
type Series struct {
	ID     int64             `json:"id"`
	Name   string            `json:"name"`
	Host   *string           `json:"host"`
	Labels map[string]string `json:"labels"`
}

// RangeSeries is one series of a range answer with its points, oldest first.
type RangeSeries struct {
	Series
	Points Points `json:"points"`
}

// RangeResult is the answer of GET /api/v1/query/range. From and To are the range asked for, in
// milliseconds since the epoch; Step is the step answered (never auto).
type RangeResult struct {
	Step   string        `json:"step"`
	From   int64         `json:"from"`
	To     int64         `json:"to"`
	Series []RangeSeries `json:"series"`
}

// LatestSeries is one series of a latest answer with its newest sample.
type LatestSeries struct {
	Series
	Time  int64 `json:"time"`
	Value Value `json:"value"`
}

// Point is one sample or bucket: its time in milliseconds since the epoch and its value.
type Point struct {
	Time  int64
	Value float64
}

// Points encode as [[ms, value], …], written directly: a range answer holds up to MaxPoints of them.
type Points []Point

// MarshalJSON writes the points as pairs; values JSON cannot carry are null (see Value).
func (ps Points) MarshalJSON() ([]byte, error) { return ps.append(make([]byte, 0, 2+len(ps)*40)), nil }

func (ps Points) append(b []byte) []byte {
	b = append(b, '[')
	for i, p := range ps {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = strconv.AppendInt(b, p.Time, 10)
		b = append(b, ',')
		b = Value(p.Value).append(b)
		b = append(b, ']')
	}
	return append(b, ']')
}

// MarshalJSON writes the answer with its points appended directly. encoding/json would re-scan what
// Points.MarshalJSON returns to validate it, which costs as much again as writing it for a full answer.
func (r RangeResult) MarshalJSON() ([]byte, error) {
	n := 0
	for _, s := range r.Series {
		n += len(s.Points)
	}
	b := make([]byte, 0, 64+len(r.Series)*128+n*40)
	b = append(b, `{"step":`...)
	b = strconv.AppendQuote(b, r.Step) // one of raw, 5m, 1h, 1d: no character that JSON and Go quote apart
	b = append(b, `,"from":`...)
	b = strconv.AppendInt(b, r.From, 10)
	b = append(b, `,"to":`...)
	b = strconv.AppendInt(b, r.To, 10)
	b = append(b, `,"series":[`...)
	for i, s := range r.Series {
		if i > 0 {
			b = append(b, ',')
		}
		meta, err := json.Marshal(s.Series)
		if err != nil {
			return nil, err
		}
		b = append(b, meta[:len(meta)-1]...) // without its closing brace
		b = append(b, `,"points":`...)
		b = s.Points.append(b)
		b = append(b, '}')
	}
	return append(b, "]}"...), nil
}

// Value is a sample value. NaN and ±Inf, which Prometheus remote write may store (its stale markers are
// NaNs), encode as null.
type Value float64

// MarshalJSON writes the value as a JSON number, or null.
func (v Value) MarshalJSON() ([]byte, error) { return v.append(nil), nil }

func (v Value) append(b []byte) []byte {
	f := float64(v)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

// Overview is the answer of GET /api/v1/overview.
type Overview struct {
	Hosts  OverviewHosts  `json:"hosts"`
	Checks OverviewChecks `json:"checks"`
	Series int64          `json:"series"`
}

// OverviewHosts counts the tenant's hosts; Reporting those with a sample in the reporting window.
type OverviewHosts struct {
	Total     int64 `json:"total"`
	Reporting int64 `json:"reporting"`
}

// OverviewChecks counts the tenant's checks by status. Up, Down and Unknown (not run yet) count enabled
// checks only, Disabled the others, so the four add up to Total.
type OverviewChecks struct {
	Total    int64 `json:"total"`
	Up       int64 `json:"up"`
	Down     int64 `json:"down"`
	Unknown  int64 `json:"unknown"`
	Disabled int64 `json:"disabled"`
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

// queryProblem is a 400 that names the one parameter to change.
func queryProblem(field, format string, args ...any) error {
	var fe fieldErrors
	fe.add(field, format, args...)
	return &problemError{status: http.StatusBadRequest, title: "invalid request", detail: fe[0].Message, fields: fe}
}

// StatementOptions plan each statement of a query request for its own parameters (a cached generic
// plan cannot tell which rollup chunks and series a range touches, and reads a tier's whole time range
// of every series instead), without JIT (the planner cannot see a rollup's watermark, so it
// overestimates the real-time part of a tier, and the cost passes jit_above_cost: compiling then takes
// up to a second for a query that runs in milliseconds).
func (l QueryLimits) StatementOptions() db.StatementOptions {
	return db.StatementOptions{Settings: []db.Setting{{Name: "plan_cache_mode", Value: "force_custom_plan"}, {Name: "jit", Value: "off"}}}
}

// inQuery runs fn as the caller's tenant, each statement in a read-only transaction of its own with
// the StatementOptions of the query limits. When fn fails, the error is answered (a statement past the
// statement timeout: 422) and inQuery returns false.
func (s *server) inQuery(c *gin.Context, fn func(q *dbsqlc.Queries) error) bool {
	if err := s.tenants.WithTenantReadOnly(c.Request.Context(), principal(c).TenantID, s.query.StatementOptions(), fn); err != nil {
		s.answerError(c, err)
		return false
	}
	return true
}

// seriesSelector reads the filters of /query/range and /query/latest: metric (the series name), host,
// label.KEY=VALUE and series=ID (repeatable). Filters combine with AND; metric or series is required.
// Ids that are not the tenant's series match nothing, exactly like ids that do not exist.
func (s *server) seriesSelector(c *gin.Context, errs *fieldErrors) dbsqlc.SeriesMatchParams {
	p := dbsqlc.SeriesMatchParams{Ids: []int64{}, Labels: labelFilter(c), MaxRows: int32(s.query.MaxSeries)}
	if v := c.Query("metric"); v != "" {
		p.Name = &v
	}
	if v := c.Query("host"); v != "" {
		p.Host = &v
	}
	for _, v := range c.QueryArray("series") {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			errs.add("series", "%q is not a series id", v)
			continue
		}
		p.Ids = append(p.Ids, id)
	}
	if len(p.Ids) > s.query.MaxSeries {
		errs.add("series", "lists %d series; the limit is %d", len(p.Ids), s.query.MaxSeries)
	}
	if p.Name == nil && len(c.QueryArray("series")) == 0 {
		errs.add("metric", "is required, unless series=ID names the series")
	}
	return p
}

// matchSeries resolves the selector to the tenant's series, refusing more than MaxSeries.
func (s *server) matchSeries(c *gin.Context, q *dbsqlc.Queries, p dbsqlc.SeriesMatchParams) ([]Series, error) {
	rows, err := q.SeriesMatch(c.Request.Context(), p)
	if err != nil {
		return nil, fmt.Errorf("match series: %w", err)
	}
	if len(rows) > 0 && rows[0].Matched > int64(s.query.MaxSeries) {
		field := "metric"
		if p.Name == nil {
			field = "series"
		}
		return nil, queryProblem(field, "matches %d series; the limit is %d, narrow with host= or label.KEY=VALUE",
			rows[0].Matched, s.query.MaxSeries)
	}
	out := make([]Series, len(rows))
	for i, r := range rows {
		out[i] = Series{ID: r.ID, Name: r.Name, Host: r.Host, Labels: r.Labels}
	}
	return out, nil
}

// rangeRequest is a parsed /query/range request.
type rangeRequest struct {
	from, to  time.Time
	step, agg string
	selector  dbsqlc.SeriesMatchParams
}

func (s *server) parseRange(c *gin.Context) (rangeRequest, bool) {
	var errs fieldErrors
	r := rangeRequest{step: c.DefaultQuery("step", "auto"), agg: c.DefaultQuery("agg", "avg")}
	r.selector = s.seriesSelector(c, &errs)
	r.to = parseTime(c.Query("to"), time.Now(), "to", &errs)
	r.from = parseTime(c.Query("from"), r.to.Add(-time.Hour), "from", &errs)
	for _, f := range []struct {
		name string
		t    time.Time
	}{{"from", r.from}, {"to", r.to}} {
		if !f.t.IsZero() && (f.t.Before(earliestTime) || !f.t.Before(latestTime)) {
			errs.add(f.name, "must fall between 1970 and 2200")
		}
	}
	switch {
	case len(errs) > 0:
	case !r.from.Before(r.to):
		errs.add("from", "must be before to")
	case r.to.Sub(r.from) > s.query.MaxRange:
		errs.add("from", "the range spans %s; it may span at most %s", spanText(r.to.Sub(r.from)), spanText(s.query.MaxRange))
	}
	if r.step != "auto" && r.step != "raw" && tierByName(r.step) == nil {
		errs.add("step", "must be one of auto, raw, 5m, 1h, 1d")
	}
	if !slices.Contains(aggs, r.agg) {
		errs.add("agg", "must be one of %s", strings.Join(aggs, ", "))
	}
	if len(errs) > 0 {
		writeValidation(c, errs)
		return r, false
	}
	return r, true
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
func (l QueryLimits) fits(t step, from, to time.Time, n int) bool {
	b := buckets(from, to, t.width)
	return b <= l.MaxPointsPerSeries && b*n <= l.MaxPoints
}

// finestTier is the finest tier no finer than after (nil: any) that fits, or nil.
func (l QueryLimits) finestTier(after *step, from, to time.Time, n int) *step {
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
func (l QueryLimits) planStep(asked string, from, to time.Time, n int) (step, error) {
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
	if l.fits(*t, from, to, n) {
		return *t, nil
	}
	return step{}, l.tooManyPoints(*t, from, to, n)
}

func (l QueryLimits) rangeTooLong(from, to time.Time, n int) error {
	return queryProblem("from", "the range spans %s: even step=1d gives %d points per series (%d series); the limits are %d per series and %d per answer; narrow the range",
		spanText(to.Sub(from)), buckets(from, to, 24*time.Hour), n, l.MaxPointsPerSeries, l.MaxPoints)
}

func (l QueryLimits) tooManyPoints(t step, from, to time.Time, n int) error {
	b := buckets(from, to, t.width)
	coarser := l.finestTier(&t, from, to, n)
	if coarser == nil {
		return queryProblem("step", "step=%s gives %d points per series, %d in all; the limits are %d per series and %d per answer, and no coarser step fits: narrow the range",
			t.name, b, b*n, l.MaxPointsPerSeries, l.MaxPoints)
	}
	return queryProblem("step", "step=%s gives %d points per series, %d in all; the limits are %d per series and %d per answer; use step=%s or coarser, or step=auto",
		t.name, b, b*n, l.MaxPointsPerSeries, l.MaxPoints, coarser.name)
}

// queryRange is GET /api/v1/query/range.
func (s *server) queryRange(c *gin.Context) {
	r, ok := s.parseRange(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	res := RangeResult{From: r.from.UnixMilli(), To: r.to.UnixMilli()}
	if !s.inQuery(c, func(q *dbsqlc.Queries) error {
		series, err := s.matchSeries(c, q, r.selector)
		if err != nil {
			return err
		}
		st, err := s.query.planStep(r.step, r.from, r.to, len(series))
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
			fitted, err := s.rawPoints(c, q, ids, index, r, res.Series)
			if err != nil || fitted {
				res.Step = "raw"
				return err
			}
			// Auto, and a series holds more samples than the limit: answer the finest tier that fits.
			t := s.query.finestTier(nil, r.from, r.to, len(series))
			if t == nil {
				return s.query.rangeTooLong(r.from, r.to, len(series))
			}
			st = *t
			for i := range res.Series {
				res.Series[i].Points = Points{}
			}
		}
		res.Step = st.name
		err = tierRange(ctx, q, st, dbsqlc.Samples5mRangeParams{Agg: r.agg, SeriesIds: ids,
			FromBucket: bucketStart(r.from, st.width), ToTime: r.to}, func(id int64, buckets []time.Time, values []float64) {
			res.Series[index[id]].Points = tierPoints(buckets, values)
		})
		if err != nil {
			return fmt.Errorf("read %s rollup: %w", st.name, err)
		}
		return nil
	}) {
		return
	}
	body, err := res.MarshalJSON()
	if err != nil {
		s.internalError(c, err)
		return
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", body)
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
// back to a tier); for an explicit step=raw that is a 400 naming step.
func (s *server) rawPoints(c *gin.Context, q *dbsqlc.Queries, ids []int64, index map[int64]int, r rangeRequest,
	out []RangeSeries) (bool, error) {
	rows, err := q.SamplesRange(c.Request.Context(), dbsqlc.SamplesRangeParams{SeriesIds: ids, FromTime: r.from, ToTime: r.to,
		MaxPoints: int32(s.query.MaxPointsPerSeries + 1)})
	if err != nil {
		return false, fmt.Errorf("read samples: %w", err)
	}
	perSeries := make([]int, len(out))
	for _, p := range rows {
		perSeries[index[p.SeriesID]]++
	}
	over := -1
	for i, n := range perSeries {
		if n > s.query.MaxPointsPerSeries {
			over = i
			break
		}
	}
	if over >= 0 || len(rows) > s.query.MaxPoints {
		if r.step == "auto" {
			return false, nil
		}
		suggest := "5m"
		if t := s.query.finestTier(nil, r.from, r.to, len(ids)); t != nil {
			suggest = t.name
		}
		if over >= 0 {
			return false, queryProblem("step", "series %d has more than %d samples in this range; use step=%s or coarser, or step=auto",
				out[over].ID, s.query.MaxPointsPerSeries, suggest)
		}
		return false, queryProblem("step", "the series hold more than %d samples in all in this range; use step=%s or coarser, or step=auto",
			s.query.MaxPoints, suggest)
	}
	for _, p := range rows {
		sr := &out[index[p.SeriesID]]
		sr.Points = append(sr.Points, Point{Time: p.Time.UnixMilli(), Value: p.Value})
	}
	return true, nil
}

// queryLatest is GET /api/v1/query/latest: the newest sample of each matching series within
// LatestLookback; silent series are left out.
func (s *server) queryLatest(c *gin.Context) {
	var errs fieldErrors
	sel := s.seriesSelector(c, &errs)
	if len(errs) > 0 {
		writeValidation(c, errs)
		return
	}
	ctx := c.Request.Context()
	out := []LatestSeries{}
	if !s.inQuery(c, func(q *dbsqlc.Queries) error {
		series, err := s.matchSeries(c, q, sel)
		if err != nil {
			return err
		}
		ids := make([]int64, len(series))
		byID := make(map[int64]Series, len(series))
		for i, sr := range series {
			ids[i], byID[sr.ID] = sr.ID, sr
		}
		rows, err := q.SamplesLatest(ctx, dbsqlc.SamplesLatestParams{SeriesIds: ids, Since: time.Now().Add(-s.query.LatestLookback)})
		if err != nil {
			return fmt.Errorf("read latest samples: %w", err)
		}
		for _, r := range rows {
			out = append(out, LatestSeries{Series: byID[r.SeriesID], Time: r.Time.UnixMilli(), Value: Value(r.Value)})
		}
		return nil
	}) {
		return
	}
	c.JSON(http.StatusOK, gin.H{"series": out})
}

// listSeries is GET /api/v1/series: the tenant's series by name (exact, or name_prefix), host and labels,
// paged by id.
func (s *server) listSeries(c *gin.Context) {
	limit, cursor, ok := page(c)
	if !ok {
		return
	}
	after, _ := strconv.ParseInt(cursor, 10, 64)
	p := dbsqlc.SeriesSearchParams{AfterID: after, Labels: labelFilter(c), MaxRows: limit}
	if v := c.Query("name"); v != "" {
		p.Name = &v
	}
	if v := c.Query("name_prefix"); v != "" {
		p.NamePrefix = &v
	}
	if v := c.Query("host"); v != "" {
		p.Host = &v
	}
	items := []Series{}
	if !s.inQuery(c, func(q *dbsqlc.Queries) error {
		rows, err := q.SeriesSearch(c.Request.Context(), p)
		for _, r := range rows {
			items = append(items, Series{ID: r.ID, Name: r.Name, Host: r.Host, Labels: r.Labels})
		}
		return err
	}) {
		return
	}
	c.JSON(http.StatusOK, newPage(items, limit, func(s Series) string { return strconv.FormatInt(s.ID, 10) }))
}

// overview is GET /api/v1/overview.
func (s *server) overview(c *gin.Context) {
	var o Overview
	if !s.inQuery(c, func(q *dbsqlc.Queries) error {
		r, err := q.TenantOverview(c.Request.Context(), time.Now().Add(-s.query.ReportingWindow))
		o = Overview{Hosts: OverviewHosts{Total: r.HostsTotal, Reporting: r.HostsReporting},
			Checks: OverviewChecks{Total: r.ChecksTotal, Up: r.ChecksUp, Down: r.ChecksDown, Unknown: r.ChecksUnknown,
				Disabled: r.ChecksDisabled},
			Series: r.Series}
		return err
	}) {
		return
	}
	c.JSON(http.StatusOK, o)
}
