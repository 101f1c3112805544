package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/maintenance"
	"github.com/infrawatch/infrawatch/internal/replicas"
	"github.com/infrawatch/infrawatch/internal/service"
)

// Config holds the ingest limits that are the same for every tenant. Zero fields take DefaultConfig's
// values. Ingest has no flags of its own: the raw retention is --retention-raw, maintenance's.
type Config struct {
	Writer WriterConfig
	// RawRetention is how far back a sample may be; older ones are refused. The process sets it to the
	// raw retention of maintenance, which would drop them.
	RawRetention time.Duration
	// MaxFuture is how far ahead of the server's clock a sample may be.
	MaxFuture time.Duration
}

// DefaultConfig holds ingest's defaults; the raw retention is maintenance's default.
func DefaultConfig() Config {
	return Config{
		Writer: WriterConfig{Writers: 2, MaxBatchRows: 10_000, MaxQueuedRows: 500_000, CommitTimeout: 30 * time.Second,
			IdleInTransactionTimeout: 5 * time.Second},
		RawRetention: maintenance.DefaultConfig().Retention.Samples,
		MaxFuture:    10 * time.Minute,
	}
}

func (c Config) withDefaults() Config {
	def := DefaultConfig()
	if c.RawRetention <= 0 {
		c.RawRetention = def.RawRetention
	}
	if c.MaxFuture <= 0 {
		c.MaxFuture = def.MaxFuture
	}
	c.Writer = c.Writer.withDefaults()
	return c
}

// Validate reports settings that cannot work; zero is the default everywhere, negative is wrong.
func (c Config) Validate() error {
	w := c.Writer
	if c.RawRetention < 0 || c.MaxFuture < 0 || w.Writers < 0 || w.MaxBatchRows < 0 || w.MaxQueuedRows < 0 || w.CommitTimeout < 0 {
		return errors.New("ingest: retention, future, writers, batch, queue and commit timeout must not be negative")
	}
	return nil
}

// RateLimitedError says a tenant pushes faster than its ingest rate; RetryAfter says when to retry.
type RateLimitedError struct{ RetryAfter time.Duration }

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("ingest rate limit exceeded; retry after %d s", retrySeconds(e.RetryAfter))
}

// retrySeconds rounds a wait up to whole seconds, at least one, for Retry-After.
func retrySeconds(d time.Duration) int { return max(1, int((d+time.Second-1)/time.Second)) }

// PushTooLargeError says a push holds more samples than the tenant's burst: it can never pass the rate
// limit, so it must be split (413), not retried.
type PushTooLargeError struct{ Samples, Burst int }

func (e *PushTooLargeError) Error() string {
	return fmt.Sprintf("the push holds %d samples, more than the tenant's ingest burst of %d; send smaller pushes", e.Samples, e.Burst)
}

// Service validates pushes, resolves their series and writes them.
type Service struct {
	cfg      Config
	pool     *pgxpool.Pool
	writer   *Writer
	resolver *resolver
	m        *serviceMetrics
	now      func() time.Time
	loop     service.Loop

	mu      sync.Mutex
	tenants map[uuid.UUID]*tenantState
	// deltas serialize the writes of each delta series in this process (otlp_delta.go).
	deltas deltaLocks
	// replicas is how many ingest replicas were live when last read (replicasReadAt): a tenant's rate
	// is divided among them.
	replicas       int
	replicasReadAt time.Time
}

// tenantState is a tenant's limits as last read, and its ingest rate limiter, whose rate is the
// tenant's divided among the live ingest replicas (replicas of them when last set).
type tenantState struct {
	limits   dbsqlc.AppTenant
	readAt   time.Time
	limiter  *rate.Limiter
	replicas int
}

// replicasTTL is how long the count of live ingest replicas is used before it is read again: a replica
// that starts or stops gracefully changes every replica's share within it (one killed, within it and
// replicas.Alive).
const replicasTTL = 10 * time.Second

