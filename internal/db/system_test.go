package db_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
	"github.com/infrawatch/infrawatch/internal/dbtest"
)

// System work answers the package's errors, never the driver's, whether a statement runs on its own or
// in a transaction, and a failed transaction leaves nothing behind.
func TestSystemTranslatesErrors(t *testing.T) {
	d := dbtest.New(t, db.FlavorPostgres)
	sys := db.NewSystem(d.Pool)
	ctx := context.Background()
	if _, err := sys.Queries().TenantGetByID(ctx, uuid.New()); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("missing tenant outside a transaction: %v, want ErrNotFound", err)
	}
	ten := dbtest.SeedTenant(t, d, "acme")
	err := sys.InTx(ctx, func(q *dbsqlc.Queries) error {
		if _, err := q.TenantGetByID(ctx, uuid.New()); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("missing tenant in a transaction: %v, want ErrNotFound", err)
		}
		_, err := q.TenantCreate(ctx, dbsqlc.TenantCreateParams{Slug: ten.Slug, Name: "again"})
		return err
	})
	if !errors.Is(err, db.ErrConflict) {
		t.Errorf("a second tenant with the same slug: %v, want ErrConflict", err)
	}
}
