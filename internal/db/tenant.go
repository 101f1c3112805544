package db

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// TenantRunner runs queries on behalf of one tenant at a time. It is what request handlers get instead
// of a pool: there is no way through it to run a query without a tenant.
type TenantRunner struct {
	pool *pgxpool.Pool
}

// NewTenantRunner wraps the owner's pool. Only the process wiring calls it.
func NewTenantRunner(pool *pgxpool.Pool) *TenantRunner {
	return &TenantRunner{pool: pool}
}

// WithTenant runs fn in a transaction as role infrawatch_api with the current tenant set to tenantID,
// and commits when fn returns nil. Both settings are transaction-local (set_config(…, true) and
// SET LOCAL), so they end with the transaction and never leak to the next user of the connection.
// Row-level security and the api views then show fn only that tenant's rows.
func (r *TenantRunner) WithTenant(ctx context.Context, tenantID uuid.UUID, fn func(q *dbsqlc.Queries) error) error {
	if tenantID == uuid.Nil {
		return fmt.Errorf("tenant transaction: %w", ErrNoTenant)
	}
	return pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT set_config('infrawatch.tenant_id', $1, true)", tenantID.String()); err != nil {
			return fmt.Errorf("set tenant: %w", Translate(err))
		}
		if _, err := tx.Exec(ctx, "SET LOCAL ROLE infrawatch_api"); err != nil {
			return fmt.Errorf("switch to role infrawatch_api: %w", Translate(err))
		}
		return fn(dbsqlc.New(tx))
	})
}