// limitsTTL is how long a tenant's limits are used before they are read again: an operator's change of
// them applies within that time in every process (at once in the one that served it: ForgetLimits).
const limitsTTL = 30 * time.Second

var _ service.Service = (*Service)(nil)

// NewService returns the ingest service; Start starts its writer. pool is the owner's: the writer COPYs
// through it.
func NewService(cfg Config, pool *pgxpool.Pool, log *slog.Logger, reg prometheus.Registerer) *Service {
	cfg = cfg.withDefaults()
	s := &Service{cfg: cfg, pool: pool, writer: NewWriter(cfg.Writer, pool, log, reg), resolver: newResolver(pool),
		m: newServiceMetrics(reg), now: time.Now, tenants: map[uuid.UUID]*tenantState{}}
	s.loop.Run = s.writer.Run
	return s
}

// Start starts the group-commit writer. Writes wait for it: start it before anything writes, and stop
// it after (a process starts it first and stops it last).
func (s *Service) Start(ctx context.Context) error { return s.loop.Start(ctx) }

// Stop stops the writer once it has written what is queued, and returns then.
func (s *Service) Stop() { s.loop.Stop() }

// Run runs the group-commit writer until ctx ends, as Start does in a goroutine of its own.
func (s *Service) Run(ctx context.Context) { s.writer.Run(ctx) }

// Result is what a push achieved: how many samples were committed and why the others were not.
type Result struct {
	Accepted int         `json:"accepted"`
	Rejected []Rejection `json:"rejected"`
}

// Write validates the series of one push for tenant, registers hosts and series, and returns once the
// valid samples are committed. host, when not nil, carries labels and metadata for the push's host.
// Rejections of the decoder (decoded) are passed through into the result.
func (s *Service) Write(ctx context.Context, tenant uuid.UUID, protocol string, series []Series, host *HostDetails,
	decoded []Rejection) (Result, error) {
	res := Result{Rejected: decoded}
	s.m.rejected.WithLabelValues("malformed").Add(float64(len(decoded)))
	limits, limiter, err := s.tenant(ctx, tenant)
	if err != nil {
		return res, err
	}
	now := s.now()
	keep, total := s.validate(series, limits, now, &res)
	if total == 0 {
		return res, nil
	}
	if total > int(limits.IngestBurst) {
		s.m.rejected.WithLabelValues("push_too_large").Add(float64(total))
		return res, &PushTooLargeError{Samples: total, Burst: int(limits.IngestBurst)}
	}
	if r := limiter.ReserveN(now, total); r.DelayFrom(now) > 0 {
		delay := r.DelayFrom(now)
		r.CancelAt(now)
		s.m.rejected.WithLabelValues("rate_limited").Add(float64(total))
		return res, &RateLimitedError{RetryAfter: delay}
	}
	ids, err := s.seriesIDs(ctx, tenant, limits, keep, host, &res)
	if err != nil {
		return res, err
	}
	unlock, err := s.accumulate(ctx, tenant, keep, ids, &res) // delta series: running totals (otlp_delta.go)
	if err != nil {
		return res, err
	}
	defer unlock()
	r := &rows{tenant: pgtype.UUID{Bytes: tenant, Valid: true}}
	for i, v := range keep {
		for _, p := range v.samples {
			r.times = append(r.times, time.UnixMilli(p.TimeMs))
			r.series = append(r.series, ids[i])
			r.values = append(r.values, p.Value)
		}
	}
	if err := s.writer.Submit(ctx, r); err != nil {
		return res, err
	}
	res.Accepted = r.len()
	s.m.accepted.WithLabelValues(protocol).Add(float64(res.Accepted))
	return res, nil
}

// validSeries is a series of a push that passed validation, with its samples that did.
type validSeries struct {
	index   int // in the push, for rejections
	series  *Series
	key     string // seriesKey of the series
	samples []Sample
}

