-- name: RefreshTokenCreate :one
-- System work, like the rest of the refresh flow: it runs before a tenant is established.
INSERT INTO app.refresh_tokens (tenant_id, family_id, user_id, client_id, token_hash, scopes, expires_at)
VALUES (@tenant_id, @family_id, @user_id, @client_id, @token_hash, @scopes, @expires_at)
RETURNING *;

-- name: RefreshTokenGetForUpdate :one
SELECT * FROM app.refresh_tokens WHERE token_hash = @token_hash FOR UPDATE;

-- name: RefreshTokenMarkUsed :exec
UPDATE app.refresh_tokens SET used_at = now() WHERE id = @id;

-- name: RefreshTokenRevokeFamily :execrows
UPDATE app.refresh_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE family_id = @family_id;

-- name: RefreshTokenRevokeForUser :execrows
UPDATE app.refresh_tokens SET revoked_at = coalesce(revoked_at, now())
 WHERE user_id = @user_id::uuid AND revoked_at IS NULL;
