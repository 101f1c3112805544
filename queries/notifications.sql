-- name: NotificationClaimCandidates :many
-- The notifications due at @now (NULL: the database's now()): pending ones whose time has come, and
-- those in state sending whose notifier died (a claim sets next_attempt_at to the end of the lease).
-- Channels this notifier is busy with, and tenants that are suspended, are left out. SKIP LOCKED lets
-- notifiers claim side by side; the caller picks one group per channel and locks its other members.
SELECT n.id, n.channel_id, n.rule_id
  FROM app.notifications n
  JOIN app.tenants t ON t.id = n.tenant_id
 WHERE n.state IN ('pending', 'sending')
   AND n.next_attempt_at <= coalesce(sqlc.narg(now)::timestamptz, now())
   AND n.channel_id <> ALL (@busy_channels::bigint[])
   AND t.status = 'active'
 ORDER BY n.next_attempt_at
 LIMIT @max_rows
   FOR UPDATE OF n SKIP LOCKED;

-- name: NotificationClaimGroups :many
-- The members of the groups (channel, rule) being claimed: every notification of the group not yet tried
-- (it goes out with the group now, as Alertmanager flushes a group whole) and those due for a retry.
SELECT n.id, n.channel_id, n.rule_id
  FROM app.notifications n
  JOIN (SELECT unnest(@channel_ids::bigint[]) AS channel_id, unnest(@rule_ids::bigint[]) AS rule_id) g
    ON n.channel_id = g.channel_id AND n.rule_id = g.rule_id
 WHERE n.state IN ('pending', 'sending')
   AND (n.attempts = 0 OR n.next_attempt_at <= coalesce(sqlc.narg(now)::timestamptz, now()))
 ORDER BY n.channel_id, n.id
   FOR UPDATE OF n SKIP LOCKED;

-- name: NotificationMarkSending :many
-- Leases the claimed notifications to owner until @now + lease (the time another notifier may take them
-- over, so next_attempt_at too) and answers what sending them needs, their channel included.
UPDATE app.notifications n
   SET state = 'sending', attempts = n.attempts + 1, lease_owner = @owner::text,
       lease_until = coalesce(sqlc.narg(now)::timestamptz, now()) + @lease::interval,
       next_attempt_at = coalesce(sqlc.narg(now)::timestamptz, now()) + @lease::interval,
       last_attempt_at = coalesce(sqlc.narg(now)::timestamptz, now())
  FROM app.channels c
 WHERE n.id = ANY (@ids::bigint[]) AND c.tenant_id = n.tenant_id AND c.id = n.channel_id
RETURNING n.id, n.tenant_id, n.alert_id, n.channel_id, n.rule_id, n.kind, n.payload, n.created_at, n.attempts, n.last_error,
          c.name AS channel_name, c.kind AS channel_kind, c.settings AS channel_settings,
          c.secrets AS channel_secrets, c.enabled AS channel_enabled;

-- name: NotificationMarkSent :many
-- Records that the notifications went out, where owner still holds their lease.
UPDATE app.notifications
   SET state = 'sent', sent_at = coalesce(sqlc.narg(now)::timestamptz, now()), last_error = '', lease_owner = NULL,
       lease_until = NULL
 WHERE id = ANY (@ids::bigint[]) AND state = 'sending' AND lease_owner = @owner::text
RETURNING id;

-- name: NotificationMarkRetry :many
-- Puts the notifications back for another attempt at next_attempt_at, where owner still holds their lease.
UPDATE app.notifications
   SET state = 'pending', next_attempt_at = @next_attempt_at::timestamptz, last_error = @last_error::text,
       lease_owner = NULL, lease_until = NULL
 WHERE id = ANY (@ids::bigint[]) AND state = 'sending' AND lease_owner = @owner::text
RETURNING id;

-- name: NotificationMarkFailed :many
-- Records that the notifications will not go out (refused, given up), where owner still holds their lease.
UPDATE app.notifications
   SET state = 'failed', last_error = @last_error::text, lease_owner = NULL, lease_until = NULL
 WHERE id = ANY (@ids::bigint[]) AND state = 'sending' AND lease_owner = @owner::text
RETURNING id;

-- name: NotificationInsertTest :one
-- A channel's test message (POST /channels/{id}/test), leased at once to owner, who sends it now.
INSERT INTO app.notifications (tenant_id, channel_id, kind, payload, state, attempts, lease_owner, lease_until,
                               next_attempt_at, last_attempt_at)
VALUES (@tenant_id, @channel_id, 'test', @payload, 'sending', 1, @owner::text, now() + @lease::interval,
        now() + @lease::interval, now())
RETURNING id, created_at;

-- name: NotificationList :many
-- The tenant's delivery log, newest first, with filters.
SELECT n.id, n.alert_id, n.channel_id, c.name AS channel_name, c.kind AS channel_kind, n.rule_id, n.kind, n.state,
       n.attempts, n.last_error, n.created_at, n.next_attempt_at, n.sent_at
  FROM app.notifications n
  JOIN app.channels c ON c.tenant_id = n.tenant_id AND c.id = n.channel_id
 WHERE n.id < @before_id
   AND (sqlc.narg(state)::text IS NULL OR n.state = sqlc.narg(state))
   AND (sqlc.narg(kind)::text IS NULL OR n.kind = sqlc.narg(kind))
   AND (sqlc.narg(channel_id)::bigint IS NULL OR n.channel_id = sqlc.narg(channel_id))
   AND (sqlc.narg(alert_id)::bigint IS NULL OR n.alert_id = sqlc.narg(alert_id))
   AND (sqlc.narg(since)::timestamptz IS NULL OR n.created_at >= sqlc.narg(since))
   AND (sqlc.narg(until)::timestamptz IS NULL OR n.created_at < sqlc.narg(until))
 ORDER BY n.id DESC
 LIMIT @max_rows;

-- name: NotificationGetByID :one
SELECT n.id, n.alert_id, n.channel_id, c.name AS channel_name, c.kind AS channel_kind, n.rule_id, n.kind, n.state,
       n.attempts, n.last_error, n.created_at, n.next_attempt_at, n.sent_at, n.payload
  FROM app.notifications n
  JOIN app.channels c ON c.tenant_id = n.tenant_id AND c.id = n.channel_id
 WHERE n.id = @id;
