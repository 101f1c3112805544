package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/infrawatch/infrawatch/internal/db"
)

// The kinds of fault, each applied at seeded random moments.
const (
	faultKill        = "kill"         // SIGKILL a replica, restart it 1–3 s later
	faultPGFast      = "pg-fast"      // restart PostgreSQL, fast shutdown (sessions rolled back)
	faultPGImmediate = "pg-immediate" // restart PostgreSQL, immediate shutdown (crash recovery)
	faultPause       = "pause"        // SIGSTOP a replica for longer than the poller's lease, then SIGCONT
	faultFillQueue   = "fill-queue"   // stall the samples' writes and flood a replica until its ingest queue is full
)

var faultKinds = []string{faultKill, faultPGFast, faultPGImmediate, faultPause, faultFillQueue}

// pauseFor outlasts the poller's lease, so that the paused replica's claimed checks go to the others.
var pauseFor = pollerLease + 10*time.Second

// stallFor is how long the samples' writes are stalled while a replica is flooded.
const stallFor = 10 * time.Second

// plannedFault is one fault of the schedule: when (from the start of the load), what, on which replica.
type plannedFault struct {
	at      time.Duration
	kind    string
	replica int
	restart time.Duration // for kill: how long the replica stays dead
}

// schedule draws the faults of a run from seed alone, so a run can be repeated: one every 25 s on
// average (at least one of each kind; of the kinds in only, when given), at random moments between 5 % and 85 % of duration. Kinds come
// in shuffled rounds of all five. Faults run one after the other: one that falls due while the previous
// one lasts starts when it ends.
func schedule(seed int64, duration time.Duration, replicas int, only []string) []plannedFault {
	rng := rand.New(rand.NewPCG(uint64(seed), 0xfa017))
	kindsOf := faultKinds
	if len(only) > 0 {
		kindsOf = only
	}
	n := max(len(kindsOf), int(duration/(25*time.Second)))
	out := make([]plannedFault, n)
	var kinds []string
	for i := range out {
		if len(kinds) == 0 {
			kinds = append([]string(nil), kindsOf...)
			rng.Shuffle(len(kinds), func(a, b int) { kinds[a], kinds[b] = kinds[b], kinds[a] })
		}
		span := int64(duration) * 80 / 100
		out[i] = plannedFault{at: duration*5/100 + time.Duration(rng.Int64N(span)), kind: kinds[0],
			replica: rng.IntN(replicas), restart: time.Second + time.Duration(rng.Int64N(int64(2*time.Second)))}
		kinds = kinds[1:]
	}
	sort.Slice(out, func(a, b int) bool { return out[a].at < out[b].at })
	return out
}

// faults applies the schedule.
type faults struct {
	o      options
	pg     *postgres
	pool   *db.Pool
	fleet  *fleet
	client *client
	world  *world
	rec    *recorder
	logf   func(format string, args ...any)
	done   []string // one line per fault applied, for the table
}

// run applies the schedule in the background and stops when ctx ends; the channel closes when the
// last fault applied is over (its replica or server back).
func (f *faults) run(ctx context.Context, start time.Time) <-chan struct{} {
	plan := schedule(f.o.seed, f.o.duration, len(f.fleet.replicas), f.o.faults)
	fl := newFlooder(f.fleet.addrs(), f.rec)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for i, p := range plan {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(start.Add(p.at))):
			}
			began := time.Since(start)
			line := f.apply(p, fl, i)
			f.done = append(f.done, fmt.Sprintf("+%5.1fs %s", began.Seconds(), line))
		}
	}()
	return finished
}

