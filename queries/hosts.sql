-- name: HostCreate :one
-- tenant_id is the current tenant's: under the tenant runner no other value passes the row policy.
INSERT INTO app.hosts (tenant_id, name, labels, monitored_by)
VALUES (app.current_tenant_id(), @name, @labels, @monitored_by)
RETURNING *;

-- name: HostGetByID :one
SELECT * FROM app.hosts WHERE id = @id;

-- name: HostList :many
-- Row-level security limits the result to the current tenant; hosts after the cursor id, by id.
SELECT * FROM app.hosts WHERE id > @after_id ORDER BY id LIMIT @max_rows;
