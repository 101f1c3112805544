package maintenance

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
)

// fakeClock is a clock the test moves by hand: After fires once Advance passes its time.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []fakeTimer
}

type fakeTimer struct {
	at time.Time
	c  chan time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.timers = append(c.timers, fakeTimer{at: c.now.Add(d), c: ch})
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.timers[:0]
	for _, t := range c.timers {
		if t.at.After(c.now) {
			kept = append(kept, t)
			continue
		}
		t.c <- c.now
	}
	c.timers = kept
}

// await returns the next value of a test signal, failing t when none comes within a hang guard.
func await[T any](t *testing.T, what string, s signal[T]) T {
	t.Helper()
	select {
	case v := <-s:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("no %s within 30 s", what)
		panic("unreachable")
	}
}

// woke is what the service did at one wake-up: the storage passes and refreshes that ended (whether
// each ran), and how long it sleeps next.
type woke struct {
	passes, refreshes []bool
	next              time.Duration
}

// wake moves the clock by d, to the service's next wake-up, and returns what the service did then.
func wake(t *testing.T, svc *Service, clock *fakeClock, d time.Duration) woke {
	t.Helper()
	clock.Advance(d)
	w := woke{next: await(t, "sleep", svc.signals.sleeping)}
	// Both signals come before the sleep's.
	for {
		select {
		case ran := <-svc.signals.passed:
			w.passes = append(w.passes, ran)
			continue
		case ran := <-svc.signals.refreshed:
			w.refreshes = append(w.refreshes, ran)
			continue
		default:
		}
		return w
	}
}

// The service does a storage pass and a refresh as it starts and then each on its own interval of its
// clock; a pass that found the lock taken comes again at the next refresh, not an Interval later; and
// Stop returns once it has stopped.
func TestServiceRunsOnItsClock(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		ctx := context.Background()
		d := dbtest.New(t, flavor)
		clock := &fakeClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
		svc := New(Config{Interval: time.Hour, RefreshInterval: time.Minute, CompressAfter: 2 * day}, d.System(),
			slog.New(slog.NewTextHandler(io.Discard, nil)))
		svc.clock = clock
		svc.signals.init()
		const refreshAtMost = time.Minute + 6*time.Second // a refresh interval and its jitter

		// Another replica holds the lock as the service starts: both steps step aside.
		other, err := d.Pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := other.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", LockKey); err != nil {
			t.Fatal(err)
		}
		if err := svc.Start(ctx); err != nil {
			t.Fatal(err)
		}
		w := wake(t, svc, clock, 0)
		if !slices.Equal(w.passes, []bool{false}) || !slices.Equal(w.refreshes, []bool{false}) {
			t.Fatalf("at start, with the lock taken: passes %v, refreshes %v; want one skipped each", w.passes, w.refreshes)
		}
		if w.next < time.Minute || w.next > refreshAtMost {
			t.Fatalf("after a skipped pass the service sleeps %s, want a refresh interval (1m, +10%% jitter at most)", w.next)
		}
		if err := other.Rollback(ctx); err != nil {
			t.Fatal(err)
		}

		// Within a refresh interval the pass comes again and runs, and so does the refresh.
		var elapsed time.Duration
		var passed, refreshed bool
		for !passed || !refreshed {
			elapsed += w.next
			if elapsed > refreshAtMost {
				t.Fatalf("%s after the skipped pass: passed %v, refreshed %v; want both within a refresh interval", elapsed, passed, refreshed)
			}
			w = wake(t, svc, clock, w.next)
			passed = passed || slices.Contains(w.passes, true)
			refreshed = refreshed || slices.Contains(w.refreshes, true)
		}
		// The last wake-up may have been the pass's, with the refresh due a few seconds of jitter later.
		for len(w.refreshes) == 0 {
			w = wake(t, svc, clock, w.next)
		}
		// What they did: the pass moved the compression policy (timescale flavor), the refresh stamped
		// the rollups (postgres flavor).
		query := `SELECT count(*) FROM infrawatch.rollups WHERE refreshed_at IS NOT NULL`
		if flavor == db.FlavorTimescale {
			query = `SELECT count(*) FROM timescaledb_information.jobs
			          WHERE proc_name = 'policy_compression' AND (config->>'compress_after')::interval = '48 hours'`
		}
		var n int
		if err := d.Pool.QueryRow(ctx, query).Scan(&n); err != nil || n < 3 {
			t.Fatalf("%q counts %d (%v), want at least 3", query, n, err)
		}

		// Then refreshes, a refresh interval apart, and no pass for an hour.
		for range 3 {
			if w.next < time.Minute || w.next > refreshAtMost {
				t.Fatalf("between refreshes the service sleeps %s, want a refresh interval", w.next)
			}
			w = wake(t, svc, clock, w.next)
			if len(w.passes) != 0 || !slices.Equal(w.refreshes, []bool{true}) {
				t.Fatalf("a refresh interval later: passes %v, refreshes %v; want one refresh and no pass", w.passes, w.refreshes)
			}
		}
		svc.Stop()
	})
}
