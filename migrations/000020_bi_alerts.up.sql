-- The BI views of alerting: the tenant's alerts and their history (sql/bi/README.md documents them).
-- Same rules as the views of migration 000013: filtered on the tenant mapped to session_user,
-- security_barrier, names joined for filtering, SELECT for infrawatch_bi only.

CREATE VIEW bi.alerts WITH (security_barrier) AS
    SELECT a.id AS alert_id, a.rule_id, r.name AS rule_name, r.kind AS rule_kind, a.state, a.severity, a.labels,
           a.host_id, h.name AS host_name, a.check_id, ch.name AS check_name, a.value, a.threshold, a.comparator,
           a.summary, a.started_at, a.resolved_at,
           extract(epoch FROM coalesce(a.resolved_at, now()) - a.started_at)::double precision AS firing_seconds,
           a.acked_at, a.acked_by, a.flapping, a.suppressed_reason, a.created_at, a.updated_at
      FROM app.alerts a
      JOIN app.alert_rules r ON r.id = a.rule_id AND r.tenant_id = a.tenant_id
      LEFT JOIN app.hosts h ON h.id = a.host_id AND h.tenant_id = a.tenant_id
      LEFT JOIN app.checks ch ON ch.id = a.check_id AND ch.tenant_id = a.tenant_id
     WHERE a.tenant_id = (SELECT c.tenant_id FROM app.bi_credentials c WHERE c.login = session_user);

CREATE VIEW bi.alert_events WITH (security_barrier) AS
    SELECT e.id AS event_id, e.time, e.alert_id, a.rule_id, r.name AS rule_name, a.severity, e.kind, e.from_state,
           e.to_state, e.value, e.reason, e.actor
      FROM app.alert_events e
      JOIN app.alerts a ON a.id = e.alert_id AND a.tenant_id = e.tenant_id
      JOIN app.alert_rules r ON r.id = a.rule_id AND r.tenant_id = a.tenant_id
     WHERE e.tenant_id = (SELECT c.tenant_id FROM app.bi_credentials c WHERE c.login = session_user);

GRANT SELECT ON bi.alerts, bi.alert_events TO infrawatch_bi;
