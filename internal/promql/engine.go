package promql

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	prom "github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/query"
)

// ErrorType is the kind of a refusal or failure, named as the Prometheus HTTP API names it
// (errorType), which the API answers with its status: bad_data 400, execution 422, timeout 503,
// canceled (the client left), unavailable 503, internal 500.
type ErrorType string

const (
	BadData     ErrorType = "bad_data"
	Execution   ErrorType = "execution"
	Timeout     ErrorType = "timeout"
	Canceled    ErrorType = "canceled"
	Unavailable ErrorType = "unavailable"
	Internal    ErrorType = "internal"
)

// Error is every error the engine answers: its type and what went wrong, in words a PromQL user reads.
type Error struct {
	Type ErrorType
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func badData(format string, args ...any) error {
	return &Error{Type: BadData, Err: fmt.Errorf(format, args...)}
}

// MaxPointsPerSeries bounds the steps of a range query, as Prometheus does (11,000).
const MaxPointsPerSeries = 11_000

// maxScan bounds the stored series one selector may read before its matchers are applied in Go (those
// SQL cannot apply: most regular expressions). Above the default tenant limit of 150,000 series.
const maxScan = 200_000

// Engine evaluates PromQL for any tenant over infrawatch's storage with the upstream engine
// (github.com/prometheus/prometheus/promql), and answers the series and label listings of the
// Prometheus HTTP API.
type Engine struct {
	tenants *db.TenantRunner
	cfg     Config
	parser  parser.Parser
	engine  *prom.Engine
	// reads counts the series read per source: raw samples or a rollup tier.
	reads *prometheus.CounterVec
}

// New returns an engine that reads through tenants. Zero fields of cfg take DefaultConfig's (Rollups,
// a bool, is taken as given). reg, if not nil, collects the upstream engine's metrics and
// infrawatch_promql_series_read_total.
func New(tenants *db.TenantRunner, cfg Config, log *slog.Logger, reg prometheus.Registerer) *Engine {
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := parser.NewParser(parser.Options{})
	e := &Engine{tenants: tenants, cfg: cfg, parser: p,
		reads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "infrawatch_promql_series_read_total",
			Help: "Series read for PromQL selectors, by source: raw samples or a rollup tier (5m, 1h, 1d)."}, []string{"source"})}
	e.engine = prom.NewEngine(prom.EngineOpts{
		Logger:        log,
		Reg:           reg,
		MaxSamples:    cfg.MaxSamples,
		Timeout:       cfg.Timeout,
		LookbackDelta: cfg.LookbackDelta,
		// A subquery without a step evaluates every minute, Prometheus's default evaluation interval.
		NoStepSubqueryIntervalFn: func(int64) int64 { return time.Minute.Milliseconds() },
		EnableAtModifier:         true,
		EnableNegativeOffset:     true,
		Parser:                   p,
	})
	if reg != nil {
		reg.MustRegister(e.reads)
	}
	for _, source := range []string{"raw", "5m", "1h", "1d"} {
		e.reads.WithLabelValues(source)
	}
	return e
}

// SeriesRead is how many series this engine has read for selectors from source (raw, 5m, 1h, 1d).
func (e *Engine) SeriesRead(source string) float64 {
	var m dto.Metric
	if err := e.reads.WithLabelValues(source).Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}

// read runs fn as the tenant, each statement in a read-only transaction of its own with the dashboard
// queries' statement options (a plan for each statement's own parameters, no JIT).
func (e *Engine) read(ctx context.Context, tenant uuid.UUID, fn func(q *dbsqlc.Queries) error) error {
	return e.tenants.WithTenantReadOnly(ctx, tenant, query.StatementOptions(), fn)
}

// QueryOptions are a query's own settings; zero fields take the engine's.
type QueryOptions struct {
	// Timeout shortens the engine's timeout for this query (the timeout parameter); longer is ignored.
	Timeout time.Duration
	// Lookback replaces the engine's lookback for this query (the lookback_delta parameter).
	Lookback time.Duration
}

