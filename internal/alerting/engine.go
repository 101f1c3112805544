package alerting

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/service"
)

// Config says how an alerter claims and evaluates rules. A field left zero takes DefaultConfig's value.
type Config struct {
	// Batch is the most rules one claim takes: they are evaluated together, a statement per kind, and
	// written in one transaction.
	Batch int
	// Lease is how long a claimed rule stays an alerter's: one that dies mid-batch loses its rules to
	// the others when their leases expire.
	Lease time.Duration
	// Idle is the longest the alerter waits when nothing is due.
	Idle time.Duration
	// Horizon is how far ahead the occurrences of recurring maintenance windows exist; the alerter
	// extends them every ExtendEvery.
	Horizon     time.Duration
	ExtendEvery time.Duration
	// Owner names this alerter in leases; empty means host name, process id and a random suffix.
	Owner string
}

// DefaultConfig is the alerter's configuration when nothing is set: the only copy of its defaults.
func DefaultConfig() Config {
	return Config{Batch: 500, Lease: 30 * time.Second, Idle: time.Second, Horizon: 30 * day, ExtendEvery: time.Hour}
}

// AddFlags registers the alerter role's flags on fs, with DefaultConfig's values as their defaults.
func (c *Config) AddFlags(fs *flag.FlagSet) {
	d := DefaultConfig()
	fs.IntVar(&c.Batch, "alerter-batch", d.Batch,
		"alerter role: most rules evaluated together, one statement per kind and one transaction")
	fs.DurationVar(&c.Lease, "alerter-lease", d.Lease,
		"alerter role: how long a claimed rule stays this alerter's; a dead alerter's rules go to the others after it")
}

// Validate refuses a configuration that cannot work, naming the flag (or the field) to fix.
func (c Config) Validate() error {
	switch {
	case c.Batch < 0 || c.Batch > 10000:
		return errors.New("--alerter-batch must be from 1 to 10000 (0: the default)")
	case c.Lease < 0 || (c.Lease > 0 && c.Lease < time.Second):
		return errors.New("--alerter-lease must be at least 1s (0: the default)")
	case c.Idle < 0, c.Horizon < 0, c.ExtendEvery < 0:
		return errors.New("alerter: Idle, Horizon and ExtendEvery must be zero (the default) or more")
	}
	return nil
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Batch <= 0 {
		c.Batch = d.Batch
	}
	if c.Lease <= 0 {
		c.Lease = d.Lease
	}
	if c.Idle <= 0 {
		c.Idle = d.Idle
	}
	if c.Horizon <= 0 {
		c.Horizon = d.Horizon
	}
	if c.ExtendEvery <= 0 {
		c.ExtendEvery = d.ExtendEvery
	}
	if c.Owner == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		c.Owner = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
	}
	return c
}

// Engine is the alerter: it claims due rules in batches, evaluates them set-based and writes what
// changed. Any number of engines may share a database: leases keep each slot of a rule to one of them.
// It is a service.Service: Start runs Run until Stop.
type Engine struct {
	cfg   Config
	sys   *db.System
	log   *slog.Logger
	m     *metrics
	loop  service.Loop
	clock Clock
	// testSignals are nil but in tests.
	testSignals testSignals

	mu         sync.Mutex
	nextExtend time.Time
}

var _ service.Service = (*Engine)(nil)

// New returns an alerter doing its system work through sys.
func New(cfg Config, sys *db.System, log *slog.Logger, reg prometheus.Registerer) *Engine {
	e := &Engine{cfg: cfg.withDefaults(), sys: sys, log: log, m: newMetrics(reg), clock: realClock{}}
	e.loop.Run = e.Run
	return e
}

// Start runs the alerter in the background until Stop or until ctx ends.
func (e *Engine) Start(ctx context.Context) error { return e.loop.Start(ctx) }

// Stop stops the alerter and returns once the batch under way is written or given back.
func (e *Engine) Stop() { e.loop.Stop() }

// Run evaluates until ctx ends.
func (e *Engine) Run(ctx context.Context) {
	for ctx.Err() == nil {
		// The wait when nothing is due starts before the claim reads the time: a clock that moves on
		// during the claim then always wakes the alerter to claim again.
		wake := e.clock.After(e.cfg.Idle)
		now := e.clock.DatabaseNow()
		n, err := e.RunOnce(ctx, now)
		if err != nil && ctx.Err() == nil {
			e.log.Error("evaluate alert rules", "err", err)
		}
		if n == e.cfg.Batch && err == nil {
			continue // more may be due
		}
		if err := e.extendWindows(ctx); err != nil && ctx.Err() == nil {
			e.log.Error("extend maintenance windows", "err", err)
		}
		if now != nil {
			e.testSignals.idle.signal(*now)
		}
		select {
		case <-ctx.Done():
		case <-wake:
		}
	}
}

