// Package maintenance keeps storage in shape in the background: it creates partitions ahead of time in
// the postgres flavor, and later applies retention and refreshes rollups. Every pass takes a Postgres
// advisory lock, so with several replicas only one works at a time; it never serves tenant requests.
package maintenance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// LockKey identifies the maintenance advisory lock ("iwmaint" in ASCII); tests take it to play another replica.
const LockKey int64 = 0x6977_6d61_696e_74

// Config says how often maintenance runs and how far ahead it prepares.
type Config struct {
	// Interval between passes. Zero means one hour; each sleep adds up to 10 % of jitter.
	Interval time.Duration
	// Ahead is how far into the future partitions must exist. Zero means 7 days.
	Ahead time.Duration
	// Timeout bounds one pass. Zero means 5 minutes.
	Timeout time.Duration
}

func (c Config) withDefaults() Config {
	if c.Interval == 0 {
		c.Interval = time.Hour
	}
	if c.Ahead == 0 {
		c.Ahead = 7 * 24 * time.Hour
	}
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Minute
	}
	return c
}

// Validate reports settings that cannot work.
func (c Config) Validate() error {
	if c.Interval < 0 || c.Ahead < 0 || c.Timeout < 0 {
		return errors.New("maintenance: interval, ahead and timeout must not be negative")
	}
	if c = c.withDefaults(); c.Ahead < 2*c.Interval {
		return fmt.Errorf("maintenance: ahead (%s) must be at least twice the interval (%s)", c.Ahead, c.Interval)
	}
	return nil
}

// Service runs maintenance passes until its context ends.
type Service struct {
	cfg  Config
	pool *pgxpool.Pool
	log  *slog.Logger
}

// New returns a maintenance service working through the owner's pool.
func New(cfg Config, pool *pgxpool.Pool, log *slog.Logger) *Service {
	return &Service{cfg: cfg.withDefaults(), pool: pool, log: log}
}

// Run does a pass at once and then one every interval, until ctx ends.
func (s *Service) Run(ctx context.Context) {
	for {
		if ran, err := s.RunOnce(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("maintenance pass failed", "err", err)
		} else if !ran {
			s.log.Debug("maintenance pass skipped: another replica holds the lock")
		}
		jitter := time.Duration(rand.Int64N(int64(s.cfg.Interval)/10 + 1))
		select {
		case <-ctx.Done():
			return
		case <-time.After(s.cfg.Interval + jitter):
		}
	}
}

// RunOnce does one pass if no other replica is doing one; ran says whether it did.
func (s *Service) RunOnce(ctx context.Context) (ran bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		q := dbsqlc.New(tx)
		locked, err := q.MaintenanceTryLock(ctx, LockKey)
		if err != nil || !locked {
			return err
		}
		ran = true
		made, err := q.PartitionsEnsureAhead(ctx, s.cfg.Ahead)
		if err != nil {
			return fmt.Errorf("create partitions ahead: %w", err)
		}
		for _, m := range made {
			if m.Created > 0 {
				s.log.Info("created partitions", "table", m.TableName, "count", m.Created)
			}
		}
		return nil
	})
	return ran, err
}