// Answer is the result of a query: the data object of the Prometheus HTTP API's answer, encoded
// ({"resultType":…,"result":…}), and the query's warnings and infos.
type Answer struct {
	Data     []byte
	Warnings []string
	Infos    []string
}

// maxAnnotations bounds the warnings and infos of one answer, as Prometheus does.
const maxAnnotations = 10

// Instant evaluates qs at ts for the tenant.
func (e *Engine) Instant(ctx context.Context, tenant uuid.UUID, qs string, ts time.Time, o QueryOptions) (*Answer, error) {
	return e.run(ctx, tenant, qs, o, func(ctx context.Context, st *store, opts prom.QueryOpts) (prom.Query, error) {
		return e.engine.NewInstantQuery(ctx, st, opts, qs, ts)
	})
}

// Range evaluates qs at start, start+step, … up to end for the tenant.
func (e *Engine) Range(ctx context.Context, tenant uuid.UUID, qs string, start, end time.Time, step time.Duration, o QueryOptions) (*Answer, error) {
	switch {
	case end.Before(start):
		return nil, badData(`invalid parameter "end": end timestamp must not be before start time`)
	case step <= 0:
		return nil, badData(`invalid parameter "step": zero or negative query resolution step widths are not accepted. Try a positive integer`)
	case end.Sub(start)/step > MaxPointsPerSeries:
		return nil, badData("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)")
	}
	return e.run(ctx, tenant, qs, o, func(ctx context.Context, st *store, opts prom.QueryOpts) (prom.Query, error) {
		return e.engine.NewRangeQuery(ctx, st, opts, qs, start, end, step)
	})
}

// run parses qs, decides whether its selectors may read rollup tiers, evaluates it with newQuery's
// query over the tenant's store and encodes the answer before the engine takes its memory back.
func (e *Engine) run(ctx context.Context, tenant uuid.UUID, qs string, o QueryOptions,
	newQuery func(context.Context, *store, prom.QueryOpts) (prom.Query, error)) (*Answer, error) {
	expr, err := e.parser.ParseExpr(qs)
	if err != nil {
		return nil, badData(`invalid parameter "query": %w`, err)
	}
	lookback := e.cfg.LookbackDelta
	if o.Lookback > 0 {
		lookback = o.Lookback
	}
	if o.Timeout > 0 && o.Timeout < e.cfg.Timeout {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, o.Timeout, prom.ErrQueryTimeout("query execution"))
		defer cancel()
	}
	st := &store{e: e, tenant: tenant, tiers: e.cfg.Rollups && tiersAllowedFor(expr), lookback: lookback}
	qry, err := newQuery(ctx, st, prom.NewPrometheusQueryOpts(false, lookback, nil))
	if err != nil {
		// The engine refuses the query as written (a range vector where a range query needs an instant
		// vector), unless it ran out of time or was cancelled before it began.
		if e := engineErr(err); e.(*Error).Type == Timeout || e.(*Error).Type == Canceled {
			return nil, e
		}
		return nil, badData(`invalid parameter "query": %w`, err)
	}
	defer qry.Close()
	res := qry.Exec(ctx)
	if res.Err != nil {
		if ctx.Err() != nil && context.Cause(ctx) != nil {
			var timeout prom.ErrQueryTimeout
			if errors.As(context.Cause(ctx), &timeout) {
				return nil, &Error{Type: Timeout, Err: timeout}
			}
		}
		return nil, engineErr(res.Err)
	}
	a := &Answer{Data: encodeValue(res.Value)}
	a.Warnings, a.Infos = res.Warnings.AsStrings(qs, maxAnnotations, maxAnnotations)
	return a, nil
}

