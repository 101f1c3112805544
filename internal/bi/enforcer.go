package bi

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/service"
)

// Enforcer ends the sessions of BI logins that are past their tenant's limits, every EnforceInterval:
// a statement past the statement timeout is cancelled, a session idle in a transaction past the idle
// timeout or holding an advisory lock is terminated (infrawatch.bi_enforce_limits). The timeouts set on
// a login are defaults a session may change for itself (SET statement_timeout = 0); this makes them
// limits, a second or so late. It also drops the logins that could only be disabled when revoked.
//
// Any number of replicas may run one: ending a session twice does no harm, so they take no lock.
type Enforcer struct {
	sys      *db.System
	log      *slog.Logger
	interval time.Duration
	clock    Clock
	loop     service.Loop
	signals  testSignals
}

var _ service.Service = (*Enforcer)(nil)

// Clock is the enforcer's time; tests drive one by hand.
type Clock interface {
	// DatabaseNow is the time sessions are measured against. Nil means the database's now(), so the
	// database's clock, which stamped the sessions, decides: the real clock answers nil.
	DatabaseNow() *time.Time
	// After fires once d has passed: the wait between passes.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) DatabaseNow() *time.Time                { return nil }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// testSignals tell a test what the enforcer did, so that it waits for that instead of for time to pass.
// They are nil, and silent, outside tests.
type testSignals struct {
	passed signal[Pass] // a pass ended
}

// signal is a channel a test reads; sending never blocks the enforcer.
type signal[T any] chan T

func (s signal[T]) send(v T) {
	if s == nil {
		return
	}
	select {
	case s <- v:
	default:
		panic("bi: a test signal's buffer is full; the test does not read it")
	}
}

// Ended is one session the enforcer ended.
type Ended struct {
	Login  string
	PID    int32
	Action string // cancel (the statement) or terminate (the session)
	Reason string
}

// Pass is what one pass did.
type Pass struct {
	Ended   []Ended
	Dropped []string // logins dropped now that could only be disabled before
	Err     error
}

// NewEnforcer returns an enforcer doing system work through sys, a pass every cfg.EnforceInterval.
func NewEnforcer(cfg Config, sys *db.System, log *slog.Logger) *Enforcer {
	e := &Enforcer{sys: sys, log: log, interval: cfg.withDefaults().EnforceInterval, clock: realClock{}}
	e.loop.Run = e.run
	return e
}

// Start makes a pass at once, then one every interval, until Stop.
func (e *Enforcer) Start(ctx context.Context) error { return e.loop.Start(ctx) }

// Stop ends the passes and returns once the current one has ended.
func (e *Enforcer) Stop() { e.loop.Stop() }

func (e *Enforcer) run(ctx context.Context) {
	for {
		pass := e.RunOnce(ctx)
		if pass.Err != nil && ctx.Err() == nil {
			e.log.Error("BI enforcer pass failed", "err", pass.Err)
		}
		e.signals.passed.send(pass)
		select {
		case <-ctx.Done():
			return
		case <-e.clock.After(e.interval):
		}
	}
}

// RunOnce makes one pass: it ends the sessions past their limits at the clock's database time and
// drops the leftover logins it can, logging each.
func (e *Enforcer) RunOnce(ctx context.Context) Pass {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var pass Pass
	rows, err := e.sys.Queries().BiEnforceLimits(ctx, e.clock.DatabaseNow())
	if err != nil {
		pass.Err = fmt.Errorf("end BI sessions past their limits: %w", err)
		return pass
	}
	for _, r := range rows {
		pass.Ended = append(pass.Ended, Ended{Login: r.Login, PID: r.Pid, Action: r.Action, Reason: r.Reason})
		e.log.Info("BI session ended", "login", r.Login, "pid", r.Pid, "action", r.Action, "reason", r.Reason)
	}
	if pass.Dropped, err = e.sys.Queries().BiDropLeftovers(ctx); err != nil {
		pass.Err = fmt.Errorf("drop leftover BI logins: %w", err)
	}
	for _, login := range pass.Dropped {
		e.log.Info("leftover BI login dropped", "login", login)
	}
	return pass
}
