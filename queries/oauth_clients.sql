-- name: OAuthClientCreate :one
INSERT INTO app.oauth_clients (tenant_id, client_id, name, secret_hash, scopes, created_by)
VALUES (app.current_tenant_id(), @client_id, @name, @secret_hash, @scopes, @created_by)
RETURNING *;

-- name: OAuthClientList :many
SELECT * FROM app.oauth_clients WHERE id > @after_id ORDER BY id LIMIT @max_rows;

-- name: OAuthClientRevoke :one
UPDATE app.oauth_clients SET revoked_at = coalesce(revoked_at, now()) WHERE id = @id RETURNING *;

-- name: OAuthClientAuthenticate :one
-- System work: the token endpoint and every request with a client token.
SELECT c.id, c.tenant_id, c.client_id, c.secret_hash, c.scopes, c.revoked_at, t.status AS tenant_status,
       t.max_streams AS tenant_max_streams, t.max_heavy_reads AS tenant_max_heavy_reads
  FROM app.oauth_clients c JOIN app.tenants t ON t.id = c.tenant_id
 WHERE c.client_id = @client_id;

-- name: OAuthClientGetByID :one
SELECT * FROM app.oauth_clients WHERE id = @id;
