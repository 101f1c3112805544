-- Alert rules: the tenant's CRUD (under row-level security), and the alerter's system work across
-- tenants: claiming due rules under a lease, the set-based evaluation of each kind, completing slots.

-- name: AlertRuleCreate :one
-- The first evaluation falls at a random point within the interval, so that rules created together do
-- not all run in the same second ever after.
INSERT INTO app.alert_rules (tenant_id, name, kind, severity, labels, summary, description, for_seconds,
                             interval_seconds, repeat_seconds, flap_changes, flap_window_seconds, enabled, channels,
                             escalation, settings, eval, created_by, next_eval_at)
VALUES (app.current_tenant_id(), @name, @kind, @severity, @labels, @summary, @description, @for_seconds,
        @interval_seconds::int, @repeat_seconds, @flap_changes, @flap_window_seconds, @enabled, @channels::bigint[],
        @escalation, @settings, @eval, sqlc.narg(created_by), now() + random() * make_interval(secs => @interval_seconds::int))
RETURNING *;

-- name: AlertRuleGetByID :one
SELECT * FROM app.alert_rules WHERE id = @id;

-- name: AlertRuleList :many
SELECT * FROM app.alert_rules
 WHERE id > @after_id
   AND (sqlc.narg(kind)::text IS NULL OR kind = sqlc.narg(kind))
   AND (sqlc.narg(enabled)::boolean IS NULL OR enabled = sqlc.narg(enabled))
 ORDER BY id
 LIMIT @max_rows;

-- name: AlertRuleUpdate :one
-- A rule that is disabled is due at once, so that the alerter closes its open alerts; one whose interval
-- changed keeps its phase no longer and starts again within the new interval.
UPDATE app.alert_rules
   SET name = @name, severity = @severity, labels = @labels, summary = @summary, description = @description,
       for_seconds = @for_seconds, interval_seconds = @interval_seconds::int, repeat_seconds = @repeat_seconds,
       flap_changes = @flap_changes, flap_window_seconds = @flap_window_seconds, enabled = @enabled,
       channels = @channels::bigint[], escalation = @escalation, settings = @settings, eval = @eval,
       next_eval_at = CASE WHEN enabled AND NOT @enabled THEN now()
                           WHEN interval_seconds <> @interval_seconds::int THEN now() + random() * make_interval(secs => @interval_seconds::int)
                           ELSE next_eval_at END,
       updated_at = now()
 WHERE id = @id
RETURNING *;

-- name: AlertRuleDelete :execrows
DELETE FROM app.alert_rules WHERE id = @id;

-- name: AlertRuleKnownChannels :many
-- Those of the given ids that are channels of the current tenant (app.channels), for a rule's channels
-- and escalation steps. Kept here rather than in a channels file, which notification delivery owns.
SELECT id FROM app.channels WHERE id = ANY (@ids::bigint[]);