// RunOnce claims one batch of rules due at now (nil: the database's clock), evaluates and writes it,
// and returns how many rules it claimed.
func (e *Engine) RunOnce(ctx context.Context, now *time.Time) (int, error) {
	claimed, err := e.sys.Queries().AlertRuleClaimDue(ctx, dbsqlc.AlertRuleClaimDueParams{Now: now,
		MaxRows: int32(e.cfg.Batch), Owner: e.cfg.Owner, LeaseSeconds: int32(e.cfg.Lease / time.Second)})
	if err != nil {
		return 0, fmt.Errorf("claim due rules: %w", err)
	}
	if len(claimed) == 0 {
		return 0, nil
	}
	started := time.Now()
	err = e.evaluate(ctx, claimed)
	e.m.batch.Observe(time.Since(started).Seconds())
	if err != nil {
		if ctx.Err() != nil {
			e.release(claimed)
		}
		return len(claimed), err
	}
	return len(claimed), nil
}

// release gives back the leases of a batch that was not written (the alerter is stopping), so that
// another alerter takes the rules at once.
func (e *Engine) release(claimed []dbsqlc.AlertRuleClaimDueRow) {
	ids := make([]int64, len(claimed))
	for i, r := range claimed {
		ids[i] = r.ID
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.sys.Queries().AlertRuleReleaseLeases(ctx, dbsqlc.AlertRuleReleaseLeasesParams{Ids: ids, Owner: e.cfg.Owner}); err != nil {
		e.log.Warn("give back the leases of a batch not evaluated", "rules", len(ids), "err", err)
	}
}

// evaluate evaluates a claimed batch and writes it.
func (e *Engine) evaluate(ctx context.Context, claimed []dbsqlc.AlertRuleClaimDueRow) error {
	now := e.clock.Now()
	rules := make([]*claimedRule, len(claimed))
	byID := make(map[int64]*claimedRule, len(claimed))
	byKind := map[string][]int64{}
	var tenants []uuid.UUID
	for i, r := range claimed {
		c := newClaimedRule(r)
		rules[i], byID[r.ID] = &c, &c
		byKind[r.Kind] = append(byKind[r.Kind], r.ID)
		if !slices.Contains(tenants, r.TenantID) {
			tenants = append(tenants, r.TenantID)
		}
	}
	obs, refused, err := e.observe(ctx, byKind, now)
	if err != nil {
		return err
	}
	m, err := loadMutes(ctx, e.sys.Queries(), tenants, now)
	if err != nil {
		return err
	}
	var plans []*planned
	for _, o := range obs {
		r := byID[o.RuleID]
		if r == nil || slices.Contains(refused, o.RuleID) {
			continue
		}
		plans = append(plans, decide(r, o, m, now))
	}
	var w written
	err = e.sys.InTx(ctx, func(q *dbsqlc.Queries) error {
		var err error
		w, err = write(ctx, q, e.cfg.Owner, rules, plans, e.clock.Now(), now)
		return err
	})
	if err != nil {
		return err
	}
	for _, r := range rules {
		e.m.evaluated.WithLabelValues(r.Kind).Inc()
		e.m.lag.Observe(now.Sub(r.NextEvalAt).Seconds())
	}
	for state, n := range w.transitions {
		e.m.transitions.WithLabelValues(string(state)).Add(float64(n))
	}
	e.m.notifications.Add(float64(w.messages))
	if lost := len(rules) - w.rules; lost > 0 {
		e.m.lost.Add(float64(lost))
		e.log.Warn("rules evaluated after their lease was taken over; their results are discarded", "rules", lost)
	}
	e.testSignals.evaluated.signal(batchSignal{rules: len(rules), written: w})
	return nil
}

// observe runs the evaluation statement of each kind over its rules of the batch, and adds the open
// alerts the statements no longer answered (their things are gone, or the rule was disabled). A rule
// whose evaluation the database refuses (a statement error tied to its data) is evaluated alone and,
// refused again, left out: its slot moves on without a decision, and the refusal is logged.
func (e *Engine) observe(ctx context.Context, byKind map[string][]int64, now time.Time) ([]observation, []int64, error) {
	var all []observation
	var refused []int64
	var ids []int64
	at := []time.Time{now}
	for _, name := range Names() {
		rules := byKind[name]
		if len(rules) == 0 {
			continue
		}
		ids = append(ids, rules...)
		k, _ := Lookup(name)
		rows, err := e.evaluateKind(ctx, k, rules, at)
		if err != nil && !db.IsUnavailable(err) && ctx.Err() == nil {
			rows = nil
			for _, id := range rules {
				one, err := e.evaluateKind(ctx, k, []int64{id}, at)
				if err != nil {
					if db.IsUnavailable(err) || ctx.Err() != nil {
						return nil, nil, fmt.Errorf("evaluate %s rules: %w", name, err)
					}
					e.m.refused.Inc()
					e.log.Error("alert rule refused by the database; its slot moves on", "rule_id", id, "err", err)
					refused = append(refused, id)
					continue
				}
				rows = append(rows, one...)
			}
		} else if err != nil {
			return nil, nil, fmt.Errorf("evaluate %s rules: %w", name, err)
		}
		obs, err := decodeObservations(rows)
		if err != nil {
			return nil, nil, err
		}
		all = append(all, obs...)
	}
	q := e.sys.Queries()
	open, err := q.AlertListOpen(ctx, ids)
	if err != nil {
		return nil, nil, fmt.Errorf("read open alerts: %w", err)
	}
	openObs, err := decodeObservations(open)
	if err != nil {
		return nil, nil, err
	}
	seen := make(map[alertKey]bool, len(all))
	for _, o := range all {
		seen[alertKey{o.RuleID, o.Fingerprint}] = true
	}
	kinds := map[int64]string{}
	for name, rules := range byKind {
		for _, id := range rules {
			kinds[id] = name
		}
	}
	for _, o := range openObs {
		if seen[alertKey{o.RuleID, o.Fingerprint}] || slices.Contains(refused, o.RuleID) {
			continue
		}
		// The thing is no longer answered: for most kinds its value is unknown and its condition does
		// not hold; a log rule's host simply had no matching line.
		if k, ok := Lookup(kinds[o.RuleID]); ok {
			if v := k.Unanswered(); v != nil {
				o.Value = ValueOf(*v)
			}
		}
		o.At = now
		all = append(all, o)
	}
	return all, refused, nil
}

// evaluateKind runs the evaluation statement of kind k over rules at the times, in a transaction of its
// own without JIT compilation (AlertEvalBegin).
func (e *Engine) evaluateKind(ctx context.Context, k Kind, rules []int64, at []time.Time) ([][]byte, error) {
	var rows [][]byte
	err := e.sys.InTx(ctx, func(q *dbsqlc.Queries) error {
		if err := q.AlertEvalBegin(ctx); err != nil {
			return err
		}
		var err error
		rows, err = k.Evaluate(ctx, q, rules, at)
		return err
	})
	return rows, err
}

// Clock is the alerter's time. Production runs on the real clock; tests drive a fake one.
type Clock interface {
	// Now is the time a batch is evaluated at and stamps what it writes.
	Now() time.Time
	// DatabaseNow is the time a claim compares slots and leases with. Nil means the database's now(), so
	// that the database, not the clocks of the replicas, decides what is due: the real clock answers nil.
	DatabaseNow() *time.Time
	// After fires once d has passed: the wait when nothing is due.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) DatabaseNow() *time.Time                { return nil }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// testSignals are the moments a test waits for instead of sleeping (river's testSignals pattern). Each
// is a channel in tests and nil in production, where signalling does nothing.
type testSignals struct {
	// idle: the alerter claimed at a clock's time, found nothing more due, and waits.
	idle testSignal[time.Time]
	// evaluated: a batch was evaluated and written.
	evaluated testSignal[batchSignal]
}

type batchSignal struct {
	rules   int
	written written
}

func (s *testSignals) init() {
	s.idle = make(testSignal[time.Time], 1000)
	s.evaluated = make(testSignal[batchSignal], 1000)
}

// testSignal is a channel the alerter signals on in tests; nil, it does nothing.
type testSignal[T any] chan T

// signal sends v without ever blocking the alerter: a test that lets 1,000 signals pile up is broken,
// and says so.
func (s testSignal[T]) signal(v T) {
	if s == nil {
		return
	}
	select {
	case s <- v:
	default:
		panic("alerting: test signal channel full")
	}
}

type metrics struct {
	evaluated     *prometheus.CounterVec
	transitions   *prometheus.CounterVec
	notifications prometheus.Counter
	lag           prometheus.Histogram
	batch         prometheus.Histogram
	lost          prometheus.Counter
	refused       prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		evaluated: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "infrawatch_alerter_rules_evaluated_total",
			Help: "Rule evaluations, by kind."}, []string{"kind"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "infrawatch_alerter_transitions_total",
			Help: "Alert state changes written, by the state entered."}, []string{"state"}),
		notifications: prometheus.NewCounter(prometheus.CounterOpts{Name: "infrawatch_alerter_notifications_total",
			Help: "Outbox rows enqueued (one per message and channel)."}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "infrawatch_alerter_lag_seconds",
			Help:    "How long after its slot a rule was evaluated.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60}}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "infrawatch_alerter_batch_seconds",
			Help: "Time to evaluate and write one batch of rules.", Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10)}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{Name: "infrawatch_alerter_lost_leases_total",
			Help: "Rule evaluations discarded because another alerter took their lease over."}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "infrawatch_alerter_refused_rules_total",
			Help: "Rule evaluations the database refused; their slots moved on without a decision."}),
	}
	if reg != nil {
		reg.MustRegister(m.evaluated, m.transitions, m.notifications, m.lag, m.batch, m.lost, m.refused)
	}
	return m
}
