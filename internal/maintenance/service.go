// Package maintenance keeps storage in shape in the background: every minute it refreshes the rollups
// of the postgres flavor, and every hour it creates partitions ahead of time, drops data past its
// retention and keeps TimescaleDB's compression and refresh policies in step with the configuration.
// Every transaction takes a Postgres advisory lock, so with several replicas only one works at a time.
// It never serves tenant requests.
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

// lockTimeout bounds each wait of a storage pass for a table lock. Creating or dropping a partition locks
// its parent, and ingest queues behind a pass that waits; a pass that gives up tries again an Interval
// later, well before the partitions made Ahead run out.
const lockTimeout = 10 * time.Second

// Config says how often maintenance runs, how far ahead it prepares and how long data is kept.
type Config struct {
	// Interval between storage passes (partitions, retention, policies). Zero means one hour; each
	// sleep adds up to 10 % of jitter.
	Interval time.Duration
	// RefreshInterval between rollup refreshes (postgres flavor; TimescaleDB's own policies refresh the
	// timescale flavor). Zero means one minute.
	RefreshInterval time.Duration
	// RefreshLag is how long after its end a bucket is first materialized, so that the stragglers of a
	// bucket arrive before it is rolled up (later ones are re-aggregated at the next refresh). Until
	// then the rollup views aggregate it on the fly. Zero means one minute.
	RefreshLag time.Duration
	// Ahead is how far into the future partitions must exist. Zero means 7 days.
	Ahead time.Duration
	// Timeout bounds one storage pass, and one refresh. Zero means 5 minutes.
	Timeout time.Duration
	// CompressAfter is the age after which TimescaleDB compresses the chunks of the raw tables
	// (timescale flavor). Zero means 7 days.
	CompressAfter time.Duration
	// Retention says how long each kind of data is kept.
	Retention RetentionConfig
}

func (c Config) withDefaults() Config {
	if c.Interval == 0 {
		c.Interval = time.Hour
	}
	if c.RefreshInterval == 0 {
		c.RefreshInterval = time.Minute
	}
	if c.RefreshLag == 0 {
		c.RefreshLag = time.Minute
	}
	if c.Ahead == 0 {
		c.Ahead = 7 * 24 * time.Hour
	}
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Minute
	}
	if c.CompressAfter == 0 {
		c.CompressAfter = 7 * 24 * time.Hour
	}
	c.Retention = c.Retention.withDefaults()
	return c
}

// Validate reports settings that cannot work.
func (c Config) Validate() error {
	if c.Interval < 0 || c.RefreshInterval < 0 || c.RefreshLag < 0 || c.Ahead < 0 || c.Timeout < 0 || c.CompressAfter < 0 {
		return errors.New("maintenance: intervals, lag, ahead, timeout and compress-after must not be negative")
	}
	if c = c.withDefaults(); c.Ahead < 2*c.Interval {
		return fmt.Errorf("maintenance: ahead (%s) must be at least twice the interval (%s)", c.Ahead, c.Interval)
	}
	return c.Retention.validate()
}

// Service runs maintenance until its context ends.
type Service struct {
	cfg  Config
	pool *pgxpool.Pool
	log  *slog.Logger
}

// New returns a maintenance service working through the owner's pool.
func New(cfg Config, pool *pgxpool.Pool, log *slog.Logger) *Service {
	return &Service{cfg: cfg.withDefaults(), pool: pool, log: log}
}

// Run does a storage pass and a rollup refresh at once, then each on its own interval, until ctx ends.
// A storage pass that found the lock taken (another replica refreshing, say) is tried again at the next
// refresh rather than an Interval later.
func (s *Service) Run(ctx context.Context) {
	now := time.Now()
	nextPass, nextRefresh := now, now
	for {
		if !time.Now().Before(nextPass) {
			ran, err := s.RunOnce(ctx)
			s.report(ctx, "storage pass", ran, err)
			if ran || err != nil {
				nextPass = time.Now().Add(jittered(s.cfg.Interval))
			} else {
				nextPass = time.Now().Add(jittered(s.cfg.RefreshInterval))
			}
		}
		if !time.Now().Before(nextRefresh) {
			ran, err := s.RefreshOnce(ctx)
			s.report(ctx, "rollup refresh", ran, err)
			nextRefresh = time.Now().Add(jittered(s.cfg.RefreshInterval))
		}
		next := nextPass
		if nextRefresh.Before(next) {
			next = nextRefresh
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(next)):
		}
	}
}

func (s *Service) report(ctx context.Context, what string, ran bool, err error) {
	switch {
	case err != nil && ctx.Err() == nil:
		s.log.Error("maintenance "+what+" failed", "err", err)
	case err == nil && !ran:
		s.log.Debug("maintenance " + what + " skipped: another replica holds the lock")
	}
}

// jittered adds up to 10 % to d, so that replicas started together drift apart.
func jittered(d time.Duration) time.Duration {
	return d + time.Duration(rand.Int64N(int64(d)/10+1))
}

// RunOnce does one storage pass if no other replica holds the lock; ran says whether it did. In one
// transaction it creates partitions ahead (postgres flavor), moves TimescaleDB's policies to the
// configuration (timescale flavor), then drops what is older than its retention.
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
		if err := q.MaintenanceSetLockTimeout(ctx, lockTimeout.Milliseconds()); err != nil {
			return fmt.Errorf("set lock timeout: %w", err)
		}
		made, err := q.PartitionsEnsureAhead(ctx, s.cfg.Ahead)
		if err != nil {
			return fmt.Errorf("create partitions ahead: %w", err)
		}
		for _, m := range made {
			if m.Created > 0 {
				s.log.Info("created partitions", "table", m.TableName, "count", m.Created)
			}
		}
		// Policies first: a refresh window must never reach data that retention is about to drop.
		if err := s.applyPolicies(ctx, q); err != nil {
			return err
		}
		return s.applyRetention(ctx, q)
	})
	return ran, err
}