// apply runs one fault to its end (the replica or the server is back, even when the fault phase ends
// meanwhile) and says what happened.
func (f *faults) apply(p plannedFault, fl *flooder, round int) string {
	ctx := context.Background()
	r := f.fleet.replicas[p.replica]
	t0 := time.Now()
	var line string
	switch p.kind {
	case faultKill:
		f.logf("fault %s: SIGKILL replica %d", p.kind, r.index)
		r.kill()
		time.Sleep(p.restart)
		if err := f.fleet.start(r); err != nil {
			line = fmt.Sprintf("%s replica %d: restart failed: %v", p.kind, r.index, err)
			break
		}
		err := waitReady(ctx, r.addr, 90*time.Second)
		line = fmt.Sprintf("%s replica %d: dead %.1fs, ready again after %.1fs (%v)", p.kind, r.index, p.restart.Seconds(),
			time.Since(t0).Seconds(), errOr(err, "ready"))
	case faultPGFast, faultPGImmediate:
		mode := "fast"
		if p.kind == faultPGImmediate {
			mode = "immediate"
		}
		f.logf("fault %s: restart PostgreSQL (%s shutdown)", p.kind, mode)
		err := f.pg.restart(ctx, mode)
		down := time.Since(t0)
		ready := 0.0
		if err == nil {
			err = waitReady(ctx, r.addr, 90*time.Second)
			ready = time.Since(t0).Seconds()
		}
		line = fmt.Sprintf("%s: PostgreSQL back after %.1fs, replica %d ready after %.1fs (%v)", p.kind, down.Seconds(),
			r.index, ready, errOr(err, "ok"))
	case faultPause:
		f.logf("fault %s: SIGSTOP replica %d for %s (poller lease %s)", p.kind, r.index, pauseFor, pollerLease)
		_ = r.signal(syscall.SIGSTOP)
		// What the paused replica holds up: every 2 s, the sessions of the others waiting for a lock and
		// who holds it; the worst moment is reported.
		worst, worstN, worstAt := "no session waited for a lock", 0, time.Duration(0)
		for end := t0.Add(pauseFor); time.Until(end) > 0; {
			time.Sleep(min(2*time.Second, time.Until(end)))
			if waits, n := f.lockWaits(ctx); n > worstN {
				worst, worstN, worstAt = waits, n, time.Since(t0)
			}
		}
		_ = r.signal(syscall.SIGCONT)
		line = fmt.Sprintf("%s replica %d: stopped %.1fs; %s", p.kind, r.index, time.Since(t0).Seconds(), worst)
		if worstN > 0 {
			line += fmt.Sprintf(" (%.0fs into the pause)", worstAt.Seconds())
		}
	case faultFillQueue:
		// A transaction holding ts.samples in SHARE mode blocks every write of samples (COPY, INSERT) and
		// nothing else: API keys, series and check claims are still read, so pushes are taken, queue up
		// behind the stalled writers, and a full queue answers 429.
		f.logf("fault %s: stall the samples' writes for %s and flood replica %d", p.kind, stallFor, r.index)
		before := f.rec.floodRefused.Load()
		tx, err := f.pool.Begin(ctx)
		if err == nil {
			_, err = tx.Exec(ctx, "LOCK TABLE ts.samples IN SHARE MODE")
		}
		if err != nil {
			if tx != nil {
				_ = tx.Rollback(ctx)
			}
			line = fmt.Sprintf("%s: cannot stall the writes: %v", p.kind, err)
			break
		}
		floodCtx, cancel := context.WithTimeout(ctx, stallFor)
		fl.flood(floodCtx, fl.impatient, f.o, f.world, f.rec, r.addr, round)
		cancel()
		_ = tx.Rollback(ctx)
		stalled := time.Since(t0)
		floodCtx, cancel = context.WithTimeout(ctx, 3*time.Second)
		fl.flood(floodCtx, fl.patient, f.o, f.world, f.rec, r.addr, round)
		cancel()
		line = fmt.Sprintf("%s replica %d: writes stalled %.1fs, %d flood pushes refused (429/503)", p.kind, r.index,
			stalled.Seconds(), f.rec.floodRefused.Load()-before)
	}
	f.logf("  %s", line)
	return line
}

// lockWaits says which sessions wait for a lock, and which sessions (by replica) block them, and how
// many wait.
func (f *faults) lockWaits(ctx context.Context) (string, int) {
	rows, err := f.pool.Query(ctx, `
		SELECT w.application_name, b.application_name, coalesce(b.state, ''), left(regexp_replace(coalesce(b.query, ''), '\s+', ' ', 'g'), 70), count(*)
		  FROM pg_stat_activity w, unnest(pg_blocking_pids(w.pid)) AS bp, pg_stat_activity b
		 WHERE b.pid = bp AND w.wait_event_type = 'Lock'
		 GROUP BY 1, 2, 3, 4 ORDER BY 5 DESC`)
	if err != nil {
		return "lock waits unknown: " + err.Error(), 0
	}
	defer rows.Close()
	var parts []string
	total := 0
	for rows.Next() {
		var waiter, blocker, state, query string
		var n int
		if err := rows.Scan(&waiter, &blocker, &state, &query, &n); err != nil {
			return "lock waits unknown: " + err.Error(), 0
		}
		total += n
		parts = append(parts, fmt.Sprintf("%d session(s) of %s blocked by %s (%s: %s)", n, waiter, blocker, state, query))
	}
	return strings.Join(parts, "; "), total
}

func errOr(err error, ok string) string {
	if err != nil {
		return err.Error()
	}
	return ok
}
