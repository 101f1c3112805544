package bi_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/infrawatch/infrawatch/internal/bi"
	"github.com/infrawatch/infrawatch/internal/db"
)

// The tenant's statement timeout stops a BI login's statement on the server.
func TestStatementTimeoutStopsALongQuery(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, db.FlavorPostgres)
	if _, err := w.d.Pool.Exec(ctx, `INSERT INTO app.bi_settings (tenant_id, statement_timeout) VALUES ($1, '200 ms')`, w.alpha.id); err != nil {
		t.Fatal(err)
	}
	issued := w.issue(t, w.alpha)
	if issued.Limits.StatementTimeout != 200*time.Millisecond {
		t.Fatalf("limits %+v, want the tenant's 200ms", issued.Limits)
	}
	conn := connect(t, issued)
	// The hang guard is the test's; the server must stop it long before.
	guard, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := conn.Exec(guard, "SELECT pg_sleep(600)"); sqlState(err) != "57014" {
		t.Fatalf("a 10-minute statement: %v, want it cancelled by the statement timeout (57014)", err)
	}
	if _, err := conn.Exec(ctx, "SELECT 1"); err != nil {
		t.Errorf("the session after a timeout: %v", err)
	}
}

// The connection limit holds: the login opens as many sessions as the tenant's limit, and no more.
func TestConnectionLimitHolds(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, db.FlavorPostgres)
	if _, err := w.d.Pool.Exec(ctx, `INSERT INTO app.bi_settings (tenant_id, connection_limit) VALUES ($1, 2)`, w.alpha.id); err != nil {
		t.Fatal(err)
	}
	issued := w.issue(t, w.alpha)
	connect(t, issued)
	connect(t, issued)
	if conn, err := dial(issued); sqlState(err) != "53300" {
		if conn != nil {
			conn.Close(ctx)
		}
		t.Fatalf("a third session: %v, want too many connections for the role (53300)", err)
	}
	// Bravo's login is not held by alpha's limit.
	connect(t, w.issue(t, w.bravo))
}

