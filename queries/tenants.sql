-- name: TenantOverview :one
-- The current tenant at a glance. A host reports when one of its series has a sample at or after
-- @reporting_since: per host, one index probe per series until one answers. Checks are counted by
-- app.checks.status; a disabled check counts as disabled whatever its last status.
SELECT (SELECT count(*) FROM app.hosts) AS hosts_total,
       (SELECT count(*)
          FROM app.hosts h
         WHERE EXISTS (SELECT
                         FROM app.series s
                        CROSS JOIN LATERAL (SELECT 1 FROM api.samples x
                                             WHERE x.series_id = s.id AND x.time >= @reporting_since
                                             LIMIT 1) recent
                        WHERE s.host_id = h.id)) AS hosts_reporting,
       c.total AS checks_total, c.up AS checks_up, c.down AS checks_down, c.unknown AS checks_unknown,
       c.disabled AS checks_disabled,
       (SELECT count(*) FROM app.series) AS series
  FROM (SELECT count(*) AS total,
               count(*) FILTER (WHERE enabled AND status = 'up') AS up,
               count(*) FILTER (WHERE enabled AND status = 'down') AS down,
               count(*) FILTER (WHERE enabled AND status IS NULL) AS unknown,
               count(*) FILTER (WHERE NOT enabled) AS disabled
          FROM app.checks) c;

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
