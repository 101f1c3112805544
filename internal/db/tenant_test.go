package db_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/dbtest"
)

// 100 goroutines alternate between two tenants over a pool of 4 connections, each statement pipelined
// behind its tenant, with cancelled contexts mixed in. Not one row of the other tenant may ever show,
// and no pooled connection keeps a tenant or the role.
func TestWithTenantReadOnlyNeverLeaksAcrossPooledConnections(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		ctx := context.Background()
		d := dbtest.New(t, flavor)
		tenants := []dbtest.Tenant{dbtest.SeedTenant(t, d, "tenant-a"), dbtest.SeedTenant(t, d, "tenant-b")}
		pool := smallPool(t, d.URL, 4)
		runner := db.NewTenantRunner(pool)

		const goroutines, iterations = 100, 20
		var foreign, checked atomic.Int64
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				for i := range iterations {
					ten := tenants[(g+i)%2]
					runCtx, cancel := context.WithCancel(ctx)
					err := runner.WithTenantReadOnly(runCtx, ten.ID, db.StatementOptions{},
						func(q *dbsqlc.Queries) error {
							for range 2 {
								hosts, err := q.HostList(runCtx, dbsqlc.HostListParams{AfterID: 0, MaxRows: 100})
								if err != nil {
									return err
								}
								for _, h := range hosts {
									checked.Add(1)
									if h.TenantID != ten.ID {
										foreign.Add(1)
									}
								}
								if len(hosts) != 1 {
									foreign.Add(1) // the tenant's own host is missing or another one showed
								}
								if _, err := q.HostGetByID(runCtx, ten.HostID); err != nil {
									return err
								}
								if i%5 == 2 {
									cancel() // the next statement fails; its connection must not come back dirty
								}
							}
							return nil
						})
					cancel()
					if err != nil && !errors.Is(err, context.Canceled) {
						t.Errorf("goroutine %d iteration %d: %v", g, i, err)
						return
					}
				}
			})
		}
		wg.Wait()
		if foreign.Load() != 0 {
			t.Fatalf("%d foreign or missing rows in %d reads", foreign.Load(), checked.Load())
		}
		if checked.Load() < goroutines*iterations/2 {
			t.Fatalf("only %d rows read; the test did not exercise the runner", checked.Load())
		}
		assertPoolClean(t, pool, 4)
	})
}

// The statements of WithTenantReadOnly cannot write, whatever they are.
func TestWithTenantReadOnlyRefusesWrites(t *testing.T) {
	ctx := context.Background()
	d := dbtest.New(t, db.FlavorPostgres)
	ten := dbtest.SeedTenant(t, d, "tenant-a")
	err := db.NewTenantRunner(d.Pool).WithTenantReadOnly(ctx, ten.ID, db.StatementOptions{}, func(q *dbsqlc.Queries) error {
		_, err := q.HostCreate(ctx, dbsqlc.HostCreateParams{Name: "written", Labels: map[string]string{}, MonitoredBy: "agent"})
		return err
	})
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "25006" {
		t.Fatalf("HostCreate through the read-only runner: %v, want read_only_sql_transaction", err)
	}
	var n int
	if err := d.Pool.QueryRow(ctx, "SELECT count(*) FROM app.hosts WHERE name = 'written'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("hosts named written: %d (%v), want 0", n, err)
	}
}

// A statement past the timeout fails with a timeout, both when the server runs it too long and when
// it waits before the server's timeout starts: on a fresh connection pgx prepares the statement first,
// and parsing it waits for the lock that DDL holds here.
func TestWithTenantReadOnlyTimesOut(t *testing.T) {
	ctx := context.Background()
	d := dbtest.New(t, db.FlavorPostgres)
	ten := dbtest.SeedTenant(t, d, "tenant-a")
	pool := smallPool(t, d.URL, 1)
	runner := db.NewTenantRunner(pool).WithStatementTimeout(200 * time.Millisecond)
	opts := db.StatementOptions{}
	list := func(q *dbsqlc.Queries) error {
		_, err := q.HostList(ctx, dbsqlc.HostListParams{MaxRows: 10})
		return err
	}

	lock, err := d.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback(ctx)
	if _, err := lock.Exec(ctx, "LOCK TABLE app.hosts IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	if err := runner.WithTenantReadOnly(ctx, ten.ID, opts, list); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("first statement on a connection, table locked: %v, want a deadline error", err)
	}
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := runner.WithTenantReadOnly(ctx, ten.ID, opts, list); err != nil {
		t.Fatalf("table unlocked: %v", err)
	}

	lock, err = d.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback(ctx)
	if _, err := lock.Exec(ctx, "LOCK TABLE app.hosts IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	err = runner.WithTenantReadOnly(ctx, ten.ID, opts, list)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "57014" {
		t.Fatalf("prepared statement, table locked: %v, want the server's statement timeout", err)
	}
	assertPoolClean(t, pool, 1)
}

