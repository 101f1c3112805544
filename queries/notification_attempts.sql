-- name: NotificationAttemptsInsert :exec
-- Records one attempt of each notification a message carried (system work).
INSERT INTO app.notification_attempts (tenant_id, notification_id, attempt, started_at, duration_ms, outcome,
                                       status_code, error, message_key)
SELECT @tenant_id, a.notification_id, a.attempt, @started_at, @duration_ms, @outcome, sqlc.narg(status_code)::integer,
       @error, @message_key
  FROM (SELECT unnest(@notification_ids::bigint[]) AS notification_id, unnest(@attempts::integer[]) AS attempt) a;

-- name: NotificationAttemptList :many
-- The attempts of one of the tenant's notifications, first first.
SELECT * FROM app.notification_attempts WHERE notification_id = @notification_id ORDER BY attempt, id;