// reject records why a sample (or, with sample -1, a series) was refused, and counts it by category.
func (s *Service) reject(res *Result, series, sample int, category, format string, args ...any) {
	res.Rejected = append(res.Rejected, Rejection{Series: series, Sample: sample, Reason: fmt.Sprintf(format, args...)})
	s.m.rejected.WithLabelValues(category).Inc()
}

// validate applies the column bounds, the tenant's limits and the accepted time window, and returns the
// valid series with their valid samples and how many samples those are. It sets each series' host label.
//
// A (series, timestamp) can be stored once, so a push that holds it twice — in one series or in two
// entries of the same series — has the later ones refused: accepted then counts exactly the rows stored
// or already there. Samples in increasing time order, as agents send them, are checked without a map.
func (s *Service) validate(series []Series, lim dbsqlc.AppTenant, now time.Time, res *Result) ([]validSeries, int) {
	oldest, newest := now.Add(-s.cfg.RawRetention).UnixMilli(), now.Add(s.cfg.MaxFuture).UnixMilli()
	var keep []validSeries
	total := 0
	// first maps the key of each kept series to its index in keep; pushTimes holds, for a series that
	// comes again in the push, the timestamps its earlier entries keep.
	first := make(map[string]int, len(series))
	var pushTimes map[string]map[int64]struct{}
	for i := range series {
		sr := &series[i]
		if sr.Labels == nil {
			sr.Labels = map[string]string{}
		}
		if sr.Host != "" {
			sr.Labels["host"] = sr.Host
		}
		if why, category := checkSeries(sr, lim); why != "" {
			s.reject(res, i, -1, category, "%s", why)
			continue
		}
		key := seriesKey(sr.Name, sr.Labels)
		var taken map[int64]struct{} // timestamps taken by earlier entries of the same series, when any
		if f, again := first[key]; again {
			if taken = pushTimes[key]; taken == nil {
				taken = make(map[int64]struct{}, len(keep[f].samples))
				for _, p := range keep[f].samples {
					taken[p.TimeMs] = struct{}{}
				}
				if pushTimes == nil {
					pushTimes = map[string]map[int64]struct{}{}
				}
				pushTimes[key] = taken
			}
		}
		ok := sr.Samples[:0:0]
		last := int64(math.MinInt64)
		var seen map[int64]struct{} // this entry's timestamps, once they stop increasing
		for j, p := range sr.Samples {
			switch {
			case p.TimeMs < oldest:
				s.reject(res, i, j, "too_old", "timestamp %d is older than the raw retention (%s)", p.TimeMs, s.cfg.RawRetention)
				continue
			case p.TimeMs > newest:
				s.reject(res, i, j, "too_new", "timestamp %d is more than %s ahead of the server clock", p.TimeMs, s.cfg.MaxFuture)
				continue
			}
			if p.TimeMs <= last && seen == nil {
				seen = make(map[int64]struct{}, len(sr.Samples))
				for _, q := range ok {
					seen[q.TimeMs] = struct{}{}
				}
			}
			_, dup := seen[p.TimeMs]
			if !dup && taken != nil {
				_, dup = taken[p.TimeMs]
			}
			if dup {
				s.reject(res, i, j, "duplicate", "timestamp %d of series %s appears more than once in this push; the first is kept",
					p.TimeMs, quoteCut(sr.Name))
				continue
			}
			if seen != nil {
				seen[p.TimeMs] = struct{}{}
			}
			last = max(last, p.TimeMs)
			ok = append(ok, p)
		}
		if len(ok) == 0 {
			continue
		}
		if taken != nil {
			for _, p := range ok {
				taken[p.TimeMs] = struct{}{}
			}
		} else {
			first[key] = len(keep)
		}
		keep = append(keep, validSeries{index: i, series: sr, key: key, samples: ok})
		total += len(ok)
	}
	return keep, total
}

