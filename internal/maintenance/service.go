// Package maintenance keeps storage in shape in the background: every minute it refreshes the rollups
// of the postgres flavor and checks every storage job (jobs.go), running TimescaleDB's refresh and
// compression jobs itself when TimescaleDB's runs of them fail; every hour it creates partitions ahead
// of time, drops data past its retention and keeps TimescaleDB's compression and refresh policies in
// step with the configuration. All of it runs under a Postgres advisory lock, so with several replicas
// only one works at a time. It never serves tenant requests; Health tells any process how the storage
// jobs are doing.
package maintenance

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/service"
)

// LockKey identifies the maintenance advisory lock ("iwmaint" in ASCII); tests take it to play another replica.
const LockKey int64 = 0x6977_6d61_696e_74

// lockTimeout bounds each wait of a storage pass for a table lock. Creating or dropping a partition locks
// its parent, and ingest queues behind a pass that waits; a pass that gives up tries again an Interval
// later, well before the partitions made Ahead run out.
const lockTimeout = 10 * time.Second

// Config says how often maintenance runs, how far ahead it prepares and how long data is kept. Zero
// fields take DefaultConfig's values.
type Config struct {
	// Interval between storage passes (partitions, retention, policies); each sleep adds up to 10 % of
	// jitter.
	Interval time.Duration
	// RefreshInterval between rollup refreshes (postgres flavor; TimescaleDB's own policies refresh the
	// timescale flavor).
	RefreshInterval time.Duration
	// RefreshLag is how long after its end a bucket is first materialized, so that the stragglers of a
	// bucket arrive before it is rolled up (later ones are re-aggregated at the next refresh). Until
	// then the rollup views aggregate it on the fly.
	RefreshLag time.Duration
	// Ahead is how far into the future partitions must exist.
	Ahead time.Duration
	// Timeout bounds one storage pass, and one refresh.
	Timeout time.Duration
	// CompressAfter is the age after which TimescaleDB compresses the chunks of the raw tables
	// (timescale flavor; --compress-after).
	CompressAfter time.Duration
	// Retention says how long each kind of data is kept (--retention-*).
	Retention RetentionConfig
	// TimescaleJobs says who runs TimescaleDB's refresh and compression jobs (--timescale-jobs; timescale
	// flavor).
	TimescaleJobs Mode
}

// DefaultConfig holds the defaults of maintenance, the documented ones of the retention flags among
// them; it is their only copy (ingest refuses samples older than the raw retention it says).
func DefaultConfig() Config {
	return Config{
		Interval:        time.Hour,
		RefreshInterval: time.Minute,
		RefreshLag:      time.Minute,
		Ahead:           7 * day,
		Timeout:         5 * time.Minute,
		CompressAfter:   7 * day,
		TimescaleJobs:   ModeAuto,
		Retention: RetentionConfig{
			Samples: 30 * day, Samples5m: 90 * day, Samples1h: 730 * day, Samples1d: 1825 * day,
			CheckResults: 30 * day, CheckResults1h: 730 * day, CheckResults1d: 1825 * day,
			Logs: 30 * day,
		},
	}
}

// AddFlags registers the retention and compression flags, with c's values as defaults. A flag of two
// tiers (raw samples and raw check results, say) sets both.
func (c *Config) AddFlags(fs *flag.FlagSet) {
	r := &c.Retention
	fs.Var(days{&r.Samples, &r.CheckResults}, "retention-raw",
		"how long raw samples and check results are kept: days (30d) or a Go duration (36h); older pushes are refused")
	fs.Var(days{&r.Samples5m}, "retention-5m", "how long the 5-minute rollup is kept")
	fs.Var(days{&r.Samples1h, &r.CheckResults1h}, "retention-1h", "how long the hourly rollups (samples, check availability) are kept")
	fs.Var(days{&r.Samples1d, &r.CheckResults1d}, "retention-1d", "how long the daily rollups (samples, check availability) are kept")
	fs.Var(days{&r.Logs}, "retention-logs", "how long log lines are kept")
	fs.Var(days{&c.CompressAfter}, "compress-after", "age after which raw chunks are compressed (timescale flavor)")
	fs.Var(&c.TimescaleJobs, "timescale-jobs", "who runs TimescaleDB's rollup refresh and compression jobs (timescale flavor, "+
		"scheduler role): auto (infrawatch takes a job over while TimescaleDB's runs of it fail), timescaledb (TimescaleDB "+
		"only; infrawatch reports) or infrawatch")
}

func (c Config) withDefaults() Config {
	def := DefaultConfig()
	for _, f := range []struct{ field, def *time.Duration }{
		{&c.Interval, &def.Interval}, {&c.RefreshInterval, &def.RefreshInterval}, {&c.RefreshLag, &def.RefreshLag},
		{&c.Ahead, &def.Ahead}, {&c.Timeout, &def.Timeout}, {&c.CompressAfter, &def.CompressAfter},
	} {
		if *f.field == 0 {
			*f.field = *f.def
		}
	}
	c.Retention = c.Retention.withDefaults()
	if c.TimescaleJobs == "" {
		c.TimescaleJobs = def.TimescaleJobs
	}
	return c
}