// Every statement of a tenant's transaction stops at the runner's statement timeout (10 s unless the
// process says otherwise), set with the tenant and the role; the pooled connection keeps none of it.
func TestWithTenantBoundsEveryStatement(t *testing.T) {
	d := dbtest.New(t, db.FlavorPostgres)
	ten := dbtest.SeedTenant(t, d, "tenant-a")
	pool := smallPool(t, d.URL, 1)
	if got := db.NewTenantRunner(pool).StatementTimeout(); got != 10*time.Second {
		t.Errorf("default statement timeout %s, want 10s", got)
	}
	runner := db.NewTenantRunner(pool).WithStatementTimeout(200 * time.Millisecond)
	// The statement is prepared on the first run, so the second one meets the lock in the server.
	list := func(ctx context.Context) error {
		return runner.WithTenant(ctx, ten.ID, func(q *dbsqlc.Queries) error {
			_, err := q.HostList(ctx, dbsqlc.HostListParams{MaxRows: 10})
			return err
		})
	}
	if err := list(context.Background()); err != nil {
		t.Fatal(err)
	}
	lock, err := d.Pool.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback(context.Background())
	if _, err := lock.Exec(context.Background(), "LOCK TABLE app.hosts IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	guard, cancel := context.WithTimeout(context.Background(), 20*time.Second) // a hang guard only
	defer cancel()
	err = list(guard)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "57014" || !errors.Is(db.Translate(err), db.ErrTimeout) {
		t.Fatalf("a statement waiting for a lock: %v, want the server's statement timeout (57014, db.ErrTimeout)", err)
	}
	if err := lock.Rollback(context.Background()); err != nil {
		t.Fatal(err)
	}
	assertPoolClean(t, pool, 1)
}

func TestWithTenantReadOnlyRefusesBadSettings(t *testing.T) {
	d := dbtest.New(t, db.FlavorPostgres)
	ten := dbtest.SeedTenant(t, d, "tenant-a")
	runner := db.NewTenantRunner(d.Pool)
	ran := func(*dbsqlc.Queries) error { t.Error("fn ran"); return nil }
	if err := runner.WithTenantReadOnly(context.Background(), uuid.Nil, db.StatementOptions{}, ran); !errors.Is(err, db.ErrNoTenant) {
		t.Errorf("no tenant: %v, want ErrNoTenant", err)
	}
	for _, name := range []string{"infrawatch.tenant_id", "role", "Session_Authorization"} {
		opts := db.StatementOptions{Settings: []db.Setting{{Name: name, Value: "x"}}}
		if err := runner.WithTenantReadOnly(context.Background(), ten.ID, opts, ran); err == nil {
			t.Errorf("setting %s: accepted", name)
		}
	}

	// A setting the server refuses fails the statement, and the next one runs as usual.
	opts := db.StatementOptions{Settings: []db.Setting{{Name: "no_such_setting", Value: "1"}}}
	err := runner.WithTenantReadOnly(context.Background(), ten.ID, opts, func(q *dbsqlc.Queries) error {
		_, err := q.HostGetByID(context.Background(), ten.HostID)
		return err
	})
	if err == nil {
		t.Error("unknown setting: accepted")
	}
	err = runner.WithTenantReadOnly(context.Background(), ten.ID, db.StatementOptions{}, func(q *dbsqlc.Queries) error {
		if _, err := q.HostGetByID(context.Background(), ten.HostID); err != nil {
			return err
		}
		if _, err := q.HostGetByID(context.Background(), -1); !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("a missing host: %v, want no rows", err)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

func smallPool(t *testing.T, url string, conns int32) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = conns
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// assertPoolClean checks that each of the pool's n connections is back to the owner with no tenant set.
func assertPoolClean(t *testing.T, pool *pgxpool.Pool, n int) {
	t.Helper()
	ctx := context.Background()
	conns := make([]*pgxpool.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Release()
		}
	}()
	for range n {
		c, err := pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		var tenant, role, sessionUser, readOnly, timeout string
		if err := c.QueryRow(ctx, `SELECT coalesce(current_setting('infrawatch.tenant_id', true), ''), current_user, session_user,
		                                  current_setting('transaction_read_only'), current_setting('statement_timeout')`).
			Scan(&tenant, &role, &sessionUser, &readOnly, &timeout); err != nil {
			t.Fatal(err)
		}
		if tenant != "" || role != sessionUser || readOnly != "off" || timeout != "0" {
			t.Errorf("pooled connection kept tenant %q, role %q (session user %q), read only %s, statement timeout %s",
				tenant, role, sessionUser, readOnly, timeout)
		}
	}
}
