-- name: APIKeyCreate :one
INSERT INTO app.api_keys (tenant_id, name, prefix, secret_hash, scopes, created_by, expires_at)
VALUES (app.current_tenant_id(), @name, @prefix, @secret_hash, @scopes, @created_by, @expires_at)
RETURNING *;

-- name: APIKeyList :many
SELECT * FROM app.api_keys WHERE id > @after_id ORDER BY id LIMIT @max_rows;

-- name: APIKeyGetByID :one
SELECT * FROM app.api_keys WHERE id = @id;

-- name: APIKeyRevoke :one
UPDATE app.api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = @id RETURNING *;

-- name: APIKeyAuthenticate :one
-- System work at every request with an API key: no cache, so a revoked key stops at once.
SELECT k.id, k.tenant_id, k.secret_hash, k.scopes, k.expires_at, k.revoked_at, t.status AS tenant_status,
       t.max_streams AS tenant_max_streams, t.max_heavy_reads AS tenant_max_heavy_reads
  FROM app.api_keys k JOIN app.tenants t ON t.id = k.tenant_id
 WHERE k.prefix = @prefix;