// A session may switch its own timeout off; the enforcer then cancels its statement once it runs past
// the tenant's limit, at the time of the enforcer's clock, and leaves alone a statement within it and
// the sessions of other roles.
func TestEnforcerCancelsAStatementPastTheLimit(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, db.FlavorPostgres)
	issued := w.issue(t, w.alpha)
	conn := connect(t, issued)
	if _, err := conn.Exec(ctx, "SET statement_timeout = 0"); err != nil {
		t.Fatal(err)
	}
	pid := conn.PgConn().PID()
	done := make(chan error, 1)
	go func() {
		_, err := conn.Exec(ctx, "SELECT pg_sleep(3600)")
		done <- err
	}()
	waitFor(t, "the login's statement to run", func() bool {
		var active bool
		err := w.d.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $1 AND state = 'active'
		                                              AND query LIKE '%pg_sleep%')`, int32(pid)).Scan(&active)
		return err == nil && active
	})

	enforcer := bi.NewEnforcer(bi.DefaultConfig(), w.d.System(), discard)
	clock := &fakeClock{}
	enforcer.SetClock(clock)
	// Within the limit (30 s by default): nothing happens.
	clock.at = dbNow(t, w).Add(10 * time.Second)
	if pass := enforcer.RunOnce(ctx); pass.Err != nil || len(pass.Ended) != 0 {
		t.Fatalf("a pass 10 s in: %+v, want nothing ended", pass)
	}
	// Past it: the statement is cancelled, the session stays.
	clock.at = dbNow(t, w).Add(45 * time.Second)
	pass := enforcer.RunOnce(ctx)
	want := []bi.Ended{{Login: issued.Login, PID: int32(pid), Action: "cancel", Reason: "a statement running past 00:00:30"}}
	if pass.Err != nil || !slices.Equal(pass.Ended, want) {
		t.Fatalf("a pass 45 s in: %+v, want %+v", pass, want)
	}
	select {
	case err := <-done:
		if sqlState(err) != "57014" {
			t.Errorf("the statement ended with %v, want it cancelled (57014)", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the statement was not cancelled within a minute")
	}
	if _, err := conn.Exec(ctx, "SELECT 1"); err != nil {
		t.Errorf("the session after its statement was cancelled: %v", err)
	}
}

// A session left idle in a transaction past the tenant's idle timeout, with its own timeout switched
// off, and a session holding an advisory lock (which could hold back maintenance) are terminated.
func TestEnforcerTerminatesIdleTransactionsAndAdvisoryLocks(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, db.FlavorPostgres)
	issued := w.issue(t, w.alpha)
	idle, locker, innocent := connect(t, issued), connect(t, issued), connect(t, issued)
	// PostgreSQL reports a session idle in a transaction before it answers the statement, so the states
	// are in place when Exec returns.
	if _, err := idle.Exec(ctx, "SET idle_in_transaction_session_timeout = 0; BEGIN; SELECT count(*) FROM bi.hosts"); err != nil {
		t.Fatal(err)
	}
	if _, err := locker.Exec(ctx, "SELECT pg_advisory_lock(7)"); err != nil {
		t.Fatal(err)
	}
	if _, err := innocent.Exec(ctx, "SELECT count(*) FROM bi.hosts"); err != nil {
		t.Fatal(err)
	}

	enforcer := bi.NewEnforcer(bi.DefaultConfig(), w.d.System(), discard)
	clock := &fakeClock{at: dbNow(t, w).Add(10 * time.Second)}
	enforcer.SetClock(clock)
	pass := enforcer.RunOnce(ctx)
	if pass.Err != nil || len(pass.Ended) != 1 || pass.Ended[0].PID != int32(locker.PgConn().PID()) ||
		pass.Ended[0].Action != "terminate" || pass.Ended[0].Reason != "holds an advisory lock" {
		t.Fatalf("a pass 10 s in: %+v, want the advisory lock's holder terminated", pass)
	}
	clock.at = dbNow(t, w).Add(2 * time.Minute)
	pass = enforcer.RunOnce(ctx)
	if pass.Err != nil || len(pass.Ended) != 1 || pass.Ended[0].PID != int32(idle.PgConn().PID()) ||
		pass.Ended[0].Reason != "idle in a transaction past 00:01:00" {
		t.Fatalf("a pass 2 minutes in: %+v, want the idle transaction terminated", pass)
	}
	for name, conn := range map[string]interface{ Ping(context.Context) error }{"idle": idle, "locker": locker} {
		if err := conn.Ping(ctx); err == nil {
			t.Errorf("the %s session survived", name)
		}
	}
	if err := innocent.Ping(ctx); err != nil {
		t.Errorf("an idle session without a transaction was ended: %v", err)
	}
}

// The enforcer runs as a service: a pass at start, then one per interval of its clock.
func TestEnforcerRunsOnItsClock(t *testing.T) {
	w := newWorld(t, db.FlavorPostgres)
	issued := w.issue(t, w.alpha)
	locker := connect(t, issued)
	enforcer := bi.NewEnforcer(bi.Config{EnforceInterval: time.Hour}, w.d.System(), discard)
	clock := &fakeClock{tick: make(chan time.Time), waits: make(chan time.Duration, 10)}
	enforcer.SetClock(clock)
	if err := enforcer.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer enforcer.Stop()
	if pass := awaitPass(t, enforcer); pass.Err != nil || len(pass.Ended) != 0 {
		t.Fatalf("the first pass: %+v, want nothing to end", pass)
	}
	awaitWait(t, clock, time.Hour)
	if _, err := locker.Exec(context.Background(), "SELECT pg_advisory_lock(7)"); err != nil {
		t.Fatal(err)
	}
	clock.tick <- time.Time{} // the hour passes
	if pass := awaitPass(t, enforcer); pass.Err != nil || len(pass.Ended) != 1 || pass.Ended[0].Login != issued.Login {
		t.Fatalf("the second pass: %+v, want the lock's holder ended", pass)
	}
	awaitWait(t, clock, time.Hour)
}

// fakeClock answers at as the database's time; After reports each wait on waits (when the test made
// it) and fires when the test sends on tick.
type fakeClock struct {
	at    time.Time
	tick  chan time.Time
	waits chan time.Duration
}

func (c *fakeClock) DatabaseNow() *time.Time { at := c.at; return &at }

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	if c.waits != nil {
		c.waits <- d
	}
	return c.tick
}

// awaitWait waits for the enforcer to wait on its clock, and checks for how long.
func awaitWait(t *testing.T, c *fakeClock, want time.Duration) {
	t.Helper()
	select {
	case d := <-c.waits:
		if d != want {
			t.Errorf("the enforcer waits %s, want %s", d, want)
		}
	case <-time.After(time.Minute):
		t.Fatal("the enforcer did not wait on its clock within a minute")
	}
}

func awaitPass(t *testing.T, e *bi.Enforcer) bi.Pass {
	t.Helper()
	select {
	case p := <-e.Passed():
		return p
	case <-time.After(time.Minute):
		t.Fatal("no enforcer pass within a minute")
		return bi.Pass{}
	}
}

// dbNow is the database's clock, which stamps sessions.
func dbNow(t *testing.T, w *world) time.Time {
	t.Helper()
	var now time.Time
	if err := w.d.Pool.QueryRow(context.Background(), "SELECT now()").Scan(&now); err != nil {
		t.Fatal(err)
	}
	return now
}
