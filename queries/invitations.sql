-- name: InvitationCreate :one
-- Under the tenant runner: an admin invites into its own tenant. InvitationRevokePending goes first.
INSERT INTO app.invitations (tenant_id, email, role, name, token_hash, created_by, expires_at)
VALUES (app.current_tenant_id(), @email, @role, @name, @token_hash, @created_by, @expires_at)
RETURNING *;

-- name: InvitationRevokePending :execrows
-- Revokes the tenant's live invitation of an email, if there is one: re-inviting or removing the member.
UPDATE app.invitations SET revoked_at = now()
 WHERE lower(email) = lower(@email) AND accepted_at IS NULL AND revoked_at IS NULL;

-- name: InvitationList :many
SELECT * FROM app.invitations WHERE id > @after_id ORDER BY id LIMIT @max_rows;

-- name: InvitationGetByID :one
SELECT * FROM app.invitations WHERE id = @id;

-- name: InvitationRevoke :execrows
-- Only a live invitation can be revoked; an accepted one is a membership (DELETE /users/{id}).
UPDATE app.invitations SET revoked_at = now() WHERE id = @id AND accepted_at IS NULL AND revoked_at IS NULL;

-- name: InvitationGetForUpdate :one
-- System work: the token names its tenant, so it is looked up before any tenant is known.
SELECT * FROM app.invitations WHERE token_hash = @token_hash FOR UPDATE;

-- name: InvitationAccept :exec
UPDATE app.invitations SET accepted_at = now() WHERE id = @id;
