-- Alerts: what the alerter writes in the transaction of a batch (system work), and what the API reads
-- and acknowledges as the current tenant.

-- name: AlertListOpen :many
-- System work (alerter): the open alerts of the given rules (pending, firing, suppressed, or flapping),
-- with the names of what they are about, shaped like the evaluation statements' objects (see
-- queries/alert_rules.sql) without a value: those the evaluation did not answer are about things it no
-- longer finds.
SELECT jsonb_build_object(
           'rule_id', a.rule_id, 'fingerprint', a.fingerprint, 'labels', a.labels,
           'series_id', a.series_id, 'host_id', a.host_id, 'check_id', a.check_id,
           'host_name', (SELECT h.name FROM app.hosts h WHERE h.tenant_id = a.tenant_id AND h.id = a.host_id),
           'check_name', (SELECT c.name FROM app.checks c WHERE c.tenant_id = a.tenant_id AND c.id = a.check_id),
           'parent_down', (SELECT p.name FROM app.checks c JOIN app.checks p ON p.tenant_id = c.tenant_id AND p.id = c.parent_id
                            WHERE c.tenant_id = a.tenant_id AND c.id = a.check_id AND p.status = 'down'),
           'value', NULL, 'breach', false, 'recovered', true, 'alert', to_jsonb(a.*))::jsonb AS obs
  FROM app.alerts a
 WHERE a.rule_id = ANY (@rule_ids::bigint[]) AND (a.state IN ('pending', 'firing', 'suppressed') OR a.flapping);

-- name: AlertApply :many
-- System work (alerter): writes the alerts a batch changed, from a JSON array of their new states,
-- inserting the first alert of a fingerprint and updating it ever after (reopened, never duplicated).
-- The acknowledgement is the API's, except that it ends when the alert stops firing.
INSERT INTO app.alerts AS a (tenant_id, rule_id, fingerprint, state, severity, labels, series_id, host_id, check_id,
                             value, threshold, comparator, summary, description, active_since, started_at, resolved_at,
                             notified, last_notified_at, escalated, flapping, changes, silenced_by, maintenance_by,
                             suppressed_reason, updated_at)
SELECT c.tenant_id, c.rule_id, c.fingerprint, c.state, c.severity, c.labels, c.series_id, c.host_id, c.check_id,
       c.value, c.threshold, c.comparator, c.summary, c.description, c.active_since, c.started_at, c.resolved_at,
       c.notified, c.last_notified_at, c.escalated, c.flapping, c.changes, c.silenced_by, c.maintenance_by,
       c.suppressed_reason, c.updated_at
  FROM jsonb_to_recordset(@changes::jsonb) AS c (tenant_id uuid, rule_id bigint, fingerprint text, state text,
       severity text, labels jsonb, series_id bigint, host_id bigint, check_id bigint, value double precision,
       threshold double precision, comparator text, summary text, description text, active_since timestamptz,
       started_at timestamptz, resolved_at timestamptz, notified boolean, last_notified_at timestamptz,
       escalated integer, flapping boolean, changes timestamptz[], silenced_by bigint[], maintenance_by bigint[],
       suppressed_reason text, updated_at timestamptz)
ON CONFLICT (rule_id, fingerprint) DO UPDATE
   SET state = excluded.state, severity = excluded.severity, labels = excluded.labels, series_id = excluded.series_id,
       host_id = excluded.host_id, check_id = excluded.check_id, value = excluded.value, threshold = excluded.threshold,
       comparator = excluded.comparator, summary = excluded.summary, description = excluded.description,
       active_since = excluded.active_since, started_at = excluded.started_at, resolved_at = excluded.resolved_at,
       notified = excluded.notified, last_notified_at = excluded.last_notified_at, escalated = excluded.escalated,
       flapping = excluded.flapping, changes = excluded.changes, silenced_by = excluded.silenced_by,
       maintenance_by = excluded.maintenance_by, suppressed_reason = excluded.suppressed_reason,
       acked_at = CASE WHEN excluded.state IN ('firing', 'suppressed') THEN a.acked_at END,
       acked_by = CASE WHEN excluded.state IN ('firing', 'suppressed') THEN a.acked_by END,
       ack_comment = CASE WHEN excluded.state IN ('firing', 'suppressed') THEN a.ack_comment ELSE '' END,
       updated_at = excluded.updated_at
