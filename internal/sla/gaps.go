package sla

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/service"
)

// GapConfig says how the scheduler settles poller gaps (app.check_gaps).
type GapConfig struct {
	// Lag is how far behind now gaps are settled: a result vouches for up to twice its check's
	// interval, and results of the last minutes may still arrive; reads compute the newer tail from
	// the raw results.
	Lag time.Duration
	// Step is the stretch of time one transaction settles.
	Step time.Duration
	// Interval between passes once settling caught up.
	Interval time.Duration
}

// DefaultGapConfig is the only copy of the defaults.
func DefaultGapConfig() GapConfig {
	return GapConfig{Lag: time.Hour, Step: 6 * time.Hour, Interval: 10 * time.Minute}
}

// SettleGapsOnce records the poller gaps of every check for one stretch after the settled point, up to
// upTo at most, and moves the settled point; it says where settling stands and whether it did
// anything (false: caught up with upTo, or another scheduler holds the lock).
func SettleGapsOnce(ctx context.Context, sys *db.System, upTo time.Time, step time.Duration) (settled time.Time, ran bool, err error) {
	err = sys.InTx(ctx, func(q *dbsqlc.Queries) error {
		lock, err := q.CheckGapSettledLock(ctx)
		if errors.Is(err, db.ErrNotFound) {
			return nil // another scheduler settles
		}
		if err != nil {
			return fmt.Errorf("lock the settled point of poller gaps: %w", err)
		}
		from := lock.SettledTo
		settled = from
		if !lock.Started { // a new database: settling begins with the oldest check
			first, err := q.CheckGapFirstCheck(ctx)
			if err != nil {
				return fmt.Errorf("find the oldest check: %w", err)
			}
			if !first.Any {
				return nil
			}
			from, settled = first.CreatedAt, time.Time{}
		}
		to := from.Add(step)
		if to.After(upTo) {
			to = upTo
		}
		if !to.After(from) {
			return nil
		}
		if _, err := q.CheckGapSettle(ctx, dbsqlc.CheckGapSettleParams{FromTime: from, ToTime: to}); err != nil {
			return fmt.Errorf("settle the poller gaps of %s to %s: %w", from.Format(time.RFC3339), to.Format(time.RFC3339), err)
		}
		if err := q.CheckGapSetSettled(ctx, to); err != nil {
			return fmt.Errorf("move the settled point of poller gaps: %w", err)
		}
		settled, ran = to, true
		return nil
	})
	return settled, ran, err
}

// GapSettler is the scheduler role's worker that settles poller gaps; replicas take turns under the
// settled point's row lock.
type GapSettler struct {
	cfg   GapConfig
	sys   *db.System
	log   *slog.Logger
	clock Clock
	loop  service.Loop
	// Settled, when not nil, receives the settled point after each pass that moved it (tests).
	Settled chan time.Time
}

// Clock is what workers read the time from and sleep on; tests move one by hand.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type wallClock struct{}

func (wallClock) Now() time.Time                         { return time.Now() }
func (wallClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

var _ service.Service = (*GapSettler)(nil)

// NewGapSettler returns the worker; cfg's zero fields take the defaults.
func NewGapSettler(cfg GapConfig, sys *db.System, log *slog.Logger) *GapSettler {
	def := DefaultGapConfig()
	if cfg.Lag <= 0 {
		cfg.Lag = def.Lag
	}
	if cfg.Step <= 0 {
		cfg.Step = def.Step
	}
	if cfg.Interval <= 0 {
		cfg.Interval = def.Interval
	}
	g := &GapSettler{cfg: cfg, sys: sys, log: log, clock: wallClock{}}
	g.loop.Run = g.run
	return g
}

// SetClock replaces the wall clock (tests).
func (g *GapSettler) SetClock(c Clock) { g.clock = c }

// Start settles until Stop.
func (g *GapSettler) Start(ctx context.Context) error { return g.loop.Start(ctx) }

// Stop ends the work and returns once it has ended.
func (g *GapSettler) Stop() { g.loop.Stop() }

func (g *GapSettler) run(ctx context.Context) {
	for {
		settled, ran, err := SettleGapsOnce(ctx, g.sys, g.clock.Now().Add(-g.cfg.Lag), g.cfg.Step)
		if err != nil && ctx.Err() == nil {
			g.log.Error("settling poller gaps failed", "err", db.Redact(err))
		}
		if ran && g.Settled != nil {
			g.Settled <- settled
		}
		wait := g.cfg.Interval
		if ran {
			wait = 0 // catching up: the next stretch at once
		}
		if wait == 0 {
			if ctx.Err() != nil {
				return
			}
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-g.clock.After(wait):
		}
	}
}
