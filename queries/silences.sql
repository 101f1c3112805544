-- Silences: the tenant's CRUD, and the alerter's read of the active ones (system work).

-- name: SilenceCreate :one
INSERT INTO app.silences (tenant_id, matchers, starts_at, ends_at, comment, created_by)
VALUES (app.current_tenant_id(), @matchers, @starts_at, @ends_at, @comment, @created_by)
RETURNING *;

-- name: SilenceGetByID :one
SELECT * FROM app.silences WHERE id = @id;

-- name: SilenceList :many
-- The current tenant's silences, newest first; active only (not yet ended at @now) when asked.
SELECT * FROM app.silences
 WHERE (@before_id::bigint = 0 OR id < @before_id)
   AND (NOT @active_only::boolean OR ends_at > @now::timestamptz)
 ORDER BY id DESC
 LIMIT @max_rows;

-- name: SilenceUpdate :one
UPDATE app.silences SET matchers = @matchers, starts_at = @starts_at, ends_at = @ends_at, comment = @comment, updated_at = now()
 WHERE id = @id
RETURNING *;

-- name: SilenceExpire :one
-- Ends a silence now, keeping it for the record; one that had not started ends before it starts.
UPDATE app.silences SET ends_at = least(ends_at, @now::timestamptz), starts_at = least(starts_at, @now::timestamptz),
       updated_at = now()
 WHERE id = @id
RETURNING *;

-- name: SilenceListActive :many
-- System work (alerter): the silences of the given tenants in force at @at.
SELECT * FROM app.silences
 WHERE tenant_id = ANY (@tenant_ids::uuid[]) AND starts_at <= @at::timestamptz AND ends_at > @at::timestamptz
 ORDER BY id;
