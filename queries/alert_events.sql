-- Alert events: the history of each alert. The alerter writes changes of state and flapping in the
-- transaction of its batch; the API writes acknowledgements in theirs.

-- name: AlertEventInsert :exec
-- Appends events from a JSON array of {"tenant_id", "alert_id", "time", "kind", "from_state", "to_state",
-- "value", "reason", "actor"}.
INSERT INTO app.alert_events (tenant_id, alert_id, time, kind, from_state, to_state, value, reason, actor)
SELECT e.tenant_id, e.alert_id, e.time, e.kind, e.from_state, e.to_state, e.value, coalesce(e.reason, ''), coalesce(e.actor, '')
  FROM jsonb_to_recordset(@events::jsonb) AS e (tenant_id uuid, alert_id bigint, time timestamptz, kind text,
       from_state text, to_state text, value double precision, reason text, actor text)
 ORDER BY e.alert_id, e.time;

-- name: AlertEventCreate :exec
-- One event of the current tenant's alert (an acknowledgement).
INSERT INTO app.alert_events (tenant_id, alert_id, time, kind, reason, actor)
VALUES (app.current_tenant_id(), @alert_id, @time, @kind, @reason, @actor);

-- name: AlertEventListByAlert :many
SELECT * FROM app.alert_events WHERE alert_id = @alert_id ORDER BY id LIMIT @max_rows;
