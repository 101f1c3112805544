package db_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
)

// Health reads what readiness answers from: the schema against the binary's, and whether the
// database takes writes, for this connection and for the connections opened after a change.
func TestHealthCheck(t *testing.T) {
	d := dbtest.New(t, db.FlavorPostgres)
	ctx := context.Background()
	health := db.NewHealth(d.Pool)

	st, err := health.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Schema.Current() || st.Schema.Flavor != db.FlavorPostgres || st.InRecovery || st.ReadOnly || st.NewConnectionsReadOnly {
		t.Errorf("a migrated, writable database: %+v", st)
	}

	// A session opened before the change stays read-write, so it can undo it.
	admin, err := pgx.Connect(ctx, d.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(ctx) })
	alter := func(value string) {
		t.Helper()
		if _, err := admin.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{d.Name}.Sanitize()+" SET default_transaction_read_only = "+value); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { alter("off") })
	alter("on")
	if st, err = health.Check(ctx); err != nil || !st.NewConnectionsReadOnly {
		t.Errorf("after ALTER DATABASE … SET default_transaction_read_only = on: %+v, %v; want new connections read-only", st, err)
	}
	d.Pool.Reset() // the pool's connections are now opened read-only
	if st, err = health.Check(ctx); err != nil || !st.ReadOnly || !st.NewConnectionsReadOnly {
		t.Errorf("on a read-only connection: %+v, %v; want read-only", st, err)
	}
	alter("off")
	d.Pool.Reset()

	if err := db.NewMigrator(d.URL).Down(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if st, err = health.Check(ctx); err != nil || st.Schema.Current() || st.Schema.Version >= st.Schema.Latest {
		t.Errorf("one migration down: %+v, %v; want a schema behind the binary's", st, err)
	}
}
