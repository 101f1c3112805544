package poller

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/ingest"
)

// Config says how a poller claims and runs checks.
type Config struct {
	// Location, when set, makes the poller run only checks pinned to it, besides unpinned ones.
	Location string
	// Concurrency caps the checks running at once in this process. Zero means 256.
	Concurrency int
	// TenantConcurrency caps one tenant's checks running at once in this process, so one tenant's slow
	// targets cannot starve the others. Zero means 64.
	TenantConcurrency int
	// Batch is the most checks one claim takes. Zero means 100.
	Batch int
	// Idle is how long the poller sleeps when nothing is due. Zero means one second.
	Idle time.Duration
	// LeaseGrace is added to a check's timeout to make its lease: a poller that dies mid-run loses its
	// checks to the others this long after their timeout. Zero means 15 seconds.
	LeaseGrace time.Duration
	// FlushEvery is how long finished runs wait to be stored together. Zero means 200 ms.
	FlushEvery time.Duration
	// Owner names this poller in leases; empty means host name, process id and a random suffix.
	Owner string
}

func (c Config) withDefaults() Config {
	if c.Concurrency <= 0 {
		c.Concurrency = 256
	}
	if c.TenantConcurrency <= 0 {
		c.TenantConcurrency = 64
	}
	if c.Batch <= 0 {
		c.Batch = 100
	}
	if c.Idle <= 0 {
		c.Idle = time.Second
	}
	if c.LeaseGrace <= 0 {
		c.LeaseGrace = 15 * time.Second
	}
	if c.FlushEvery <= 0 {
		c.FlushEvery = 200 * time.Millisecond
	}
	if c.Owner == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		c.Owner = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
	}
	return c
}

// Engine claims due checks, runs them with bounded concurrency and stores what they find. Any number
// of engines may share a database: leases keep each slot of a check to one of them.
type Engine struct {
	cfg    Config
	runner *Runner
	log    *slog.Logger
	m      *metrics

	mu       sync.Mutex
	inFlight map[uuid.UUID]int // running checks per tenant
	running  int
	freed    chan struct{} // signalled when a run ends, so a full poller claims again at once
}

// New returns an engine running checks through runner.
func New(cfg Config, runner *Runner, log *slog.Logger, reg prometheus.Registerer) *Engine {
	return &Engine{cfg: cfg.withDefaults(), runner: runner, log: log, m: newMetrics(reg), inFlight: map[uuid.UUID]int{},
		freed: make(chan struct{}, 1)}
}

// Owner is the name this engine's leases carry.
func (e *Engine) Owner() string { return e.cfg.Owner }

// Run polls until ctx ends. Runs in flight then are abandoned and their leases given back, so another
// replica runs those slots at once; finished runs are stored before Run returns.
func (e *Engine) Run(ctx context.Context) {
	finished := make(chan Run, e.cfg.Concurrency)
	storeDone := make(chan struct{})
	go func() { e.storeLoop(finished); close(storeDone) }()

	var runs sync.WaitGroup
	var abandonedMu sync.Mutex
	var abandoned []int64
	for ctx.Err() == nil {
		claimed, err := e.claim(ctx)
		if err != nil && ctx.Err() == nil {
			e.log.Error("claim due checks", "err", err)
		}
		for _, c := range claimed {
			runs.Go(func() {
				defer e.release(c.TenantID)
				r, ok := e.probe(ctx, c)
				if !ok {
					abandonedMu.Lock()
					abandoned = append(abandoned, c.ID)
					abandonedMu.Unlock()
					return
				}
				finished <- r
			})
		}
		if len(claimed) == e.cfg.Batch {
			continue // more may be due
		}
		select {
		case <-ctx.Done():
		case <-time.After(e.cfg.Idle):
		case <-e.freed:
		}
	}
	runs.Wait()
	close(finished)
	<-storeDone
	if len(abandoned) > 0 {
		bg, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := dbsqlc.New(e.runner.pool).CheckReleaseLeases(bg, dbsqlc.CheckReleaseLeasesParams{Ids: abandoned, Owner: e.cfg.Owner}); err != nil {
			e.log.Warn("give back leases of abandoned runs", "checks", len(abandoned), "err", err)
		}
	}
}