-- name: AlertRuleClaimDue :many
-- System work (alerter): claims up to max_rows rules due at @now (NULL: the database's now()) for owner,
-- leased for @lease_seconds. SKIP LOCKED lets alerters claim side by side; a slot is evaluated by the
-- holder of its lease only. Disabled rules are claimed while they have open alerts, which the
-- evaluation then closes. Rules of suspended tenants wait.
WITH due AS (
    SELECT r.id
      FROM app.alert_rules r
      JOIN app.tenants t ON t.id = r.tenant_id
     WHERE r.next_eval_at <= coalesce(sqlc.narg(now)::timestamptz, now())
       AND (r.lease_expires_at IS NULL OR r.lease_expires_at < coalesce(sqlc.narg(now)::timestamptz, now()))
       AND t.status = 'active'
       AND (r.enabled OR EXISTS (SELECT FROM app.alerts a
                                  WHERE a.rule_id = r.id AND (a.state IN ('pending', 'firing', 'suppressed') OR a.flapping)))
     ORDER BY r.next_eval_at
     LIMIT @max_rows
       FOR UPDATE OF r SKIP LOCKED
)
UPDATE app.alert_rules r
   SET lease_owner = @owner::text,
       lease_expires_at = coalesce(sqlc.narg(now)::timestamptz, now()) + make_interval(secs => @lease_seconds::int)
  FROM due, app.tenants t
 WHERE r.id = due.id AND t.id = r.tenant_id
RETURNING r.id, r.tenant_id, r.name, r.kind, r.severity, r.labels, r.summary, r.description, r.for_seconds,
          r.interval_seconds, r.repeat_seconds, r.flap_changes, r.flap_window_seconds, r.enabled, r.channels,
          r.escalation, r.settings, r.eval, r.next_eval_at, t.slug AS tenant_slug, t.name AS tenant_name;

-- name: AlertRuleComplete :many
-- System work (alerter), in the transaction that writes the batch's transitions: moves the rules still
-- leased by owner for the slot they were claimed for on to their next slot, records when and how late
-- they were evaluated, and releases the lease. A rule whose lease was lost (it expired and another
-- alerter claimed the rule) matches nothing: its transitions are not written, so a slot is never
-- evaluated twice.
UPDATE app.alert_rules r
   SET next_eval_at = c.next_eval_at,
       lease_owner = NULL,
       lease_expires_at = NULL,
       last_eval_at = @evaluated_at::timestamptz,
       last_eval_lag_ms = least((extract(epoch FROM @evaluated_at::timestamptz) - extract(epoch FROM c.slot)) * 1000, 2147483647)::int
  FROM (SELECT unnest(@ids::bigint[]) AS id, unnest(@slots::timestamptz[]) AS slot,
               unnest(@next_eval_at::timestamptz[]) AS next_eval_at) c
 WHERE r.id = c.id AND r.lease_owner = @owner::text AND r.next_eval_at = c.slot
RETURNING r.id;

-- name: AlertRuleReleaseLeases :exec
-- Gives back rules claimed but not evaluated (the alerter is stopping), so another one takes them now.
UPDATE app.alert_rules SET lease_owner = NULL, lease_expires_at = NULL
 WHERE id = ANY (@ids::bigint[]) AND lease_owner = @owner::text;

-- name: AlertEvalBegin :exec
-- Turns JIT compilation off for the rest of the transaction of an evaluation: the evaluation statements'
-- estimates are high (a lateral read per series, of raw samples or of a rollup) while their work is
-- small, and PostgreSQL would spend seconds compiling a few milliseconds of work.
SELECT set_config('jit', 'off', true);

-- name: AlertRuleSetStatementTimeout :exec
-- Bounds each statement of the rest of the transaction (a backtest runs a tenant's rule as system work).
SELECT set_config('statement_timeout', @milliseconds::bigint::text, true);

-- The evaluation statements. Each evaluates the rules @rule_ids of its kind at every time of @at (the
-- alerter passes one time, a backtest many) for every thing the rule is about, across tenants, and
-- answers one JSON object per thing worth a decision: its condition holds (breach), it has not
-- recovered past a hysteresis threshold, or its alert is open. Everything else — the many series that
-- are fine — stays in the database. The object:
--   {"rule_id", "at", "fingerprint", "identity", "labels", "series_id", "host_id", "host_name", "check_id",
--    "check_name", "parent_down", "value", "breach", "recovered", "alert"}
-- identity is what the fingerprint hashes with the rule id; labels add what describes the thing;
-- parent_down names the check's parent when it is down (dependencies); alert is the alert row of that
-- fingerprint in any state, or null. Each statement ends with the same part (from "fingerprinted");
-- keep the four alike. "sticky" is for absent rules: a thing silent for longer than the look-back still
-- holds while its alert is open.

-- name: AlertEvalThreshold :many
-- Threshold rules: the aggregate of each matching series over the window (at − window, at] — raw
-- samples (NaN skipped) for windows up to an hour; beyond, whole buckets of the 5-minute rollup, from the
-- one holding at − window to the last complete one — compared with the threshold. rate is per second over a counter: the sum of the increases between consecutive samples
-- of the window, a decrease counting as a reset (the new value is the increase since the reset, as
-- Prometheus counts), divided by the time from the first sample to the last; no extrapolation to the
-- window's edges.
WITH rule AS (
    SELECT r.id AS rule_id, r.tenant_id, r.eval AS e, t.at
      FROM app.alert_rules r CROSS JOIN unnest(@at::timestamptz[]) AS t (at)
     WHERE r.id = ANY (@rule_ids::bigint[]) AND r.kind = 'threshold' AND r.enabled
), matched AS (
    SELECT rule.*, s.id AS series_id, s.host_id, s.labels || jsonb_build_object('__name__', s.name) AS identity,
           (SELECT c.id FROM app.checks c
             WHERE c.tenant_id = rule.tenant_id AND s.labels->>'check_id' ~ '^[0-9]{1,18}$'
               AND c.id = (s.labels->>'check_id')::bigint) AS check_id,
           make_interval(secs => (rule.e->>'window')::float8) AS width
      FROM rule CROSS JOIN LATERAL infrawatch.alert_series(rule.tenant_id, rule.e->'selector') s
), valued AS (
    SELECT m.*,
           CASE m.e->>'tier' WHEN 'raw' THEN
               CASE m.e->>'agg' WHEN 'avg' THEN raw.avg WHEN 'min' THEN raw.min WHEN 'max' THEN raw.max
                                WHEN 'last' THEN raw.last WHEN 'sum' THEN raw.sum WHEN 'count' THEN raw.count
                                WHEN 'rate' THEN raw.rate END
           ELSE
               CASE m.e->>'agg' WHEN 'avg' THEN roll.avg WHEN 'min' THEN roll.min WHEN 'max' THEN roll.max
                                WHEN 'last' THEN roll.last WHEN 'sum' THEN roll.sum WHEN 'count' THEN roll.count END
           END AS value
      FROM matched m
     CROSS JOIN LATERAL (
           SELECT avg(d.value) AS avg, min(d.value) AS min, max(d.value) AS max, sum(d.value) AS sum,
                  count(*)::float8 AS count, (array_agg(d.value ORDER BY d.time DESC))[1] AS last,
                  (sum(CASE WHEN d.value >= d.prev THEN d.value - d.prev ELSE d.value END) FILTER (WHERE d.prev IS NOT NULL)
                   / nullif(extract(epoch FROM max(d.time) - min(d.time)), 0))::float8 AS rate
             FROM (SELECT x.time, x.value, lag(x.value) OVER (ORDER BY x.time) AS prev
                     FROM ts.samples x
                    WHERE m.e->>'tier' = 'raw' AND x.series_id = m.series_id
                      AND x.time > m.at - m.width AND x.time <= m.at AND x.value <> 'NaN') d) raw
     CROSS JOIN LATERAL (
           SELECT (sum(b.sum) / nullif(sum(b.count), 0))::float8 AS avg, min(b.min) AS min, max(b.max) AS max,
                  sum(b.sum) AS sum, coalesce(sum(b.count), 0)::float8 AS count,
                  (array_agg(b.last ORDER BY b.bucket DESC))[1] AS last
             FROM ts.samples_5m b
            WHERE m.e->>'tier' = '5m' AND b.series_id = m.series_id
              AND b.bucket >= date_bin('5 minutes', m.at - m.width, 'epoch') AND b.bucket < date_bin('5 minutes', m.at, 'epoch')
              AND b.sum <> 'NaN') roll
), evaluated AS (
    SELECT v.rule_id, v.tenant_id, v.at, v.identity, v.identity AS labels, v.series_id, v.host_id, v.check_id, v.value,
           coalesce(infrawatch.alert_compare(v.value, v.e->>'cmp', (v.e->>'threshold')::float8), false) AS breach,
           NOT coalesce(infrawatch.alert_compare(v.value, v.e->>'cmp',
                                                 coalesce((v.e->>'recover')::float8, (v.e->>'threshold')::float8)), false) AS recovered,
           false AS sticky
      FROM valued v
), fingerprinted AS (
    SELECT ev.*, infrawatch.alert_fingerprint(ev.rule_id, ev.identity) AS fingerprint FROM evaluated ev
), decided AS (
    SELECT f.*, to_jsonb(a.*) AS alert,
           f.breach OR (f.sticky AND coalesce(a.state IN ('pending', 'firing', 'suppressed') OR a.flapping, false)) AS holds,
           f.recovered AND NOT (f.sticky AND coalesce(a.state IN ('pending', 'firing', 'suppressed') OR a.flapping, false)) AS over,
           coalesce(a.state IN ('pending', 'firing', 'suppressed') OR a.flapping, false) AS open
      FROM fingerprinted f LEFT JOIN app.alerts a ON a.rule_id = f.rule_id AND a.fingerprint = f.fingerprint
)
SELECT jsonb_build_object(
           'rule_id', d.rule_id, 'at', d.at, 'fingerprint', d.fingerprint, 'identity', d.identity, 'labels', d.labels,
           'series_id', d.series_id, 'host_id', d.host_id, 'check_id', d.check_id,
           'host_name', (SELECT h.name FROM app.hosts h WHERE h.tenant_id = d.tenant_id AND h.id = d.host_id),
           'check_name', (SELECT c.name FROM app.checks c WHERE c.tenant_id = d.tenant_id AND c.id = d.check_id),
           'parent_down', (SELECT p.name FROM app.checks c JOIN app.checks p ON p.tenant_id = c.tenant_id AND p.id = c.parent_id
                            WHERE c.tenant_id = d.tenant_id AND c.id = d.check_id AND p.status = 'down'),
           'value', d.value, 'breach', d.holds, 'recovered', d.over, 'alert', d.alert)::jsonb AS obs
  FROM decided d
 WHERE d.holds OR NOT d.over OR d.open;

-- name: AlertEvalAbsent :many
-- Absent rules: things silent for silent_for. Mode series: each matching series that had samples in the
-- look-back but none in the last silent_for, and one thing for the selector itself when no matching
-- series had any sample in the look-back; mode host: the named host (all its series); mode agent:
-- every host an agent pushes for whose labels contain host_labels, that had samples in the look-back.
-- The value is the seconds since the newest sample within the look-back.
WITH rule AS (
    SELECT r.id AS rule_id, r.tenant_id, r.eval AS e, t.at,
           make_interval(secs => (r.eval->>'silent_for')::float8) AS silent_for,
           make_interval(secs => (r.eval->>'lookback')::float8) AS lookback
      FROM app.alert_rules r CROSS JOIN unnest(@at::timestamptz[]) AS t (at)
     WHERE r.id = ANY (@rule_ids::bigint[]) AND r.kind = 'absent' AND r.enabled
), subject AS (
    SELECT rule.*, s.id AS series_id, s.host_id, s.labels || jsonb_build_object('__name__', s.name) AS identity,
           (SELECT max(x.time) FROM ts.samples x
             WHERE x.series_id = s.id AND x.time > rule.at - rule.lookback AND x.time <= rule.at) AS last_time
      FROM rule CROSS JOIN LATERAL infrawatch.alert_series(rule.tenant_id, rule.e->'selector') s
     WHERE rule.e->>'mode' = 'series'
    UNION ALL
    SELECT rule.*, NULL, h.id, jsonb_build_object('host', h.name),
           (SELECT max(l.t) FROM app.series s
             CROSS JOIN LATERAL (SELECT max(x.time) AS t FROM ts.samples x
                                  WHERE x.series_id = s.id AND x.time > rule.at - rule.lookback AND x.time <= rule.at) l
             WHERE s.tenant_id = h.tenant_id AND s.host_id = h.id)
      FROM rule JOIN app.hosts h ON h.tenant_id = rule.tenant_id
       AND (CASE rule.e->>'mode' WHEN 'host' THEN h.name = rule.e->>'host'
                                 WHEN 'agent' THEN h.monitored_by IN ('agent', 'both') AND h.labels @> coalesce(rule.e->'host_labels', '{}')
                                 ELSE false END)
), evaluated AS (
    SELECT s.rule_id, s.tenant_id, s.at, s.identity, s.identity AS labels, s.series_id, s.host_id, NULL::bigint AS check_id,
           extract(epoch FROM s.at - s.last_time)::float8 AS value,
           (s.last_time IS NULL OR s.last_time <= s.at - s.silent_for) AND (s.last_time IS NOT NULL OR s.e->>'mode' = 'host') AS breach,
           s.last_time > s.at - s.silent_for AS recovered,
           s.last_time IS NULL OR s.last_time <= s.at - s.silent_for AS sticky
      FROM subject s
    UNION ALL
    -- A named host that does not exist is silent; so is a selector of which no series had data.
    SELECT rule.rule_id, rule.tenant_id, rule.at, CASE rule.e->>'mode' WHEN 'host' THEN jsonb_build_object('host', rule.e->>'host')
                                                   ELSE '{}'::jsonb END,
           CASE rule.e->>'mode' WHEN 'host' THEN jsonb_build_object('host', rule.e->>'host')
                ELSE jsonb_build_object('__name__', rule.e->'selector'->>'metric') END,
           NULL, NULL, NULL, NULL, true, false, true
      FROM rule
     WHERE rule.e->>'mode' IN ('series', 'host')
       AND NOT EXISTS (SELECT FROM subject s
                        WHERE s.rule_id = rule.rule_id AND s.at = rule.at AND (s.last_time IS NOT NULL OR s.e->>'mode' = 'host'))
), fingerprinted AS (
    SELECT ev.*, infrawatch.alert_fingerprint(ev.rule_id, ev.identity) AS fingerprint FROM evaluated ev
), decided AS (
    SELECT f.*, to_jsonb(a.*) AS alert,
           f.breach OR (f.sticky AND coalesce(a.state IN ('pending', 'firing', 'suppressed') OR a.flapping, false)) AS holds,
           f.recovered AND NOT (f.sticky AND coalesce(a.state IN ('pending', 'firing', 'suppressed') OR a.flapping, false)) AS over,
           coalesce(a.state IN ('pending', 'firing', 'suppressed') OR a.flapping, false) AS open
      FROM fingerprinted f LEFT JOIN app.alerts a ON a.rule_id = f.rule_id AND a.fingerprint = f.fingerprint
)
SELECT jsonb_build_object(
           'rule_id', d.rule_id, 'at', d.at, 'fingerprint', d.fingerprint, 'identity', d.identity, 'labels', d.labels,
           'series_id', d.series_id, 'host_id', d.host_id, 'check_id', d.check_id,
           'host_name', (SELECT h.name FROM app.hosts h WHERE h.tenant_id = d.tenant_id AND h.id = d.host_id),
           'check_name', (SELECT c.name FROM app.checks c WHERE c.tenant_id = d.tenant_id AND c.id = d.check_id),
           'parent_down', (SELECT p.name FROM app.checks c JOIN app.checks p ON p.tenant_id = c.tenant_id AND p.id = c.parent_id
                            WHERE c.tenant_id = d.tenant_id AND c.id = d.check_id AND p.status = 'down'),
           'value', d.value, 'breach', d.holds, 'recovered', d.over, 'alert', d.alert)::jsonb AS obs
  FROM decided d
 WHERE d.holds OR NOT d.over OR d.open;

-- name: AlertEvalCheck :many
-- Check rules, one thing per enabled check (by id, or every check whose host's labels contain
-- host_labels, optionally of one kind). Mode down: the value is the number of down results at the end
-- of the last count results of the last 24 hours, and the rule holds at count (it recovers with an up
-- result); mode availability: the percentage of up results over the window — raw results up to six
-- hours; beyond, whole hours of the hourly rollup, from the one holding at − window to the last
-- complete one.
WITH rule AS (
    SELECT r.id AS rule_id, r.tenant_id, r.eval AS e, t.at, make_interval(secs => (r.eval->>'window')::float8) AS width
      FROM app.alert_rules r CROSS JOIN unnest(@at::timestamptz[]) AS t (at)
     WHERE r.id = ANY (@rule_ids::bigint[]) AND r.kind = 'check' AND r.enabled
), subject AS (
    SELECT rule.*, c.id AS check_id, c.host_id
      FROM rule JOIN app.checks c ON c.tenant_id = rule.tenant_id
       AND c.id IN (SELECT jsonb_array_elements_text(rule.e->'check_ids')::bigint)
     WHERE c.enabled AND jsonb_typeof(rule.e->'check_ids') = 'array'
    UNION ALL
    SELECT rule.*, c.id, c.host_id
      FROM rule JOIN app.checks c ON c.tenant_id = rule.tenant_id
     WHERE c.enabled AND jsonb_typeof(rule.e->'check_ids') IS DISTINCT FROM 'array'
       AND (rule.e->>'check_kind' IS NULL OR c.kind = rule.e->>'check_kind')
       AND (coalesce(rule.e->'host_labels', '{}') = '{}'
            OR EXISTS (SELECT FROM app.hosts h
                        WHERE h.tenant_id = c.tenant_id AND h.id = c.host_id AND h.labels @> (rule.e->'host_labels')))
), valued AS (
    SELECT s.*,
           CASE s.e->>'mode'
               WHEN 'down' THEN (SELECT CASE WHEN count(*) = 0 THEN NULL
                                             ELSE coalesce(min(l.n) FILTER (WHERE l.status = 'up') - 1, count(*)) END::float8
                                   FROM (SELECT x.status, row_number() OVER (ORDER BY x.time DESC) AS n
                                           FROM ts.check_results x
                                          WHERE x.check_id = s.check_id AND x.time <= s.at AND x.time > s.at - interval '24 hours'
                                          ORDER BY x.time DESC
                                          LIMIT (s.e->>'count')::int) l)
               WHEN 'availability' THEN
                   CASE s.e->>'tier'
                       WHEN 'raw' THEN (SELECT (100.0 * count(*) FILTER (WHERE x.status = 'up') / nullif(count(*), 0))::float8
                                          FROM ts.check_results x
                                         WHERE x.check_id = s.check_id AND x.time > s.at - s.width AND x.time <= s.at)
                       ELSE (SELECT (100.0 * sum(b.up_count) / nullif(sum(b.total), 0))::float8
                               FROM ts.check_results_1h b
                              WHERE b.check_id = s.check_id AND b.bucket >= date_bin('1 hour', s.at - s.width, 'epoch')
                                AND b.bucket < date_bin('1 hour', s.at, 'epoch'))
                   END
           END AS value
      FROM subject s
), evaluated AS (
    SELECT v.rule_id, v.tenant_id, v.at, jsonb_build_object('check_id', v.check_id::text) AS identity,
           jsonb_build_object('check_id', v.check_id::text) AS labels, NULL::bigint AS series_id, v.host_id, v.check_id, v.value,
           coalesce(infrawatch.alert_compare(v.value, v.e->>'cmp', (v.e->>'threshold')::float8), false) AS breach,
           NOT coalesce(infrawatch.alert_compare(v.value, v.e->>'cmp',
                                                 coalesce((v.e->>'recover')::float8, (v.e->>'threshold')::float8)), false) AS recovered,
           false AS sticky
      FROM valued v
), fingerprinted AS (
    SELECT ev.*, infrawatch.alert_fingerprint(ev.rule_id, ev.identity) AS fingerprint FROM evaluated ev
), decided AS (
    SELECT f.*, to_jsonb(a.*) AS alert,
           f.breach OR (f.sticky AND coalesce(a.state IN ('pending', 'firing', 'suppressed') OR a.flapping, false)) AS holds,
           f.recovered AND NOT (f.sticky AND coalesce(a.state IN ('pending', 'firing', 'suppressed') OR a.flapping, false)) AS over,
           coalesce(a.state IN ('pending', 'firing', 'suppressed') OR a.flapping, false) AS open
      FROM fingerprinted f LEFT JOIN app.alerts a ON a.rule_id = f.rule_id AND a.fingerprint = f.fingerprint
)
SELECT jsonb_build_object(
           'rule_id', d.rule_id, 'at', d.at, 'fingerprint', d.fingerprint, 'identity', d.identity, 'labels', d.labels,
           'series_id', d.series_id, 'host_id', d.host_id, 'check_id', d.check_id,
           'host_name', (SELECT h.name FROM app.hosts h WHERE h.tenant_id = d.tenant_id AND h.id = d.host_id),
           'check_name', (SELECT c.name FROM app.checks c WHERE c.tenant_id = d.tenant_id AND c.id = d.check_id),
           'parent_down', (SELECT p.name FROM app.checks c JOIN app.checks p ON p.tenant_id = c.tenant_id AND p.id = c.parent_id
                            WHERE c.tenant_id = d.tenant_id AND c.id = d.check_id AND p.status = 'down'),
           'value', d.value, 'breach', d.holds, 'recovered', d.over, 'alert', d.alert)::jsonb AS obs
  FROM decided d
 WHERE d.holds OR NOT d.over OR d.open;

-- name: AlertEvalLog :many
-- Log rules: per host, the number of log lines of the window at or above a severity floor whose message
-- contains a text (literally, ignoring case) and matches a pattern, each optional, narrowed to one host
-- or to hosts whose labels contain host_labels. Hosts without such lines count nothing and are left out:
-- a log rule holds only on lines that arrive (the API refuses a comparison that zero satisfies).
WITH rule AS (
    SELECT r.id AS rule_id, r.tenant_id, r.eval AS e, t.at, make_interval(secs => (r.eval->>'window')::float8) AS width,
           (SELECT h.id FROM app.hosts h WHERE h.tenant_id = r.tenant_id AND h.name = r.eval->>'host') AS only_host
      FROM app.alert_rules r CROSS JOIN unnest(@at::timestamptz[]) AS t (at)
     WHERE r.id = ANY (@rule_ids::bigint[]) AND r.kind = 'log' AND r.enabled
), counted AS (
    SELECT rule.rule_id, rule.tenant_id, rule.at, rule.e, l.host_id, count(*)::float8 AS value
      FROM rule
      JOIN ts.logs l ON l.tenant_id = rule.tenant_id AND l.time > rule.at - rule.width AND l.time <= rule.at
     WHERE (rule.e->>'floor' IS NULL OR infrawatch.log_severity_rank(l.severity) >= (rule.e->>'floor')::int)
       AND (rule.e->>'like' IS NULL OR l.message ILIKE rule.e->>'like')
       AND (rule.e->>'pattern' IS NULL OR l.message ~ (rule.e->>'pattern'))
       AND (rule.e->>'host' IS NULL OR l.host_id = rule.only_host)
       AND (rule.e->'host_labels' IS NULL
            OR EXISTS (SELECT FROM app.hosts h WHERE h.tenant_id = l.tenant_id AND h.id = l.host_id AND h.labels @> (rule.e->'host_labels')))
     GROUP BY rule.rule_id, rule.tenant_id, rule.at, rule.e, l.host_id
), evaluated AS (
    SELECT c.rule_id, c.tenant_id, c.at, n.identity, n.identity AS labels, NULL::bigint AS series_id, c.host_id,
           NULL::bigint AS check_id, c.value,
           coalesce(infrawatch.alert_compare(c.value, c.e->>'cmp', (c.e->>'threshold')::float8), false) AS breach,
           NOT coalesce(infrawatch.alert_compare(c.value, c.e->>'cmp',
                                                 coalesce((c.e->>'recover')::float8, (c.e->>'threshold')::float8)), false) AS recovered,
           false AS sticky
      FROM counted c
     CROSS JOIN LATERAL (SELECT jsonb_build_object('host', coalesce((SELECT h.name FROM app.hosts h
                                                                      WHERE h.tenant_id = c.tenant_id AND h.id = c.host_id), ''))
                                AS identity) n
), fingerprinted AS (
    SELECT ev.*, infrawatch.alert_fingerprint(ev.rule_id, ev.identity) AS fingerprint FROM evaluated ev
), decided AS (
    SELECT f.*, to_jsonb(a.*) AS alert,
           f.breach OR (f.sticky AND coalesce(a.state IN ('pending', 'firing', 'suppressed') OR a.flapping, false)) AS holds,
           f.recovered AND NOT (f.sticky AND coalesce(a.state IN ('pending', 'firing', 'suppressed') OR a.flapping, false)) AS over,
           coalesce(a.state IN ('pending', 'firing', 'suppressed') OR a.flapping, false) AS open
      FROM fingerprinted f LEFT JOIN app.alerts a ON a.rule_id = f.rule_id AND a.fingerprint = f.fingerprint
)
SELECT jsonb_build_object(
           'rule_id', d.rule_id, 'at', d.at, 'fingerprint', d.fingerprint, 'identity', d.identity, 'labels', d.labels,
           'series_id', d.series_id, 'host_id', d.host_id, 'check_id', d.check_id,
           'host_name', (SELECT h.name FROM app.hosts h WHERE h.tenant_id = d.tenant_id AND h.id = d.host_id),
           'check_name', (SELECT c.name FROM app.checks c WHERE c.tenant_id = d.tenant_id AND c.id = d.check_id),
           'parent_down', (SELECT p.name FROM app.checks c JOIN app.checks p ON p.tenant_id = c.tenant_id AND p.id = c.parent_id
                            WHERE c.tenant_id = d.tenant_id AND c.id = d.check_id AND p.status = 'down'),
           'value', d.value, 'breach', d.holds, 'recovered', d.over, 'alert', d.alert)::jsonb AS obs
  FROM decided d
 WHERE d.holds OR NOT d.over OR d.open;

-- name: AlertRuleInsertForBacktest :one
-- System work (a backtest): the rule a tenant sends, stored for the length of a transaction that is
-- rolled back, so that the evaluation statements — the same as live evaluation's — read it.
INSERT INTO app.alert_rules (tenant_id, name, kind, for_seconds, interval_seconds, settings, eval, next_eval_at)
VALUES (@tenant_id, @name, @kind, @for_seconds, @interval_seconds, @settings, @eval, 'infinity')
RETURNING id;
