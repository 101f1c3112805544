package poller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/dbtest"
	"github.com/infrawatch/infrawatch/internal/ingest"
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
		runner: NewRunner(d.Pool, NewProber(&Guard{AllowPrivate: true}), samples, quiet)}
}

// addTCPChecks creates n TCP checks of interval seconds against target, due over the next interval.
func (w *pollerWorld) addTCPChecks(t *testing.T, n, interval int, target string) {
	t.Helper()
	_, err := w.d.Pool.Exec(context.Background(), `
	    INSERT INTO app.checks (tenant_id, name, kind, target, interval_seconds, timeout_seconds, next_run_at)
	    SELECT $1, 'tcp ' || i, 'tcp', $2, $3, 1, now() + (i % $3) * interval '1 second'
	      FROM generate_series(1, $4) AS i`, w.tenant.ID, target, interval, n)
	if err != nil {
		t.Fatal(err)
	}
}

// runEngines runs engines with cfg until stop is closed, and waits for them to return.
func (w *pollerWorld) runEngines(n int, cfg Config) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range n {
		c := cfg
		c.Owner = fmt.Sprintf("poller-%d", i)
		e := New(c, w.runner, quiet, nil)
		wg.Go(func() { e.Run(ctx) })
	}
	return func() { cancel(); wg.Wait() }
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

func TestThreePollersRunEachCheckOncePerInterval(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 500 checks for 35 s; skipped in -short mode")
	}
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		w := newPollerWorld(t, flavor)
		const checks, interval = 500, 10
		w.addTCPChecks(t, checks, interval, tcpTarget(t))

		stop := w.runEngines(3, Config{Batch: 50})
		time.Sleep(35 * time.Second) // three and a half intervals
		stop()

		times := w.runTimes(t)
		if len(times) != checks {
			t.Fatalf("%d of %d checks ran", len(times), checks)
		}
		for id, ts := range times {
			// 35 s of 10 s slots: three or four runs, never two for one slot.
			if len(ts) < 3 || len(ts) > 4 {
				t.Errorf("check %d ran %d times in 35 s, want 3 or 4: %v", id, len(ts), ts)
			}
			for i := 1; i < len(ts); i++ {
				if gap := ts[i].Sub(ts[i-1]); gap < interval*time.Second/2 {
					t.Errorf("check %d ran twice %s apart, at %s and %s", id, gap, ts[i-1], ts[i])
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

func TestDeadPollersChecksAreTakenOverInTheSameSlot(t *testing.T) {
	w := newPollerWorld(t, dbtest.Flavors(t)[0])
	ctx := context.Background()
	w.addTCPChecks(t, 40, 60, tcpTarget(t))
	if _, err := w.d.Pool.Exec(ctx, `UPDATE app.checks SET next_run_at = now() WHERE enabled`); err != nil {
		t.Fatal(err)
	}
	// A poller claims every check and dies before running them.
	dead, err := dbsqlc.New(w.d.Pool).CheckClaimDue(ctx, dbsqlc.CheckClaimDueParams{BusyTenants: []uuid.UUID{},
		MaxRows: 1000, Owner: "dead", GraceSeconds: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 40 {
		t.Fatalf("the dead poller claimed %d checks, want 40", len(dead))
	}
	var expires time.Time
	if err := w.d.Pool.QueryRow(ctx, `SELECT max(lease_expires_at) FROM app.checks WHERE lease_owner = 'dead'`).
		Scan(&expires); err != nil {
		t.Fatal(err)
	}

	stop := w.runEngines(1, Config{Idle: 200 * time.Millisecond})
	defer stop()
	deadline := time.Now().Add(30 * time.Second) // a guard against hanging, not a measurement
	var times map[int64][]time.Time
	for time.Now().Before(deadline) {
		if times = w.runTimes(t); len(times) == 40 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	stop()
	if len(times) != 40 {
		t.Fatalf("%d of 40 checks of the dead poller were taken over", len(times))
	}
	for id, ts := range times {
		// Taken over after the lease ran out, for the slot the dead poller had claimed (not the next one,
		// a minute later), and once.
		if len(ts) != 1 || ts[0].Before(expires.Add(-time.Second)) || ts[0].After(expires.Add(30*time.Second)) {
			t.Errorf("check %d ran at %v; the dead lease expired at %s", id, ts, expires)
		}
	}
}

func TestPollerRunsOnlyItsLocation(t *testing.T) {
	w := newPollerWorld(t, dbtest.Flavors(t)[0])
	ctx := context.Background()
	target := tcpTarget(t)
	w.addTCPChecks(t, 3, 60, target)
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

		up, err := w.runner.RunNow(ctx, w.tenant.ID, id)
		if err != nil {
			t.Fatal(err)
		}
		if up.Status != "up" || up.LatencyMS == nil {
			t.Fatalf("first run = %+v, want up with a latency", up)
		}
		ln.Close()
		// A second run at once is refused: the API must not become a way to flood a target.
		var tooSoon *TooSoonError
		if _, err := w.runner.RunNow(ctx, w.tenant.ID, id); !errors.As(err, &tooSoon) || tooSoon.RetryAfter <= 0 {
			t.Fatalf("second run at once: %v, want a TooSoonError", err)
		}
		if _, err := w.d.Pool.Exec(ctx, `UPDATE app.checks SET last_run_at = last_run_at - interval '1 minute'`); err != nil {
			t.Fatal(err)
		}
		down, err := w.runner.RunNow(ctx, w.tenant.ID, id)
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

		if _, err := w.runner.RunNow(ctx, uuid.New(), id); err == nil {
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
