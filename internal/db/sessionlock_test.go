package db_test

import (
	"context"
	"errors"
	"testing"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/dbtest"
)

// WithSessionLock runs its work while it holds the lock (outside any transaction: the maintenance tests
// CALL TimescaleDB's refresh in it): other sessions cannot take the key, not even at transaction level,
// and a second caller does not run. The lock is gone when it returns, its work's
// error with it, and also when the work was cut off by its context.
func TestWithSessionLock(t *testing.T) {
	d := dbtest.New(t, db.FlavorPostgres)
	sys := db.NewSystem(d.Pool)
	ctx := context.Background()
	const key = 4242
	othersGet := func() bool {
		t.Helper()
		var got bool
		err := sys.InTx(ctx, func(q *dbsqlc.Queries) (err error) { got, err = q.MaintenanceTryLock(ctx, key); return err })
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	boom := errors.New("boom")
	locked, err := sys.WithSessionLock(ctx, key, func(q *dbsqlc.Queries) error {
		if othersGet() {
			t.Error("another session took the key at transaction level while the session lock was held")
		}
		ran := false
		if again, err := sys.WithSessionLock(ctx, key, func(*dbsqlc.Queries) error { ran = true; return nil }); again || ran || err != nil {
			t.Errorf("a second caller: locked %v, ran %v, err %v; want neither", again, ran, err)
		}
		if _, err := q.MaintenanceTryLock(ctx, key); err != nil { // the session's own key: granted again
			t.Errorf("a statement of the work: %v", err)
		}
		return boom
	})
	if !locked || !errors.Is(err, boom) {
		t.Fatalf("WithSessionLock = %v, %v; want locked and the work's error", locked, err)
	}
	if !othersGet() {
		t.Error("the key is still held after WithSessionLock returned")
	}

	// Work cut off by its context: the connection that held the lock is closed, not pooled with it.
	cut, cancel := context.WithCancel(ctx)
	locked, err = sys.WithSessionLock(cut, key, func(q *dbsqlc.Queries) error {
		cancel()
		_, err := q.MaintenanceTryLock(cut, key)
		return err
	})
	if !locked || err == nil {
		t.Fatalf("work cut off: locked %v, err %v; want locked and an error", locked, err)
	}
	if !othersGet() {
		t.Error("the key is still held after the work was cut off")
	}
}