RETURNING a.id, a.rule_id, a.fingerprint, (a.acked_at IS NOT NULL)::boolean AS acked;

-- name: AlertEnqueueNotifications :execrows
-- System work (alerter), in the batch's transaction: the outbox rows of app.notifications (the contract
-- with notification delivery, migrations/000011), one per message and channel, from a JSON array of
-- {"tenant_id", "alert_id", "kind", "channels": [ids], "payload"}. Channels that are gone, disabled or
-- not the alert's tenant's are skipped; so are repeats and escalations of an alert acknowledged since
-- the batch read it. Kept here rather than in a notifications file, which notification delivery owns.
INSERT INTO app.notifications (tenant_id, alert_id, channel_id, kind, payload)
SELECT m.tenant_id, m.alert_id, ch.id, m.kind, m.payload
  FROM jsonb_to_recordset(@messages::jsonb) AS m (tenant_id uuid, alert_id bigint, kind text, channels bigint[], payload jsonb)
  JOIN app.channels ch ON ch.tenant_id = m.tenant_id AND ch.id = ANY (m.channels) AND ch.enabled
 WHERE NOT (m.kind IN ('repeat', 'escalation')
            AND EXISTS (SELECT FROM app.alerts a WHERE a.id = m.alert_id AND a.acked_at IS NOT NULL))
 ORDER BY m.alert_id, ch.id;

-- name: AlertGetByID :one
SELECT a.*, r.name AS rule_name, r.kind AS rule_kind
  FROM app.alerts a JOIN app.alert_rules r ON r.tenant_id = a.tenant_id AND r.id = a.rule_id
 WHERE a.id = @id;

-- name: AlertList :many
-- The current tenant's alerts, newest first, after the cursor id (0: from the newest), filtered by
-- states, severity, rule, host, check and labels (each optional).
SELECT a.*, r.name AS rule_name, r.kind AS rule_kind
  FROM app.alerts a JOIN app.alert_rules r ON r.tenant_id = a.tenant_id AND r.id = a.rule_id
 WHERE (@before_id::bigint = 0 OR a.id < @before_id)
   AND (cardinality(@states::text[]) = 0 OR a.state = ANY (@states::text[]))
   AND (sqlc.narg(severity)::text IS NULL OR a.severity = sqlc.narg(severity))
   AND (sqlc.narg(rule_id)::bigint IS NULL OR a.rule_id = sqlc.narg(rule_id))
   AND (sqlc.narg(host_id)::bigint IS NULL OR a.host_id = sqlc.narg(host_id))
   AND (sqlc.narg(check_id)::bigint IS NULL OR a.check_id = sqlc.narg(check_id))
   AND a.labels @> @labels::jsonb
 ORDER BY a.id DESC
 LIMIT @max_rows;

-- name: AlertAck :one
-- Acknowledges a firing (or suppressed) alert: it stops repeating and escalating until it resolves.
UPDATE app.alerts SET acked_at = @acked_at, acked_by = @acked_by, ack_comment = @comment, updated_at = @acked_at
 WHERE id = @id AND state IN ('firing', 'suppressed')
RETURNING id, rule_id, severity, summary, acked_at;

-- name: AlertUnack :execrows
UPDATE app.alerts SET acked_at = NULL, acked_by = NULL, ack_comment = '', updated_at = now()
 WHERE id = @id AND acked_at IS NOT NULL;

-- name: AlertNotificationList :many
-- The outbox rows of one alert, for its timeline: what was enqueued and what delivery made of it. Kept
-- here rather than in a notifications file, which notification delivery owns.
SELECT n.id, n.kind, n.channel_id, ch.name AS channel_name, ch.kind AS channel_kind, n.state, n.attempts, n.last_error,
       n.created_at, n.sent_at
  FROM app.notifications n JOIN app.channels ch ON ch.tenant_id = n.tenant_id AND ch.id = n.channel_id
 WHERE n.alert_id = @alert_id::bigint
 ORDER BY n.id;
