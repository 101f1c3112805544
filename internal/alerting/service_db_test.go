package alerting

import (
	"context"
	"testing"
	"time"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
)

// waitSignal waits for the next value of a test signal; the deadline only guards against a hang.
func waitSignal[T any](t *testing.T, s testSignal[T], what string) T {
	t.Helper()
	select {
	case v := <-s:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("no %s signal", what)
	}
	var zero T
	return zero
}

// The alerter as a service: started, it evaluates what is due at its clock's time, extends recurring
// maintenance windows, waits on its clock, evaluates again when the clock moves, and stops.
func TestEngineServiceRunsOnItsClock(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		f, _, ch := cpuFixture(t, flavor, 5, high(1.5, 100))
		rule := f.rule(f.tenant, cpuRule("cpu", ch))
		var window int64
		f.must(f.d.Pool.QueryRow(f.ctx, `INSERT INTO app.maintenance_windows (tenant_id, name, starts_at, cron, duration_seconds,
			time_zone, materialized_until) VALUES ($1, 'nightly', $2, '0 3 * * *', 3600, 'UTC', $2) RETURNING id`,
			f.tenant, f.t0).Scan(&window))
		f.engine.testSignals.init()
		f.must(f.engine.Start(context.Background()))
		defer f.engine.Stop()

		b := waitSignal(t, f.engine.testSignals.evaluated, "evaluated")
		expect(t, "rules of the first batch", b.rules, 1)
		expect(t, "idle at", waitSignal(t, f.engine.testSignals.idle, "idle"), f.t0)
		expect(t, "state at t0", f.state(rule), "none")
		var until time.Time
		var occurrences int
		f.must(f.d.Pool.QueryRow(f.ctx, `SELECT materialized_until, (SELECT count(*) FROM app.maintenance_occurrences WHERE window_id = $1)
		                                   FROM app.maintenance_windows WHERE id = $1`, window).Scan(&until, &occurrences))
		if !until.Equal(f.t0.Add(30*day)) || occurrences < 29 || occurrences > 31 {
			t.Fatalf("the recurring window extends to %s with %d occurrences, want t0+30d with 30", until, occurrences)
		}

		at := f.t0.Add(2 * time.Minute)
		f.clock.set(at)
		b = waitSignal(t, f.engine.testSignals.evaluated, "evaluated")
		expect(t, "transitions written at t0+2m", b.written.transitions[Firing], 1)
		expect(t, "idle at", waitSignal(t, f.engine.testSignals.idle, "idle"), at)
		expect(t, "state at t0+2m", f.state(rule), "firing")
	})
}
