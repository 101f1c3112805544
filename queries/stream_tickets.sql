-- name: StreamTicketCreate :exec
-- System work (internal/auth): the caller's tenant and user come from its authenticated access token.
INSERT INTO app.stream_tickets (tenant_id, user_id, secret_hash, credential_expires_at, expires_at)
VALUES (@tenant_id, @user_id, @secret_hash, @credential_expires_at, @expires_at);

-- name: StreamTicketDeleteStale :execrows
-- A user's spent and expired tickets go when it asks for another, so the table holds no more than the
-- tickets of the last minute.
DELETE FROM app.stream_tickets
 WHERE user_id = @user_id AND (used_at IS NOT NULL OR expires_at < now());

-- name: StreamTicketRedeem :one
-- Spends a ticket: one UPDATE marks it used only if it is unused and unexpired, so of two replicas (or
-- two requests) presenting it at once exactly one gets the row.
UPDATE app.stream_tickets SET used_at = now()
 WHERE secret_hash = @secret_hash AND used_at IS NULL AND expires_at > now()
RETURNING tenant_id, user_id, credential_expires_at;