// seriesIDs returns the id of each kept series: hosts first, then the cache, then the database for the
// new ones, as far as the tenant's series limit allows. Series refused by the limit lose their samples.
func (s *Service) seriesIDs(ctx context.Context, tenant uuid.UUID, lim dbsqlc.AppTenant, keep []validSeries,
	host *HostDetails, res *Result) ([]int64, error) {
	registered := map[string]bool{}
	for _, v := range keep {
		if h := v.series.Host; h != "" && !registered[h] {
			if _, err := s.resolver.host(ctx, tenant, h, host); err != nil {
				return nil, s.classify(err)
			}
			registered[h] = true
		}
	}
	keys := make([]string, len(keep))
	for i, v := range keep {
		keys[i] = v.key
	}
	ids := make([]int64, len(keep))
	s.resolver.lookup(tenant, keys, ids)
	var missing []pending
	seen := map[string]bool{}
	for i, v := range keep {
		if ids[i] == 0 && !seen[keys[i]] {
			seen[keys[i]] = true
			missing = append(missing, pending{key: keys[i], name: v.series.Name, labels: v.series.Labels, host: v.series.Host})
		}
	}
	if len(missing) == 0 {
		return ids, nil
	}
	found, err := s.resolver.resolve(ctx, tenant, int64(lim.MaxSeries), missing)
	if err != nil {
		return nil, s.classify(err)
	}
	for i := range ids {
		if ids[i] != 0 {
			continue
		}
		if id, ok := found[keys[i]]; ok {
			ids[i] = id
			continue
		}
		s.reject(res, keep[i].index, -1, "series_limit", "the tenant's series limit is reached (limit: %d); this series is new",
			lim.MaxSeries)
		keep[i].samples = nil
	}
	return ids, nil
}

