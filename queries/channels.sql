-- name: ChannelCreate :one
INSERT INTO app.channels (tenant_id, name, kind, settings, secrets, enabled, group_wait_seconds,
                          group_interval_seconds, created_by)
VALUES (app.current_tenant_id(), @name, @kind, @settings, @secrets, @enabled, @group_wait_seconds,
        @group_interval_seconds, @created_by)
RETURNING *;

-- name: ChannelGetByID :one
SELECT * FROM app.channels WHERE id = @id;

-- name: ChannelList :many
SELECT * FROM app.channels
 WHERE id > @after_id
   AND (sqlc.narg(kind)::text IS NULL OR kind = sqlc.narg(kind))
 ORDER BY id
 LIMIT @max_rows;

-- name: ChannelUpdate :one
UPDATE app.channels
   SET name = @name, settings = @settings, secrets = @secrets, enabled = @enabled,
       group_wait_seconds = @group_wait_seconds, group_interval_seconds = @group_interval_seconds, updated_at = now()
 WHERE id = @id
RETURNING *;

-- name: ChannelDelete :execrows
DELETE FROM app.channels WHERE id = @id;

-- name: ChannelGetForTenant :one
-- One channel of tenant, for a test message asked through the API (system work; the tenant is the
-- caller's).
SELECT * FROM app.channels WHERE tenant_id = @tenant_id AND id = @id;

-- name: ChannelSecretsList :many
-- Channels with sealed secrets after after_id, for `infrawatch secrets rotate` (system work).
SELECT id, tenant_id, secrets FROM app.channels
 WHERE id > @after_id AND secrets IS NOT NULL
 ORDER BY id
 LIMIT @max_rows;

-- name: ChannelSecretsSet :execrows
-- Stores a channel's secrets sealed anew, unless they changed since they were read.
UPDATE app.channels SET secrets = @secrets WHERE id = @id AND secrets = @old_secrets;
