-- name: SeriesResolve :many
-- System work (ingest): the ids of the given series of one tenant, creating the missing ones. Series
-- created by a concurrent transaction after this statement began are missing from the answer; the
-- caller asks again for those.
WITH input AS (
    -- Set-returning functions side by side in a select list advance together (PostgreSQL 10 and later).
    SELECT unnest(@names::text[]) AS name, unnest(@labels::jsonb[]) AS labels, unnest(@host_ids::bigint[]) AS host_id
), inserted AS (
    INSERT INTO app.series (tenant_id, host_id, name, labels)
    SELECT @tenant_id::uuid, nullif(host_id, 0), name, labels FROM input
    ON CONFLICT (tenant_id, name, labels) DO NOTHING
    RETURNING id, name, labels
)
SELECT id, name, labels FROM inserted
UNION ALL
SELECT s.id, s.name, s.labels
  FROM app.series s JOIN input i ON s.name = i.name AND s.labels = i.labels
 WHERE s.tenant_id = @tenant_id::uuid;

-- name: SeriesCountByTenant :one
SELECT count(*) FROM app.series WHERE tenant_id = @tenant_id;

-- name: SeriesList :many
-- The current tenant's series after the cursor id, optionally by name.
SELECT * FROM app.series
 WHERE id > @after_id AND (sqlc.narg(name)::text IS NULL OR name = sqlc.narg(name))
 ORDER BY id LIMIT @max_rows;