// engineErr classifies what the engine answered, as the Prometheus HTTP API does: its timeout and
// cancellation by name, the store's errors as they are, anything else an execution error (a query that
// is valid but cannot be evaluated: too many samples, duplicate series, a wrong type).
func engineErr(err error) error {
	var pe *Error
	var timeout prom.ErrQueryTimeout
	var canceled prom.ErrQueryCanceled
	var storageFailed prom.ErrStorage
	switch {
	case errors.As(err, &pe):
		return pe
	case errors.As(err, &timeout):
		return &Error{Type: Timeout, Err: err}
	case errors.As(err, &canceled):
		return &Error{Type: Canceled, Err: err}
	case errors.As(err, &storageFailed):
		return storageErr("read", storageFailed.Err)
	case errors.Is(err, context.Canceled):
		return &Error{Type: Canceled, Err: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Type: Timeout, Err: err}
	}
	return &Error{Type: Execution, Err: err}
}

// matchSeries reads the tenant's series that every matcher matches, as PromQL series: stored series
// whose PromQL labels are equal are one series. since (when not nil) keeps only series with a sample
// in [since, until]. More than MaxSeries is refused naming the selector.
func (e *Engine) matchSeries(ctx context.Context, tenant uuid.UUID, ms []*labels.Matcher, since *time.Time, until time.Time) ([]*memSeries, error) {
	f := pushDown(ms)
	if f.none {
		return nil, nil
	}
	var rows []dbsqlc.SeriesPromSelectRow
	err := e.read(ctx, tenant, func(q *dbsqlc.Queries) (err error) {
		rows, err = q.SeriesPromSelect(ctx, dbsqlc.SeriesPromSelectParams{PromNames: f.names, PromNameLike: f.nameLike,
			LabelFilter: f.labels, Since: since, Until: until, MaxRows: maxScan + 1})
		return err
	})
	if err != nil {
		return nil, storageErr("read series", err)
	}
	if len(rows) > maxScan {
		return nil, &Error{Type: Execution, Err: fmt.Errorf("the selector %s reads more than %d series before its regular expressions narrow them; "+
			"add a matcher on the name or a label with = or a list of values (a|b|c)", selectorText(ms), maxScan)}
	}
	var b labels.ScratchBuilder
	byLabels := map[string]*memSeries{}
	var out []*memSeries
	for _, r := range rows {
		ls := seriesLabels(&b, r.Name, r.Labels)
		if !matchAll(ms, ls) {
			continue
		}
		key := ls.String()
		if m := byLabels[key]; m != nil {
			m.ids = append(m.ids, r.ID)
			continue
		}
		m := &memSeries{labels: ls, ids: []int64{r.ID}}
		byLabels[key] = m
		out = append(out, m)
		if len(out) > e.cfg.MaxSeries {
			return nil, &Error{Type: Execution, Err: fmt.Errorf("the selector %s matches more than %d series; "+
				"narrow it with more matchers (the limit is --promql-max-series)", selectorText(ms), e.cfg.MaxSeries)}
		}
	}
	slices.SortFunc(out, func(a, b *memSeries) int { return labels.Compare(a.labels, b.labels) })
	return out, nil
}

func selectorText(ms []*labels.Matcher) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// TimeRange bounds the series listings: only series with a sample in [Start, End]. The zero value
// lists every series, whenever its samples.
type TimeRange struct {
	Start, End time.Time
}

func (r TimeRange) since() *time.Time {
	if r.Start.IsZero() && r.End.IsZero() {
		return nil
	}
	s := r.Start
	return &s
}

func (r TimeRange) until() time.Time {
	if r.End.IsZero() {
		return time.UnixMilli(maxReadMillis)
	}
	return r.End
}

// clamp keeps the range where PostgreSQL's timestamps reach.
func (r TimeRange) clamp() TimeRange {
	if r.since() == nil {
		return r
	}
	lo, hi := time.UnixMilli(minReadMillis), time.UnixMilli(maxReadMillis)
	if r.Start.Before(lo) {
		r.Start = lo
	}
	if r.End.IsZero() || r.End.After(hi) {
		r.End = hi
	}
	return r
}