// Validate reports settings that cannot work, naming the flag that sets them.
func (c Config) Validate() error {
	if c.Interval < 0 || c.RefreshInterval < 0 || c.RefreshLag < 0 || c.Ahead < 0 || c.Timeout < 0 || c.CompressAfter < 0 {
		return errors.New("maintenance: intervals, lag, ahead, timeout and --compress-after must not be negative")
	}
	if m := c.withDefaults().TimescaleJobs; !m.valid() {
		return fmt.Errorf("maintenance: --timescale-jobs must be auto, timescaledb or infrawatch, got %q", m)
	}
	if c = c.withDefaults(); c.Ahead < 2*c.Interval {
		return fmt.Errorf("maintenance: ahead (%s) must be at least twice the interval (%s)", c.Ahead, c.Interval)
	}
	return c.Retention.validate()
}

// Service runs maintenance between Start and Stop: the scheduler role's worker.
type Service struct {
	cfg     Config
	sys     *db.System
	log     *slog.Logger
	clock   clock
	loop    service.Loop
	signals testSignals
}

var _ service.Service = (*Service)(nil)

// clock is what the service reads the time from and sleeps on; tests move one by hand.
type clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type wallClock struct{}

func (wallClock) Now() time.Time                         { return time.Now() }
func (wallClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// testSignals tell a test what the service did, so that it waits for that rather than for time to
// pass (river's testSignals). They are nil, and silent, outside tests.
type testSignals struct {
	passed    signal[bool]          // a storage pass ended: whether it ran (false: another replica holds the lock)
	refreshed signal[bool]          // a rollup refresh ended: whether it ran
	sleeping  signal[time.Duration] // the service waits this long on its clock for its next work
}

func (s *testSignals) init() {
	s.passed, s.refreshed, s.sleeping = make(signal[bool], 100), make(signal[bool], 100), make(signal[time.Duration], 100)
}

// signal is a channel a test reads; sending never blocks the service.
type signal[T any] chan T

func (s signal[T]) send(v T) {
	if s == nil {
		return
	}
	select {
	case s <- v:
	default:
		panic("maintenance: a test signal's buffer is full; the test does not read it")
	}
}

// New returns a maintenance service doing system work through sys. cfg's zero fields take the defaults.
func New(cfg Config, sys *db.System, log *slog.Logger) *Service {
	s := &Service{cfg: cfg.withDefaults(), sys: sys, log: log, clock: wallClock{}}
	s.loop.Run = s.run
	return s
}

// Start does a storage pass and a rollup refresh at once, then each on its own interval, until Stop.
func (s *Service) Start(ctx context.Context) error { return s.loop.Start(ctx) }

// Stop ends the work, a pass or refresh under way included (its transaction rolls back), and returns
// once it has ended.
func (s *Service) Stop() { s.loop.Stop() }

// run is the service's loop. A storage pass that found the lock taken (another replica refreshing, say)
// is tried again at the next refresh rather than an Interval later.
func (s *Service) run(ctx context.Context) {
	now := s.clock.Now()
	nextPass, nextRefresh := now, now
	for {
		if !s.clock.Now().Before(nextPass) {
			ran, err := s.RunOnce(ctx)
			s.report(ctx, "storage pass", ran, err)
			if ran || err != nil {
				nextPass = s.clock.Now().Add(jittered(s.cfg.Interval))
			} else {
				nextPass = s.clock.Now().Add(jittered(s.cfg.RefreshInterval))
			}
			s.signals.passed.send(ran)
		}
		if !s.clock.Now().Before(nextRefresh) {
			ran, err := s.RefreshOnce(ctx)
			s.report(ctx, "rollup refresh", ran, err)
			nextRefresh = s.clock.Now().Add(jittered(s.cfg.RefreshInterval))
			s.signals.refreshed.send(ran)
		}
		next := nextPass
		if nextRefresh.Before(next) {
			next = nextRefresh
		}
		wait := next.Sub(s.clock.Now())
		wake := s.clock.After(wait)
		s.signals.sleeping.send(wait)
		select {
		case <-ctx.Done():
			return
		case <-wake:
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
func (s *Service) RunOnce(parent context.Context) (ran bool, err error) {
	ctx, cancel := context.WithTimeout(parent, s.cfg.Timeout)
	defer cancel()
	err = s.sys.InTx(ctx, func(q *dbsqlc.Queries) error {
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
	if ran && parent.Err() == nil {
		// The pass is the retention job (jobs.go): its outcome is recorded outside its transaction, which
		// a failure rolled back, and past its timeout, which is a failure too. A pass cut short by Stop is
		// not recorded.
		recCtx, cancel := context.WithTimeout(context.WithoutCancel(parent), 10*time.Second)
		defer cancel()
		if recErr := s.recordRun(recCtx, s.sys.Queries(), "retention", s.cfg.Interval, s.clock.Now(), err, nil); recErr != nil && err == nil {
			err = recErr
		}
	}
	return ran, err
}
