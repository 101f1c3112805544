-- name: TenantCreate :one
-- System work: runs as the owner, never through the tenant runner.
INSERT INTO app.tenants (slug, name)
VALUES (@slug, @name)
RETURNING *;

-- name: TenantGetByID :one
SELECT * FROM app.tenants WHERE id = @id;

-- name: TenantGetBySlug :one
SELECT * FROM app.tenants WHERE slug = @slug;

-- name: TenantGetCurrent :one
-- Under the tenant runner, row-level security leaves exactly the current tenant's row.
SELECT * FROM app.tenants WHERE id = app.current_tenant_id();

-- name: TenantUpdateSettings :one
UPDATE app.tenants
   SET name = coalesce(sqlc.narg(name), name),
       time_zone = coalesce(sqlc.narg(time_zone), time_zone),
       updated_at = now()
 WHERE id = app.current_tenant_id()
RETURNING *;

-- name: TenantList :many
-- Operator work: every tenant, by creation.
SELECT * FROM app.tenants WHERE id > @after_id ORDER BY id LIMIT @max_rows;

-- name: TenantSetStatus :one
UPDATE app.tenants SET status = @status, updated_at = now() WHERE id = @id RETURNING *;

-- name: TenantDelete :execrows
-- Cascades to every app table; the time series go with TimeseriesDeleteByTenant in the same transaction.
DELETE FROM app.tenants WHERE id = @id;