// probe runs one claimed check and returns the run to store. It returns false when ctx ended during
// the run: the outcome is then the cancellation, not the target's.
func (e *Engine) probe(ctx context.Context, c dbsqlc.CheckClaimDueRow) (Run, bool) {
	started := time.Now()
	out := e.runner.prober.Probe(ctx, Check{ID: c.ID, Kind: c.Kind, Target: c.Target,
		Timeout: time.Duration(c.TimeoutSeconds) * time.Second, Settings: c.Settings})
	if ctx.Err() != nil {
		return Run{}, false
	}
	e.m.runs.WithLabelValues(c.Kind, status(out.Up)).Inc()
	e.m.duration.WithLabelValues(c.Kind).Observe(time.Since(started).Seconds())
	r := newRun(c, started, out)
	r.next = nextSlot(c.NextRunAt, time.Duration(c.IntervalSeconds)*time.Second, time.Now())
	return r, true
}

// claim leases as many due checks as the concurrency limits allow.
func (e *Engine) claim(ctx context.Context) ([]dbsqlc.CheckClaimDueRow, error) {
	e.mu.Lock()
	free := min(e.cfg.Concurrency-e.running, e.cfg.Batch)
	busy := []uuid.UUID{}
	for t, n := range e.inFlight {
		if n >= e.cfg.TenantConcurrency {
			busy = append(busy, t)
		}
	}
	e.mu.Unlock()
	if free <= 0 {
		return nil, nil
	}
	var loc *string
	if e.cfg.Location != "" {
		loc = &e.cfg.Location
	}
	claimed, err := dbsqlc.New(e.runner.pool).CheckClaimDue(ctx, dbsqlc.CheckClaimDueParams{Location: loc, BusyTenants: busy,
		MaxRows: int32(free), Owner: e.cfg.Owner, GraceSeconds: int32(e.cfg.LeaseGrace / time.Second)})
	if err != nil {
		return nil, err
	}
	// A claim may take a tenant past its limit by up to one batch; the next claim then skips it.
	e.mu.Lock()
	for _, c := range claimed {
		e.inFlight[c.TenantID]++
		e.running++
	}
	e.mu.Unlock()
	e.m.claimed.Add(float64(len(claimed)))
	return claimed, nil
}

func (e *Engine) release(tenant uuid.UUID) {
	e.mu.Lock()
	if e.inFlight[tenant]--; e.inFlight[tenant] <= 0 {
		delete(e.inFlight, tenant)
	}
	e.running--
	e.mu.Unlock()
	select {
	case e.freed <- struct{}{}:
	default:
	}
}

// storeLoop stores finished runs in batches until finished is closed.
func (e *Engine) storeLoop(finished <-chan Run) {
	var batch []Run
	flush := func() {
		if len(batch) > 0 {
			e.store(batch)
			batch = batch[:0]
		}
	}
	tick := time.NewTicker(e.cfg.FlushEvery)
	defer tick.Stop()
	for {
		select {
		case r, ok := <-finished:
			if !ok {
				flush()
				return
			}
			if batch = append(batch, r); len(batch) >= 500 {
				flush()
			}
		case <-tick.C:
			flush()
		}
	}
}

// store writes a batch of finished runs.
func (e *Engine) store(batch []Run) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kept, refused, err := e.runner.store.write(ctx, e.cfg.Owner, batch)
	e.m.refused.Add(float64(refused))
	if err != nil {
		// The leases of the runs not stored expire and other pollers (or this one) run those checks again.
		e.log.Error("store check results", "runs", len(batch), "stored", len(kept), "err", err)
	} else if lost := len(batch) - len(kept) - refused; lost > 0 {
		e.m.lost.Add(float64(lost))
		e.log.Warn("runs finished after their lease was taken over; results discarded", "runs", lost)
	}
}

