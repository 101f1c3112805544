package poller

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/checks"
	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/dbtest"
	"github.com/infrawatch/infrawatch/internal/ingest"
	"github.com/infrawatch/infrawatch/internal/secrets"
	"github.com/infrawatch/infrawatch/internal/service"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// tcpTarget listens on loopback, accepting and closing connections, until the test ends.
func tcpTarget(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// pollerWorld is a database with one tenant (its seeded check disabled) and a runner writing to it.
type pollerWorld struct {
	d      *dbtest.DB
	tenant dbtest.Tenant
	runner *Runner
}

func newPollerWorld(t *testing.T, flavor db.Flavor) *pollerWorld {
	t.Helper()
	d := dbtest.New(t, flavor)
	ten := dbtest.SeedTenant(t, d, "acme")
	if _, err := d.Pool.Exec(context.Background(), `UPDATE app.checks SET enabled = false`); err != nil {
		t.Fatal(err)
	}
	samples := ingest.NewService(ingest.Config{}, d.Pool, quiet, nil)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { samples.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return &pollerWorld{d: d, tenant: ten,
		runner: NewRunner(db.NewSystem(d.Pool), checks.NewProber(&checks.Guard{AllowPrivate: true}), samples, testKeys(t), quiet)}
}

// addTCPChecks creates n TCP checks of interval seconds against target, due over the interval that
// begins at start: check i's first slot is start + (i mod interval) seconds.
func (w *pollerWorld) addTCPChecks(t *testing.T, n, interval int, target string, start time.Time) {
	t.Helper()
	_, err := w.d.Pool.Exec(context.Background(), `
	    INSERT INTO app.checks (tenant_id, name, kind, target, interval_seconds, timeout_seconds, next_run_at)
	    SELECT $1, 'tcp ' || i, 'tcp', $2, $3, 1, $5::timestamptz + (i % $3) * interval '1 second'
	      FROM generate_series(1, $4) AS i`, w.tenant.ID, target, interval, n, start)
	if err != nil {
		t.Fatal(err)
	}
}

// fakeClock is the engines' clock in tests: it moves only when the test advances it, firing then the
// timers and tickers that have come due, and claims compare slots and leases with its time.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at    time.Time
	every time.Duration // zero for a timer that fires once
	c     chan time.Time
}

// newFakeClock starts at the current second, so that results fall in the partitions made for today.
func newFakeClock() *fakeClock { return &fakeClock{now: time.Now().Truncate(time.Second)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) DatabaseNow() *time.Time {
	now := c.Now()
	return &now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	return c.add(d, 0).c
}

func (c *fakeClock) Tick(d time.Duration) (<-chan time.Time, func()) {
	tm := c.add(d, d)
	return tm.c, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.timers = slices.DeleteFunc(c.timers, func(x *fakeTimer) bool { return x == tm })
	}
}

func (c *fakeClock) add(d, every time.Duration) *fakeTimer {
	c.mu.Lock()
	defer c.mu.Unlock()
	tm := &fakeTimer{at: c.now.Add(d), every: every, c: make(chan time.Time, 1)}
	c.timers = append(c.timers, tm)
	return tm
}

// advance moves the clock on by d and fires what has come due; a ticker fires once however many of
// its periods passed, as time.Ticker drops ticks a slow reader misses.
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.timers = slices.DeleteFunc(c.timers, func(tm *fakeTimer) bool {
		if tm.at.After(c.now) {
			return false
		}
		select {
		case tm.c <- c.now:
		default:
		}
		if tm.every == 0 {
			return true
		}
		for !tm.at.After(c.now) {
			tm.at = tm.at.Add(tm.every)
		}
		return false
	})
}

// pollers are engines running on a fake clock, stepped through time by the test.
type pollers struct {
	clock   *fakeClock
	engines []*Engine
	// finished[i] is how many runs engine i had finished when it last went idle; stored[i] how many its
	// store loop had stored.
	finished, stored []int
}

// hangGuard bounds every wait for an engine's signal: a guard against a hanging test, not a duration
// anything is expected to take.
const hangGuard = 30 * time.Second

