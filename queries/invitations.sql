-- name: InvitationCreate :one
INSERT INTO app.invitations (tenant_id, user_id, token_hash, created_by, expires_at)
VALUES (@tenant_id, @user_id, @token_hash, @created_by, @expires_at)
RETURNING *;

-- name: InvitationGetForUpdate :one
SELECT * FROM app.invitations WHERE token_hash = @token_hash FOR UPDATE;

-- name: InvitationAccept :exec
UPDATE app.invitations SET accepted_at = now() WHERE id = @id;