// nextSlot is the first slot after slot, keeping the check's phase, that is not already past: a
// poller that fell behind skips the slots it missed rather than running them back to back.
func nextSlot(slot time.Time, interval time.Duration, now time.Time) time.Time {
	next := slot.Add(interval)
	if !next.After(now) {
		next = next.Add(((now.Sub(next) / interval) + 1) * interval)
	}
	return next
}

// Runner runs checks and stores what they find; the engine uses it for scheduled runs and the API for
// runs requested by a user.
type Runner struct {
	pool   *pgxpool.Pool
	prober *Prober
	store  *store
}

// NewRunner returns a runner. samples writes the checks' metric samples; its writer must be running.
func NewRunner(pool *pgxpool.Pool, prober *Prober, samples *ingest.Service, log *slog.Logger) *Runner {
	return &Runner{pool: pool, prober: prober, store: &store{pool: pool, samples: samples, log: log}}
}

// MinRunGap is the least time between two runs of one check that a user may ask for, so the API cannot
// be used to flood a target (or the poller) through a check.
const MinRunGap = 5 * time.Second

// TooSoonError says a check ran less than MinRunGap ago.
type TooSoonError struct{ RetryAfter time.Duration }

func (e *TooSoonError) Error() string {
	return fmt.Sprintf("the check ran less than %s ago; retry in %s", MinRunGap, e.RetryAfter.Round(100*time.Millisecond))
}

// RunNow runs one check of tenant at once, outside its schedule, stores the result and returns it.
// ErrNoCheck means the tenant has no such check; a *TooSoonError that it ran moments ago.
func (r *Runner) RunNow(ctx context.Context, tenant uuid.UUID, id int64) (Run, error) {
	c, err := dbsqlc.New(r.pool).CheckGetForRun(ctx, dbsqlc.CheckGetForRunParams{TenantID: tenant, ID: id})
	if errors.Is(err, pgx.ErrNoRows) {
		return Run{}, fmt.Errorf("%w: %d", ErrNoCheck, id)
	} else if err != nil {
		return Run{}, db.Translate(err)
	}
	started := time.Now()
	if c.LastRunAt != nil {
		if wait := c.LastRunAt.Add(MinRunGap).Sub(started); wait > 0 {
			return Run{}, &TooSoonError{RetryAfter: wait}
		}
	}
	out := r.prober.Probe(ctx, Check{ID: c.ID, Kind: c.Kind, Target: c.Target,
		Timeout: time.Duration(c.TimeoutSeconds) * time.Second, Settings: c.Settings})
	claim := dbsqlc.CheckClaimDueRow{ID: c.ID, TenantID: c.TenantID, Name: c.Name, Kind: c.Kind, Target: c.Target,
		IntervalSeconds: c.IntervalSeconds, TimeoutSeconds: c.TimeoutSeconds, Settings: c.Settings, NextRunAt: c.NextRunAt,
		Status: c.Status, HostName: c.HostName}
	run := newRun(claim, started, out)
	if _, _, err := r.store.write(ctx, "", []Run{run}); err != nil {
		return run, err
	}
	return run, nil
}

func status(up bool) string {
	if up {
		return "up"
	}
	return "down"
}

type metrics struct {
	runs     *prometheus.CounterVec
	duration *prometheus.HistogramVec
	claimed  prometheus.Counter
	lost     prometheus.Counter
	refused  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "infrawatch_poller_runs_total",
			Help: "Check runs finished, by kind and status."}, []string{"kind", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "infrawatch_poller_run_seconds",
			Help: "Time a check run took, by kind.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 8)}, []string{"kind"}),
		claimed: prometheus.NewCounter(prometheus.CounterOpts{Name: "infrawatch_poller_claimed_total",
			Help: "Check runs claimed."}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{Name: "infrawatch_poller_lost_leases_total",
			Help: "Runs discarded because they finished after another poller took their lease over."}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "infrawatch_poller_refused_runs_total",
			Help: "Runs whose result the database refused; their checks moved on to the next slot."}),
	}
	if reg != nil {
		reg.MustRegister(m.runs, m.duration, m.claimed, m.lost, m.refused)
	}
	return m
}