// startEngines starts n engines with cfg on clock and waits until each has claimed and run what is due
// at the clock's time.
func (w *pollerWorld) startEngines(t *testing.T, n int, cfg Config, clock *fakeClock) *pollers {
	t.Helper()
	p := &pollers{clock: clock, finished: make([]int, n), stored: make([]int, n)}
	for i := range n {
		c := cfg
		c.Owner = fmt.Sprintf("poller-%d", i)
		e := New(c, w.runner, quiet, nil)
		e.clock = clock
		e.testSignals.init()
		if err := e.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.Stop)
		p.engines = append(p.engines, e)
	}
	p.waitIdle(t)
	return p
}

// advance moves the clock on by d and waits until every engine has claimed and run what is due then,
// and has stored every run it finished before.
func (p *pollers) advance(t *testing.T, d time.Duration) {
	t.Helper()
	before := slices.Clone(p.finished)
	p.clock.advance(d)
	p.waitIdle(t)
	for i, e := range p.engines {
		for p.stored[i] < before[i] {
			select {
			case p.stored[i] = <-e.testSignals.stored:
			case <-time.After(hangGuard):
				t.Fatalf("engine %d stored %d of the %d runs it finished before %s", i, p.stored[i], before[i], p.clock.Now())
			}
		}
	}
}

// waitIdle waits until every engine has claimed at the clock's time and has nothing running.
func (p *pollers) waitIdle(t *testing.T) {
	t.Helper()
	now := p.clock.Now()
	for i, e := range p.engines {
		for idle := false; !idle; {
			select {
			case s := <-e.testSignals.idle:
				idle, p.finished[i] = s.at.Equal(now), s.finished
			case <-time.After(hangGuard):
				t.Fatalf("engine %d did not go idle at %s", i, now)
			}
		}
	}
}

// stop stops the engines, which store every run they finished.
func (p *pollers) stop() {
	for _, e := range p.engines {
		e.Stop()
	}
}

// runTimes returns each check's result times, oldest first.
func (w *pollerWorld) runTimes(t *testing.T) map[int64][]time.Time {
	t.Helper()
	rows, err := w.d.Pool.Query(context.Background(), `SELECT check_id, time FROM ts.check_results
	    WHERE check_id <> $1 ORDER BY check_id, time`, w.tenant.CheckID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[int64][]time.Time{}
	for rows.Next() {
		var id int64
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			t.Fatal(err)
		}
		out[id] = append(out[id], at)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Three pollers share 500 checks of a 10 s interval for 35 s of their clock: every check runs in each
// of its slots exactly once, at the slot's time, and no lease is left when they stop.
func TestThreePollersRunEachCheckOncePerInterval(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newPollerWorld(t, flavor)
		clock := newFakeClock()
		start := clock.Now()
		const checks, interval, seconds = 500, 10, 35
		w.addTCPChecks(t, checks, interval, tcpTarget(t), start)

		cfg := DefaultConfig()
		cfg.Batch = 50
		p := w.startEngines(t, 3, cfg, clock)
		for range seconds {
			p.advance(t, time.Second)
		}
		p.stop()

		times := w.runTimes(t)
		if len(times) != checks {
			t.Fatalf("%d of %d checks ran", len(times), checks)
		}
		for id, ts := range times {
			// The first run at the first slot, within the first interval; then one run every interval,
			// in every slot up to the end.
			phase := ts[0].Sub(start)
			want := int((seconds*time.Second-phase)/(interval*time.Second)) + 1
			if phase < 0 || phase >= interval*time.Second || phase%time.Second != 0 || len(ts) != want {
				t.Errorf("check %d ran %d times, first %s after the start: %v; want %d runs in whole-second slots",
					id, len(ts), phase, ts, want)
				continue
			}
			for i := 1; i < len(ts); i++ {
				if gap := ts[i].Sub(ts[i-1]); gap != interval*time.Second {
					t.Errorf("check %d ran %s apart, at %s and %s; want every %d s", id, gap, ts[i-1], ts[i], interval)
				}
			}
		}
		var leased int
		if err := w.d.Pool.QueryRow(context.Background(),
			`SELECT count(*) FROM app.checks WHERE lease_owner IS NOT NULL`).Scan(&leased); err != nil {
			t.Fatal(err)
		}
		if leased != 0 {
			t.Errorf("%d checks still leased after every poller stopped gracefully", leased)
		}
	})
}