// ParseMatchers parses the match[] parameters of the listings, refusing one that selects every series
// by matching the empty string only (Prometheus's rule: at least one matcher must not match "").
func (e *Engine) ParseMatchers(sets []string) ([][]*labels.Matcher, error) {
	out := make([][]*labels.Matcher, 0, len(sets))
	for _, s := range sets {
		ms, err := e.parser.ParseMetricSelector(s)
		if err != nil {
			return nil, badData(`invalid parameter "match[]": %w`, err)
		}
		empty := true
		for _, m := range ms {
			if !m.Matches("") {
				empty = false
				break
			}
		}
		if empty {
			return nil, badData(`invalid parameter "match[]": match[] must contain at least one non-empty matcher`)
		}
		out = append(out, ms)
	}
	return out, nil
}

// Listing is a listing's items and its warnings (a limit that truncated it).
type Listing[T any] struct {
	Items    []T
	Warnings []string
}

func truncate[T any](items []T, limit int) Listing[T] {
	if limit > 0 && len(items) > limit {
		return Listing[T]{Items: items[:limit], Warnings: []string{"results truncated due to limit"}}
	}
	return Listing[T]{Items: items}
}

// Series lists the tenant's series that match any of the matcher sets, in label order, each as its
// labels; limit > 0 truncates the list (with a warning).
func (e *Engine) Series(ctx context.Context, tenant uuid.UUID, sets [][]*labels.Matcher, r TimeRange, limit int) (Listing[map[string]string], error) {
	found, err := e.union(ctx, tenant, sets, r)
	if err != nil {
		return Listing[map[string]string]{}, err
	}
	items := make([]map[string]string, len(found))
	for i, sr := range found {
		items[i] = sr.labels.Map()
	}
	return truncate(items, limit), nil
}

// union reads the series of every matcher set, each once, in label order.
func (e *Engine) union(ctx context.Context, tenant uuid.UUID, sets [][]*labels.Matcher, r TimeRange) ([]*memSeries, error) {
	r = r.clamp()
	seen := map[string]bool{}
	var out []*memSeries
	for _, ms := range sets {
		found, err := e.matchSeries(ctx, tenant, ms, r.since(), r.until())
		if err != nil {
			return nil, err
		}
		for _, sr := range found {
			if key := sr.labels.String(); !seen[key] {
				seen[key] = true
				out = append(out, sr)
			}
		}
	}
	slices.SortFunc(out, func(a, b *memSeries) int { return labels.Compare(a.labels, b.labels) })
	return out, nil
}

// LabelNames lists the label names of the tenant's series (those of the series the matcher sets
// match, when there are any), __name__ included, sorted; limit > 0 truncates the list.
func (e *Engine) LabelNames(ctx context.Context, tenant uuid.UUID, sets [][]*labels.Matcher, r TimeRange, limit int) (Listing[string], error) {
	var names []string
	if len(sets) == 0 {
		r = r.clamp()
		var stored []string
		err := e.read(ctx, tenant, func(q *dbsqlc.Queries) (err error) {
			stored, err = q.SeriesPromLabelNames(ctx, dbsqlc.SeriesPromLabelNamesParams{Since: r.since(), Until: r.until(), MaxRows: maxScan})
			if err != nil || len(stored) > 0 {
				return err
			}
			// A tenant whose series have no labels still has names.
			some, err := q.SeriesPromNames(ctx, dbsqlc.SeriesPromNamesParams{Since: r.since(), Until: r.until(), MaxRows: 1})
			if len(some) > 0 {
				stored = []string{model.MetricNameLabel}
			}
			return err
		})
		if err != nil {
			return Listing[string]{}, storageErr("read label names", err)
		}
		names = stored
		if len(names) > 0 && !slices.Contains(names, model.MetricNameLabel) {
			names = append(names, model.MetricNameLabel)
		}
	} else {
		found, err := e.union(ctx, tenant, sets, r)
		if err != nil {
			return Listing[string]{}, err
		}
		seen := map[string]bool{}
		for _, sr := range found {
			sr.labels.Range(func(l labels.Label) {
				if !seen[l.Name] {
					seen[l.Name] = true
					names = append(names, l.Name)
				}
			})
		}
	}
	slices.Sort(names)
	if names == nil {
		names = []string{}
	}
	return truncate(names, limit), nil
}

