package tenant

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/db/dbsqlc"
)

// Operator manages tenants on behalf of the platform operator, across tenants, as the owning login.
type Operator struct {
	sys *db.System
}

// NewOperator returns the operator's tenant service.
func NewOperator(sys *db.System) *Operator { return &Operator{sys: sys} }

// Create makes a tenant and its first owner; see Create.
func (o *Operator) Create(ctx context.Context, nt NewTenant) (Created, error) {
	return Create(ctx, o.sys, nt)
}

// List returns tenants after the cursor id.
func (o *Operator) List(ctx context.Context, after uuid.UUID, limit int32) ([]dbsqlc.AppTenant, error) {
	return o.sys.Queries().TenantList(ctx, dbsqlc.TenantListParams{AfterID: after, MaxRows: limit})
}

// SetStatus suspends ("suspended") or resumes ("active") a tenant. A suspended tenant's credentials are
// refused with 403 at the next request.
func (o *Operator) SetStatus(ctx context.Context, id uuid.UUID, status string) (dbsqlc.AppTenant, error) {
	return o.sys.Queries().TenantSetStatus(ctx, dbsqlc.TenantSetStatusParams{ID: id, Status: status})
}

// Delete removes a tenant and all its data — configuration through the foreign keys' cascades, time
// series and their rollups explicitly — in one transaction.
func Delete(ctx context.Context, sys *db.System, id uuid.UUID) error {
	return sys.InTx(ctx, func(q *dbsqlc.Queries) error {
		for name, del := range map[string]func(context.Context, uuid.UUID) (int64, error){
			"samples": q.SamplesDeleteByTenant, "check results": q.CheckResultDeleteByTenant, "logs": q.LogDeleteByTenant,
			"rollups": q.RollupsDeleteByTenant, "ingest usage": q.IngestUsageDeleteByTenant,
		} {
			if _, err := del(ctx, id); err != nil {
				return fmt.Errorf("delete tenant's %s: %w", name, err)
			}
		}
		n, err := q.TenantDelete(ctx, id)
		if err != nil {
			return fmt.Errorf("delete tenant: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("delete tenant %s: %w", id, db.ErrNotFound)
		}
		return nil
	})
}

// Delete removes a tenant and all its data; see Delete.
func (o *Operator) Delete(ctx context.Context, id uuid.UUID) error { return Delete(ctx, o.sys, id) }
