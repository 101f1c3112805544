// Package poller schedules and stores the runs of agentless checks: the engine claims due checks under
// leases, runs them through the check-kind registry (internal/checks) with bounded concurrency, and
// stores their results, status changes, events and samples; the Runner also runs a check on a user's
// request. It reaches the database through db.System and sqlc only.
package poller

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/infrawatch/infrawatch/internal/checks"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/service"
)

// Config says how a poller claims and runs checks. A field left zero takes DefaultConfig's value.
type Config struct {
	// Location, when set, makes the poller run only checks pinned to it, besides unpinned ones.
	Location string
	// Concurrency caps the checks running at once in this process.
	Concurrency int
	// TenantConcurrency caps one tenant's checks running at once in this process, so one tenant's slow
	// targets cannot starve the others.
	TenantConcurrency int
	// Batch is the most checks one claim takes.
	Batch int
	// Idle is how long the poller waits when nothing is due.
	Idle time.Duration
	// LeaseGrace is added to a check's timeout to make its lease: a poller that dies mid-run loses its
	// checks to the others this long after their timeout.
	LeaseGrace time.Duration
	// FlushEvery is how long finished runs wait to be stored together.
	FlushEvery time.Duration
	// Owner names this poller in leases; empty means host name, process id and a random suffix.
	Owner string
}

// DefaultConfig is the poller's configuration when nothing is set: the only copy of its defaults.
func DefaultConfig() Config {
	return Config{Concurrency: 256, TenantConcurrency: 64, Batch: 100, Idle: time.Second, LeaseGrace: 15 * time.Second,
		FlushEvery: 200 * time.Millisecond}
}

// maxLocationChars is app.checks.location's bound, which the API applies.
const maxLocationChars = 64

// AddFlags registers the poller role's flags on fs, with DefaultConfig's values as their defaults.
func (c *Config) AddFlags(fs *flag.FlagSet) {
	d := DefaultConfig()
	fs.StringVar(&c.Location, "location", d.Location,
		"poller role: run only checks pinned to this location, besides unpinned ones (empty: unpinned checks only)")
	fs.IntVar(&c.Concurrency, "poller-concurrency", d.Concurrency, "poller role: most checks running at once in this process")
	fs.IntVar(&c.TenantConcurrency, "poller-tenant-concurrency", d.TenantConcurrency,
		"poller role: most checks of one tenant running at once in this process")
}

// Validate refuses a configuration that cannot work, naming the flag (or the field) to fix.
func (c Config) Validate() error {
	switch {
	case c.Concurrency < 1:
		return errors.New("--poller-concurrency must be at least 1")
	case c.TenantConcurrency < 1:
		return errors.New("--poller-tenant-concurrency must be at least 1")
	case len(c.Location) > maxLocationChars:
		return fmt.Errorf("--location must be at most %d characters", maxLocationChars)
	case c.Batch < 0, c.Idle < 0, c.LeaseGrace < 0, c.FlushEvery < 0:
		return errors.New("poller: Batch, Idle, LeaseGrace and FlushEvery must be zero (the default) or more")
	}
	return nil
}

