package db_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/dbtest"
)

// api.search_logs reads ts.logs with its owner's rights, so it filters on the tenant itself: the
// current tenant's lines only, none without a tenant, and nothing for the BI role, which may not call it.
func TestSearchLogsSeesOnlyTheCurrentTenant(t *testing.T) {
	dbtest.ForEachFlavor(t, func(t *testing.T, flavor db.Flavor) {
		ctx := context.Background()
		d := dbtest.New(t, flavor)
		a := dbtest.SeedTenant(t, d, "tenant-a")
		dbtest.SeedTenant(t, d, "tenant-b")
		var ownAsOwner int
		if err := d.Pool.QueryRow(ctx, "SELECT count(*) FROM ts.logs WHERE tenant_id = $1", a.ID).Scan(&ownAsOwner); err != nil || ownAsOwner == 0 {
			t.Fatalf("tenant A has %d log lines (err %v): the seed must give it some", ownAsOwner, err)
		}
		const search = `SELECT count(*), count(*) FILTER (WHERE tenant_id = $1)
		                  FROM api.search_logs('-infinity', 'infinity', NULL, '{}', NULL, 0, 1000)`
		var total, own int
		if err := asAPI(t, d.Pool, a.ID, func(tx pgx.Tx) error { return tx.QueryRow(ctx, search, a.ID).Scan(&total, &own) }); err != nil {
			t.Fatal(err)
		}
		if total != own || own != ownAsOwner {
			t.Errorf("as tenant A: %d lines of which %d are A's; A has %d", total, own, ownAsOwner)
		}
		if err := asAPI(t, d.Pool, uuid.Nil, func(tx pgx.Tx) error { return tx.QueryRow(ctx, search, a.ID).Scan(&total, &own) }); err != nil || total != 0 {
			t.Errorf("with no tenant set: %d lines (err %v), want 0", total, err)
		}
		err := pgx.BeginFunc(ctx, d.Pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SELECT set_config('infrawatch.tenant_id', $1, true), set_config('role', 'infrawatch_bi', true)", a.ID.String()); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, search, a.ID)
			return err
		})
		if sqlState(err) != "42501" {
			t.Errorf("infrawatch_bi calling api.search_logs: err = %v, want permission denied (42501)", err)
		}
	})
}