// LabelValues lists the values of one label over the tenant's series (those the matcher sets match,
// when there are any), sorted; limit > 0 truncates the list.
func (e *Engine) LabelValues(ctx context.Context, tenant uuid.UUID, name string, sets [][]*labels.Matcher, r TimeRange, limit int) (Listing[string], error) {
	var values []string
	if len(sets) == 0 {
		if !storable(name) {
			return Listing[string]{Items: []string{}}, nil
		}
		r = r.clamp()
		err := e.read(ctx, tenant, func(q *dbsqlc.Queries) (err error) {
			if name == model.MetricNameLabel {
				values, err = q.SeriesPromNames(ctx, dbsqlc.SeriesPromNamesParams{Since: r.since(), Until: r.until(), MaxRows: maxScan})
			} else {
				values, err = q.SeriesPromLabelValues(ctx, dbsqlc.SeriesPromLabelValuesParams{LabelName: name, Since: r.since(),
					Until: r.until(), MaxRows: maxScan})
			}
			return err
		})
		if err != nil {
			return Listing[string]{}, storageErr("read label values", err)
		}
		values = slices.Compact(slices.Sorted(slices.Values(values))) // PromName can map two names to one
	} else {
		found, err := e.union(ctx, tenant, sets, r)
		if err != nil {
			return Listing[string]{}, err
		}
		seen := map[string]bool{}
		for _, sr := range found {
			if v := sr.labels.Get(name); v != "" && !seen[v] {
				seen[v] = true
				values = append(values, v)
			}
		}
		slices.Sort(values)
	}
	if values == nil {
		values = []string{}
	}
	return truncate(values, limit), nil
}

// EngineVersion is the Prometheus version whose PromQL engine this binary runs (3.16.0 for the module's
// v0.316.0), which /status/buildinfo answers; 3.0.0 if the build does not say.
func EngineVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path != "github.com/prometheus/prometheus" {
				continue
			}
			// Prometheus 3.x.y is published as module version v0.3xx.y.
			var minor, patch int
			if _, err := fmt.Sscanf(m.Version, "v0.3%02d.%d", &minor, &patch); err == nil {
				return fmt.Sprintf("3.%d.%d", minor, patch)
			}
		}
	}
	return "3.0.0"
}

// ParseTime reads a time as the Prometheus HTTP API takes it: seconds since the epoch (a float,
// milliseconds kept) or RFC 3339.
func ParseTime(s string) (time.Time, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e13 {
			return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp", s)
		}
		sec, frac := math.Modf(f)
		frac = math.Round(frac*1000) / 1000
		return time.Unix(int64(sec), int64(frac*float64(time.Second))).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp", s)
}

// ParseDuration reads a duration as the Prometheus HTTP API takes it: seconds (a float) or a PromQL
// duration (5m, 1h30m).
func ParseDuration(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		ns := f * float64(time.Second)
		if math.IsNaN(ns) || ns > float64(math.MaxInt64) || ns < float64(math.MinInt64) {
			return 0, fmt.Errorf("cannot parse %q to a valid duration. It overflows int64", s)
		}
		return time.Duration(ns), nil
	}
	if d, err := model.ParseDuration(s); err == nil {
		return time.Duration(d), nil
	}
	return 0, fmt.Errorf("cannot parse %q to a valid duration", s)
}

// LabelNameFromPath reads the label name of /label/{name}/values: Prometheus 3 clients escape a name
// that is not a legacy one as U__… (U__http_2e_method is http.method).
func LabelNameFromPath(s string) (string, error) {
	if strings.HasPrefix(s, "U__") {
		s = model.UnescapeName(s, model.ValueEncodingEscaping)
	}
	if !model.UTF8Validation.IsValidLabelName(s) {
		return "", fmt.Errorf("invalid label name: %q", s)
	}
	return s, nil
}