// withDefaults fills the fields left zero from DefaultConfig, and names the poller when Owner is empty.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Concurrency <= 0 {
		c.Concurrency = d.Concurrency
	}
	if c.TenantConcurrency <= 0 {
		c.TenantConcurrency = d.TenantConcurrency
	}
	if c.Batch <= 0 {
		c.Batch = d.Batch
	}
	if c.Idle <= 0 {
		c.Idle = d.Idle
	}
	if c.LeaseGrace <= 0 {
		c.LeaseGrace = d.LeaseGrace
	}
	if c.FlushEvery <= 0 {
		c.FlushEvery = d.FlushEvery
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
// of engines may share a database: leases keep each slot of a check to one of them. It is a
// service.Service: Start runs Run until Stop.
type Engine struct {
	cfg    Config
	runner *Runner
	log    *slog.Logger
	m      *metrics
	loop   service.Loop
	// clock is the real clock but in tests, which step the engine through time with a fake one.
	clock Clock
	// testSignals are nil but in tests.
	testSignals testSignals

	mu       sync.Mutex
	inFlight map[uuid.UUID]int // running checks per tenant
	running  int
	finished int           // runs finished since the engine started, for the test signals
	freed    chan struct{} // signalled when a run ends, so a full poller claims again at once
}

// New returns an engine running checks through runner.
func New(cfg Config, runner *Runner, log *slog.Logger, reg prometheus.Registerer) *Engine {
	e := &Engine{cfg: cfg.withDefaults(), runner: runner, log: log, m: newMetrics(reg), clock: realClock{},
		inFlight: map[uuid.UUID]int{}, freed: make(chan struct{}, 1)}
	e.loop.Run = e.Run
	return e
}

// Start runs the engine in the background until Stop or until ctx ends.
func (e *Engine) Start(ctx context.Context) error { return e.loop.Start(ctx) }

// Stop stops the engine and returns once it has stored the runs it finished (see Run).
func (e *Engine) Stop() { e.loop.Stop() }

// Run polls until ctx ends. Runs in flight then are abandoned and their leases given back, so another
// replica runs those slots at once; finished runs are stored before Run returns.
func (e *Engine) Run(ctx context.Context) {
	finished := make(chan Run, e.cfg.Concurrency)
	flushes, stopFlushes := e.clock.Tick(e.cfg.FlushEvery)
	defer stopFlushes()
	storeDone := make(chan struct{})
	go func() { e.storeLoop(finished, flushes); close(storeDone) }()

	var runs sync.WaitGroup
	var abandonedMu sync.Mutex
	var abandoned []int64
	for ctx.Err() == nil {
		// The wait when nothing is due starts before the claim reads the time: a clock that moves on
		// during the claim then always wakes the poller to claim again.
		wake := e.clock.After(e.cfg.Idle)
		now := e.clock.DatabaseNow()
		claimed, err := e.claim(ctx, now)
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
		e.signalIdle(now)
		select {
		case <-ctx.Done():
		case <-wake:
		case <-e.freed:
		}
	}
	runs.Wait()
	close(finished)
	<-storeDone
	if len(abandoned) > 0 {
		bg, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := e.runner.sys.Queries().CheckReleaseLeases(bg, dbsqlc.CheckReleaseLeasesParams{Ids: abandoned,
			Owner: e.cfg.Owner}); err != nil {
			e.log.Warn("give back leases of abandoned runs", "checks", len(abandoned), "err", err)
		}
	}
}

// probe runs one claimed check and returns the run to store. It returns false when ctx ended during
// the run: the outcome is then the cancellation, not the target's.
func (e *Engine) probe(ctx context.Context, c dbsqlc.CheckClaimDueRow) (Run, bool) {
	started := e.clock.Now()
	out := e.runner.probe(ctx, c.TenantID, checks.Check{ID: c.ID, Kind: c.Kind, Target: c.Target,
		Timeout: time.Duration(c.TimeoutSeconds) * time.Second, Settings: c.Settings}, c.Secrets, c.SecretsStaging)
	if ctx.Err() != nil {
		return Run{}, false
	}
	now := e.clock.Now()
	e.m.runs.WithLabelValues(c.Kind, status(out.Up)).Inc()
	e.m.duration.WithLabelValues(c.Kind).Observe(now.Sub(started).Seconds())
	r := newRun(c, started, out)
	r.next = nextSlot(c.NextRunAt, time.Duration(c.IntervalSeconds)*time.Second, now)
	return r, true
}

// claim leases as many checks due at now (nil: the database's clock) as the concurrency limits allow.
func (e *Engine) claim(ctx context.Context, now *time.Time) ([]dbsqlc.CheckClaimDueRow, error) {
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
	claimed, err := e.runner.sys.Queries().CheckClaimDue(ctx, dbsqlc.CheckClaimDueParams{Now: now, Location: loc,
		BusyTenants: busy, MaxRows: int32(free), Owner: e.cfg.Owner, GraceSeconds: int32(e.cfg.LeaseGrace / time.Second)})
	if err != nil {
		return nil, fmt.Errorf("claim due checks: %w", err)
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
	e.finished++
	e.mu.Unlock()
	select {
	case e.freed <- struct{}{}:
	default:
	}
}

// storeLoop stores finished runs in batches until finished is closed: at each flush (every
// FlushEvery) everything that has finished by then, and at once when 500 are waiting.
func (e *Engine) storeLoop(finished <-chan Run, flushes <-chan time.Time) {
	var batch []Run
	stored := 0
	flush := func() {
		if len(batch) > 0 {
			e.store(batch)
			stored += len(batch)
			batch = batch[:0]
			e.testSignals.stored.signal(stored)
		}
	}
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
		case <-flushes:
			for more := true; more; { // runs that finished before the flush go with it
				select {
				case r, ok := <-finished:
					if !ok {
						flush()
						return
					}
					batch = append(batch, r)
				default:
					more = false
				}
			}
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

// Clock is the engine's time. Production runs on the real clock; tests drive a fake one, stepping the
// engine through slots without waiting.
type Clock interface {
	// Now stamps runs and places their next slots.
	Now() time.Time
	// DatabaseNow is the time a claim compares slots and leases with. Nil means the database's now(), so
	// that the database, not the clocks of the replicas, decides what is due: the real clock answers nil.
	DatabaseNow() *time.Time
	// After fires once d has passed: the wait when nothing is due.
	After(d time.Duration) <-chan time.Time
	// Tick fires every d until stop is called: when finished runs are stored.
	Tick(d time.Duration) (ticks <-chan time.Time, stop func())
}

// realClock is the Clock of production.
type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) DatabaseNow() *time.Time                { return nil }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

func (realClock) Tick(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

// testSignals are the moments a test waits for instead of sleeping (river's testSignals pattern). Each
// is a channel in tests and nil in production, where signalling does nothing.
type testSignals struct {
	// idle: the engine claimed at a clock's time, found nothing more, and has nothing running.
	idle testSignal[idleSignal]
	// stored: how many runs the store loop has stored (or discarded) since the engine started.
	stored testSignal[int]
}

type idleSignal struct {
	at       time.Time
	finished int // runs finished since the engine started
}

func (s *testSignals) init() {
	s.idle = make(testSignal[idleSignal], 1000)
	s.stored = make(testSignal[int], 1000)
}

// testSignal is a channel the engine signals on in tests; nil, it does nothing.
type testSignal[T any] chan T

// signal sends v without ever blocking the engine: a test that lets 1,000 signals pile up is broken,
// and says so.
func (s testSignal[T]) signal(v T) {
	if s == nil {
		return
	}
	select {
	case s <- v:
	default:
		panic("poller: test signal channel full")
	}
}

// signalIdle signals idle when the engine claimed at the clock's time now and has nothing running.
func (e *Engine) signalIdle(now *time.Time) {
	if e.testSignals.idle == nil || now == nil {
		return
	}
	e.mu.Lock()
	running, finished := e.running, e.finished
	e.mu.Unlock()
	if running == 0 {
		e.testSignals.idle.signal(idleSignal{at: *now, finished: finished})
	}
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
