-- name: HostCreate :one
-- tenant_id is the current tenant's: under the tenant runner no other value passes the row policy.
INSERT INTO app.hosts (tenant_id, name, labels, monitored_by)
VALUES (app.current_tenant_id(), @name, @labels, @monitored_by)
RETURNING *;

-- name: HostGetByID :one
SELECT * FROM app.hosts WHERE id = @id;

-- name: HostList :many
-- Row-level security limits the result to the current tenant; hosts after the cursor id whose labels
-- contain every pair of @labels (all hosts when it is NULL), by id.
SELECT * FROM app.hosts
 WHERE id > @after_id AND (sqlc.narg(labels)::jsonb IS NULL OR labels @> sqlc.narg(labels)::jsonb)
 ORDER BY id
 LIMIT @max_rows;

-- name: HostUpdate :one
UPDATE app.hosts
   SET name = coalesce(sqlc.narg(name), name),
       labels = coalesce(sqlc.narg(labels)::jsonb, labels),
       monitored_by = coalesce(sqlc.narg(monitored_by), monitored_by),
       updated_at = now()
 WHERE id = @id
RETURNING *;

-- name: HostDelete :execrows
DELETE FROM app.hosts WHERE id = @id;

-- name: HostSeen :one
-- System work (ingest): registers a host that pushed data or marks it seen, and returns its id. Labels
-- and metadata are replaced when the push carries them.
INSERT INTO app.hosts (tenant_id, name, labels, metadata, monitored_by, last_seen_at)
VALUES (@tenant_id, @name, coalesce(sqlc.narg(labels)::jsonb, '{}'), coalesce(sqlc.narg(metadata)::jsonb, '{}'), 'agent', now())
ON CONFLICT (tenant_id, name) DO UPDATE
   SET last_seen_at = now(),
       labels = coalesce(sqlc.narg(labels)::jsonb, app.hosts.labels),
       metadata = coalesce(sqlc.narg(metadata)::jsonb, app.hosts.metadata),
       monitored_by = CASE WHEN app.hosts.monitored_by = 'polling' THEN 'both' ELSE app.hosts.monitored_by END,
       updated_at = CASE WHEN sqlc.narg(labels)::jsonb IS NULL AND sqlc.narg(metadata)::jsonb IS NULL
                         THEN app.hosts.updated_at ELSE now() END
RETURNING id;

-- name: HostIsCurrent :one
-- System work (ingest): whether the id the ingest cache holds for a host name still belongs to a host of
-- that name, that is whether the host was neither deleted nor renamed since.
SELECT EXISTS (SELECT FROM app.hosts WHERE tenant_id = @tenant_id AND id = @id AND name = @name);