// classify marks database failures on the way to the writer as unavailability (503), like the writer's.
func (s *Service) classify(err error) error {
	if db.IsUnavailable(err) {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return err
}

// checkSeries applies the column bounds and the tenant's series limits, returning why a series is
// refused and the category.
func checkSeries(sr *Series, lim dbsqlc.AppTenant) (string, string) {
	if why := CheckMetricName(sr.Name); why != "" {
		return why, "invalid_name"
	}
	if sr.Host != "" {
		if why := CheckHostName(sr.Host); why != "" {
			return "the host name " + why, "invalid_name"
		}
	}
	switch {
	case len(sr.Labels) > int(lim.MaxLabelsPerSeries):
		return fmt.Sprintf("received a series whose number of labels exceeds the limit (actual: %d, limit: %d)",
			len(sr.Labels), lim.MaxLabelsPerSeries), "label_limit"
	case len(sr.Samples) == 0:
		return "the series has no samples", "empty"
	}
	for k, v := range sr.Labels {
		switch {
		case k == "" || len(k) > int(lim.MaxLabelNameLength) || !storable(k):
			return fmt.Sprintf("label name %.40q is empty, not UTF-8, holds a NUL byte or is longer than %d bytes", k,
				lim.MaxLabelNameLength), "label_limit"
		case len(v) > int(lim.MaxLabelValueLength) || !storable(v):
			return fmt.Sprintf("the value of label %.40q is not UTF-8, holds a NUL byte or is longer than %d bytes (actual: %d)", k,
				lim.MaxLabelValueLength, len(v)), "label_limit"
		}
	}
	return "", ""
}

// tenant returns the tenant's limits and rate limiter, reading them again after limitsTTL. The limits are
// a copy: concurrent pushes of the tenant may read them again and replace them meanwhile.
func (s *Service) tenant(ctx context.Context, tenant uuid.UUID) (dbsqlc.AppTenant, *rate.Limiter, error) {
	live := s.liveReplicas(ctx)
	now := s.now()
	s.mu.Lock()
	if st := s.tenants[tenant]; st != nil && now.Sub(st.readAt) < limitsTTL {
		defer s.mu.Unlock()
		st.share(now, live)
		return st.limits, st.limiter, nil
	}
	s.mu.Unlock()
	t, err := dbsqlc.New(s.pool).TenantGetByID(ctx, tenant)
	if err != nil {
		return t, nil, s.classify(fmt.Errorf("read tenant limits: %w", err))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.tenants[tenant]
	if st == nil || st.limits.IngestRate != t.IngestRate || st.limits.IngestBurst != t.IngestBurst {
		// New or changed limits start afresh with a full bucket: a tenant whose rate was just raised is
		// not held back by the empty bucket of its old rate.
		st = &tenantState{limiter: rate.NewLimiter(shareOf(t.IngestRate, live), int(t.IngestBurst)), replicas: live}
		s.tenants[tenant] = st
	}
	st.limits, st.readAt = t, now
	st.share(now, live)
	return st.limits, st.limiter, nil
}

// share sets the tenant's limiter to its share of the rate among live ingest replicas, from now on
// (what the bucket holds stays).
func (st *tenantState) share(now time.Time, live int) {
	if st.replicas != live {
		st.limiter.SetLimitAt(now, shareOf(st.limits.IngestRate, live))
		st.replicas = live
	}
}

// shareOf is one replica's share of a tenant's samples per second. Only the rate is divided: each
// replica takes a push up to the whole burst, so the rate holds across replicas over time while a
// burst spread over n replicas may reach n times the burst once.
func shareOf(ingestRate int32, live int) rate.Limit {
	return rate.Limit(float64(ingestRate) / float64(max(live, 1)))
}

// liveReplicas is how many ingest replicas are live (internal/replicas), read at most every
// replicasTTL; at least 1 (a process without heartbeats, as in tests, is alone). A failed read keeps the
// last count.
func (s *Service) liveReplicas(ctx context.Context) int {
	now := s.now()
	s.mu.Lock()
	n, fresh := s.replicas, now.Sub(s.replicasReadAt) < replicasTTL
	s.mu.Unlock()
	if fresh && n > 0 {
		return n
	}
	count, err := dbsqlc.New(s.pool).ReplicasCountLive(ctx, dbsqlc.ReplicasCountLiveParams{Role: "ingest", AliveWithin: replicas.Alive})
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.replicas = max(int(count), 1)
	} else if s.replicas == 0 {
		s.replicas = 1
	}
	s.replicasReadAt = now
	return s.replicas
}

// ForgetReplicas makes the next push read the count of live ingest replicas again (tests, and a
// process that just learnt the count changed).
func (s *Service) ForgetReplicas() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replicasReadAt = time.Time{}
}

// ForgetLimits makes the next push of tenant read its limits again, so that a change the operator just
// made applies at once in this process.
func (s *Service) ForgetLimits(tenant uuid.UUID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.tenants[tenant]; st != nil {
		st.readAt = time.Time{}
	}
}

// Host registers or refreshes a host by name for tenant and returns its id (for logs).
func (s *Service) Host(ctx context.Context, tenant uuid.UUID, name string, details *HostDetails) (int64, error) {
	id, err := s.resolver.host(ctx, tenant, name, details)
	return id, s.classify(err)
}

// IsBusy reports whether err asks the client to come back later, and after how long.
func IsBusy(err error) (retryAfter time.Duration, busy bool) {
	var rl *RateLimitedError
	switch {
	case errors.As(err, &rl):
		return time.Duration(retrySeconds(rl.RetryAfter)) * time.Second, true
	case errors.Is(err, ErrBusy):
		return time.Second, true
	}
	return 0, false
}

type serviceMetrics struct {
	accepted *prometheus.CounterVec
	rejected *prometheus.CounterVec
}

func newServiceMetrics(reg prometheus.Registerer) *serviceMetrics {
	m := &serviceMetrics{
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "infrawatch_ingest_samples_accepted_total",
			Help: "Samples committed, by protocol."}, []string{"protocol"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "infrawatch_ingest_samples_rejected_total",
			Help: "Samples or series refused, by reason."}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.accepted, m.rejected)
	}
	return m
}