// A poller that claims checks and dies holds them until its leases expire; another poller then runs
// them, at once, for the slot the dead one had claimed (not the next one, a minute later), and once.
func TestDeadPollersChecksAreTakenOverInTheSameSlot(t *testing.T) {
	w := newPollerWorld(t, dbtest.Flavors(t)[0])
	ctx := context.Background()
	clock := newFakeClock()
	start := clock.Now()
	w.addTCPChecks(t, 40, 60, tcpTarget(t), start)
	if _, err := w.d.Pool.Exec(ctx, `UPDATE app.checks SET next_run_at = $1 WHERE enabled`, start); err != nil {
		t.Fatal(err)
	}
	// A poller claims every check and dies before running them: its leases last the checks' timeout
	// (1 s) and 2 s of grace.
	dead, err := dbsqlc.New(w.d.Pool).CheckClaimDue(ctx, dbsqlc.CheckClaimDueParams{Now: &start,
		BusyTenants: []uuid.UUID{}, MaxRows: 1000, Owner: "dead", GraceSeconds: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 40 {
		t.Fatalf("the dead poller claimed %d checks, want 40", len(dead))
	}

	p := w.startEngines(t, 1, DefaultConfig(), clock)
	for range 6 {
		p.advance(t, time.Second)
	}
	p.stop()

	times := w.runTimes(t)
	if len(times) != 40 {
		t.Fatalf("%d of 40 checks of the dead poller were taken over", len(times))
	}
	// The leases expired at start+3s; the first claim after that is at start+4s.
	takenOver := start.Add(4 * time.Second)
	for id, ts := range times {
		if len(ts) != 1 || !ts[0].Equal(takenOver) {
			t.Errorf("check %d ran at %v; want once, at %s", id, ts, takenOver)
		}
	}
	var wrongSlot int
	if err := w.d.Pool.QueryRow(ctx, `SELECT count(*) FROM app.checks WHERE enabled
	        AND (next_run_at <> $1 OR lease_owner IS NOT NULL)`, start.Add(time.Minute)).Scan(&wrongSlot); err != nil {
		t.Fatal(err)
	}
	if wrongSlot != 0 {
		t.Errorf("%d checks are not released with their next slot a minute after the one taken over", wrongSlot)
	}
}

func TestPollerRunsOnlyItsLocation(t *testing.T) {
	w := newPollerWorld(t, dbtest.Flavors(t)[0])
	ctx := context.Background()
	target := tcpTarget(t)
	w.addTCPChecks(t, 3, 60, target, time.Now())
	if _, err := w.d.Pool.Exec(ctx, `UPDATE app.checks SET next_run_at = now(),
	        location = CASE name WHEN 'tcp 1' THEN 'eu' WHEN 'tcp 2' THEN 'us' END
	    WHERE enabled`); err != nil {
		t.Fatal(err)
	}
	q := dbsqlc.New(w.d.Pool)
	eu := "eu"
	got, err := q.CheckClaimDue(ctx, dbsqlc.CheckClaimDueParams{Location: &eu, BusyTenants: []uuid.UUID{}, MaxRows: 10,
		Owner: "eu-poller", GraceSeconds: 1})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range got {
		names = append(names, c.Name)
	}
	if len(names) != 2 || !(names[0] == "tcp 1" || names[1] == "tcp 1") || !(names[0] == "tcp 3" || names[1] == "tcp 3") {
		t.Errorf("a poller in eu claimed %v, want tcp 1 (eu) and tcp 3 (unpinned)", names)
	}
	got, err = q.CheckClaimDue(ctx, dbsqlc.CheckClaimDueParams{BusyTenants: []uuid.UUID{}, MaxRows: 10, Owner: "anywhere",
		GraceSeconds: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("a poller without location claimed %d checks; tcp 2 is pinned to us and the others are leased", len(got))
	}
	// A busy tenant's checks are left alone.
	if _, err := w.d.Pool.Exec(ctx, `UPDATE app.checks SET lease_owner = NULL, lease_expires_at = NULL`); err != nil {
		t.Fatal(err)
	}
	got, err = q.CheckClaimDue(ctx, dbsqlc.CheckClaimDueParams{Location: &eu, BusyTenants: []uuid.UUID{w.tenant.ID},
		MaxRows: 10, Owner: "eu-poller", GraceSeconds: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("claimed %d checks of a tenant at its concurrency limit", len(got))
	}
}

func TestRunNowStoresResultStatusChangesAndSamples(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newPollerWorld(t, flavor)
		ctx := context.Background()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		target := ln.Addr().String()
		var id int64
		if err := w.d.Pool.QueryRow(ctx, `INSERT INTO app.checks (tenant_id, host_id, name, kind, target)
		    VALUES ($1, $2, 'db port', 'tcp', $3) RETURNING id`, w.tenant.ID, w.tenant.HostID, target).Scan(&id); err != nil {
			t.Fatal(err)
		}

		up, err := w.runner.RunNowForTenant(ctx, w.tenant.ID, id)
		if err != nil {
			t.Fatal(err)
		}
		if up.Status != "up" || up.LatencyMS == nil {
			t.Fatalf("first run = %+v, want up with a latency", up)
		}
		ln.Close()
		// A second run at once is refused: the API must not become a way to flood a target.
		var tooSoon *checks.TooSoonError
		if _, err := w.runner.RunNowForTenant(ctx, w.tenant.ID, id); !errors.As(err, &tooSoon) || tooSoon.RetryAfter <= 0 {
			t.Fatalf("second run at once: %v, want a TooSoonError", err)
		}
		if _, err := w.d.Pool.Exec(ctx, `UPDATE app.checks SET last_run_at = last_run_at - interval '1 minute'`); err != nil {
			t.Fatal(err)
		}
		down, err := w.runner.RunNowForTenant(ctx, w.tenant.ID, id)
		if err != nil {
			t.Fatal(err)
		}
		if down.Status != "down" || down.Reason == "" {
			t.Fatalf("run against a closed port = %+v, want down with a reason", down)
		}

		var status, reason string
		if err := w.d.Pool.QueryRow(ctx, `SELECT status, status_reason FROM app.checks WHERE id = $1`, id).
			Scan(&status, &reason); err != nil {
			t.Fatal(err)
		}
		if status != "down" || reason != down.Reason {
			t.Errorf("check status = %s %q, want down %q", status, reason, down.Reason)
		}
		rows, err := w.d.Pool.Query(ctx, `SELECT coalesce(previous_status, '-') || '>' || status
		    FROM app.check_events WHERE check_id = $1 ORDER BY id`, id)
		if err != nil {
			t.Fatal(err)
		}
		var changes []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			changes = append(changes, s)
		}
		if fmt.Sprint(changes) != "[->up up>down]" {
			t.Errorf("status changes = %v, want [->up up>down]", changes)
		}
		var results int
		var downReason string
		if err := w.d.Pool.QueryRow(ctx, `SELECT count(*), max(detail->>'reason') FROM ts.check_results WHERE check_id = $1`, id).
			Scan(&results, &downReason); err != nil {
			t.Fatal(err)
		}
		if results != 2 || downReason != down.Reason {
			t.Errorf("stored %d results (down reason %q), want 2 (%q)", results, downReason, down.Reason)
		}
		// Each result keeps its run's time and latency, to the microsecond; the down run got no answer and
		// stores none.
		var upLatencyUS, downLatencyUS *int64
		var upAt, downAt time.Time
		if err := w.d.Pool.QueryRow(ctx, `SELECT
		        (SELECT time FROM ts.check_results WHERE check_id = $1 AND status = 'up'),
		        (SELECT (extract(epoch FROM latency) * 1e6)::bigint FROM ts.check_results WHERE check_id = $1 AND status = 'up'),
		        (SELECT time FROM ts.check_results WHERE check_id = $1 AND status = 'down'),
		        (SELECT (extract(epoch FROM latency) * 1e6)::bigint FROM ts.check_results WHERE check_id = $1 AND status = 'down')`,
			id).Scan(&upAt, &upLatencyUS, &downAt, &downLatencyUS); err != nil {
			t.Fatal(err)
		}
		if !upAt.Equal(up.Time.Truncate(time.Microsecond)) || upLatencyUS == nil || *upLatencyUS != int64(*up.LatencyMS*1000) ||
			!downAt.Equal(down.Time.Truncate(time.Microsecond)) || downLatencyUS != nil {
			t.Errorf("stored results: up at %s with %v µs, down at %s with %v µs; want up at %s with %.0f µs, down at %s with none",
				upAt, upLatencyUS, downAt, downLatencyUS, up.Time, *up.LatencyMS*1000, down.Time)
		}
		// The up run's connect time is a sample of the check's host, labelled with the check.
		var value float64
		err = w.d.Pool.QueryRow(ctx, `SELECT s.value FROM ts.samples s JOIN app.series r ON r.id = s.series_id
		    WHERE r.tenant_id = $1 AND r.host_id = $2 AND r.name = 'tcp.connect_ms'
		      AND r.labels->>'check_id' = $3 AND r.labels->>'check' = 'db port'`,
			w.tenant.ID, w.tenant.HostID, fmt.Sprint(id)).Scan(&value)
		if err != nil {
			t.Fatalf("tcp.connect_ms sample of the check's host: %v", err)
		}
		if value != *up.LatencyMS {
			t.Errorf("tcp.connect_ms = %v, want the run's latency %v", value, *up.LatencyMS)
		}

		if _, err := w.runner.RunNowForTenant(ctx, uuid.New(), id); err == nil {
			t.Error("another tenant ran the check")
		}
	})
}

func TestNextSlotKeepsThePhase(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 7, 0, time.UTC)
	for _, tc := range []struct {
		now  time.Time
		want time.Time
	}{
		{base.Add(2 * time.Second), base.Add(time.Minute)},               // on time
		{base.Add(time.Minute + time.Second), base.Add(2 * time.Minute)}, // behind by one slot: skip it
		{base.Add(5*time.Minute + 30*time.Second), base.Add(6 * time.Minute)},
		{base.Add(time.Minute), base.Add(2 * time.Minute)}, // exactly at the next slot: that one is past
	} {
		if got := nextSlot(base, time.Minute, tc.now); !got.Equal(tc.want) {
			t.Errorf("nextSlot(at %s) = %s, want %s", tc.now.Format(time.TimeOnly), got.Format(time.TimeOnly),
				tc.want.Format(time.TimeOnly))
		}
	}
}

