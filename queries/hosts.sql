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