// The engine is one of the process's services.
var _ service.Service = (*Engine)(nil)

// The poller's flags keep their names, take their defaults from DefaultConfig (their only copy), and a
// wrong value is refused naming its flag.
func TestConfigFlags(t *testing.T) {
	var c Config
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	c.AddFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	d := DefaultConfig()
	if c.Location != d.Location || c.Concurrency != d.Concurrency || c.TenantConcurrency != d.TenantConcurrency ||
		d.Concurrency != 256 || d.TenantConcurrency != 64 {
		t.Errorf("flags' defaults: %+v, DefaultConfig %+v; want 256 and 64", c, d)
	}
	for _, name := range []string{"location", "poller-concurrency", "poller-tenant-concurrency"} {
		if fs.Lookup(name) == nil {
			t.Errorf("flag --%s is not registered", name)
		}
	}
	if err := d.Validate(); err != nil {
		t.Errorf("DefaultConfig is invalid: %v", err)
	}
	for flagName, args := range map[string][]string{
		"--poller-concurrency":        {"--poller-concurrency", "0"},
		"--poller-tenant-concurrency": {"--poller-tenant-concurrency", "-1"},
		"--location":                  {"--location", strings.Repeat("x", 65)},
	} {
		c := DefaultConfig()
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		c.AddFlags(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), flagName) {
			t.Errorf("%v: Validate() = %v, want an error naming %s", args, err, flagName)
		}
	}
}

// testKeys is the keyring of the test worlds (dbtest.SecretKey).
func testKeys(t *testing.T) *secrets.Keyring {
	t.Helper()
	k, err := secrets.Parse(dbtest.SecretKey)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
