-- SLA objectives (the tenant's CRUD) and the SLA numbers of checks, which every SLO, report and
-- GET /api/v1/sla reads (README § SLA and reports).

-- name: SloCreate :one
INSERT INTO app.slos (tenant_id, name, description, target, check_id, host_id, host_labels, period, rolling_days,
                      business_hours, exclude_maintenance, created_by)
VALUES (app.current_tenant_id(), @name, @description, @target, sqlc.narg(check_id), sqlc.narg(host_id),
        sqlc.narg(host_labels), @period, sqlc.narg(rolling_days), sqlc.narg(business_hours), @exclude_maintenance,
        @created_by)
RETURNING *;

-- name: SloGetByID :one
SELECT * FROM app.slos WHERE id = @id;

-- name: SloList :many
SELECT * FROM app.slos WHERE id > @after_id ORDER BY id LIMIT @max_rows;

-- name: SloListByIDs :many
-- The SLOs of the current tenant among ids (a report's), in order; another tenant's id is not there.
SELECT * FROM app.slos WHERE id = ANY (@ids::bigint[]) ORDER BY id;

-- name: SloUpdate :one
UPDATE app.slos
   SET name = @name, description = @description, target = @target, check_id = sqlc.narg(check_id),
       host_id = sqlc.narg(host_id), host_labels = sqlc.narg(host_labels), period = @period,
       rolling_days = sqlc.narg(rolling_days), business_hours = sqlc.narg(business_hours),
       exclude_maintenance = @exclude_maintenance, updated_at = now()
 WHERE id = @id
RETURNING *;

-- name: SloDelete :execrows
DELETE FROM app.slos WHERE id = @id;

-- name: SloScopeChecks :many
-- The current tenant's checks a scope names: by id, the checks of hosts by id, and the checks of the
-- hosts whose labels contain host_labels (when not NULL), each once, by id.
SELECT c.id, c.name, c.host_id, h.name AS host_name, c.kind, c.created_at
  FROM app.checks c
  LEFT JOIN app.hosts h ON h.tenant_id = c.tenant_id AND h.id = c.host_id
 WHERE c.id = ANY (@check_ids::bigint[])
    OR c.host_id = ANY (@host_ids::bigint[])
    OR (sqlc.narg(host_labels)::jsonb IS NOT NULL AND h.labels @> sqlc.narg(host_labels)::jsonb)
 ORDER BY c.id;

-- name: SloCheckNumbers :many
-- The SLA numbers of the current tenant's checks over [@from_time, @to_time), to_time no later than now,
-- per day of @time_zone: for each check and local day, the seconds that were
--   unmonitored    before the check existed (its created_at);
--   outside_hours  outside the business hours (@business_days, ISO weekdays, from @business_start to
--                  @business_end local time; no days: every hour counts);
--   maintenance    in an occurrence of a maintenance window covering the check (its host, the check, or
--                  matchers on its host's labels and host, check, check_id), when @exclude_maintenance;
--   up, down       known status: the status of the last change (app.check_events) before each instant,
--                  where a result vouches for it (outside app.check_gaps);
--   unknown        the rest of the measured time: poller gaps.
-- They add up to the day's length within the range. Incidents are the down spans that count (down
-- seconds within measured, known time), with the reason of their first failed result. Gaps below
-- @settled (NULL: how far the scheduler settled them, app.check_gaps_settled_to()) come from
-- app.check_gaps, newer ones from the raw results with the same rule; '-infinity' computes every gap
-- from the raw results (the benchmark's baseline, and the tests' cross-check).
WITH p AS (
    SELECT @from_time::timestamptz AS t0, @to_time::timestamptz AS t1, @time_zone::text AS tz,
           @business_days::int[] AS bdays, @business_start::interval AS bstart, @business_end::interval AS bend,
           @exclude_maintenance::boolean AS exclude_maint,
           coalesce(sqlc.narg(settled)::timestamptz, app.check_gaps_settled_to()) AS settled
), day AS (
    -- The local days the range overlaps; a day across a change of daylight saving time is 23 or 25 hours.
    SELECT d::date AS day, tstzrange(greatest(d AT TIME ZONE p.tz, p.t0), least((d + interval '1 day') AT TIME ZONE p.tz, p.t1)) AS span
      FROM p, generate_series(date_trunc('day', p.t0 AT TIME ZONE p.tz), (p.t1 AT TIME ZONE p.tz) - interval '1 microsecond',
                              interval '1 day') AS d
), hours AS (
    SELECT CASE WHEN cardinality(p.bdays) = 0 THEN tstzmultirange(tstzrange(p.t0, p.t1))
                ELSE tstzmultirange(tstzrange(p.t0, p.t1)) * coalesce(
                         (SELECT range_agg(tstzrange((d.day + p.bstart) AT TIME ZONE p.tz, (d.day + p.bend) AT TIME ZONE p.tz))
                            FROM day d
                           WHERE extract(isodow FROM d.day)::int = ANY (p.bdays)), '{}'::tstzmultirange)
           END AS open
      FROM p
), chk AS (
    SELECT c.id, c.host_id, make_interval(secs => 2 * c.interval_seconds) AS grace,
           coalesce(h.labels, '{}'::jsonb) || jsonb_build_object('host', coalesce(h.name, ''), 'check', c.name,
                                                                 'check_id', c.id::text) AS labels,
           tstzrange(least(greatest(c.created_at, p.t0), p.t1), p.t1) AS life,
           -- where gaps come from the raw results: from the settled point (or the range's start) on
           tstzrange(least(greatest(c.created_at, p.t0, p.settled), p.t1), p.t1) AS tail
      FROM p, app.checks c LEFT JOIN app.hosts h ON h.tenant_id = c.tenant_id AND h.id = c.host_id
     WHERE c.id = ANY (@check_ids::bigint[])
), ev AS (
    -- Status changes in the range, the last one before it (the status the range starts with), and the
    -- first one after it (when the incident under way at its end ended).
    SELECT e.check_id, e.id, e.time, e.status, e.reason
      FROM app.check_events e, p
     WHERE e.check_id = ANY (@check_ids::bigint[]) AND e.time >= p.t0 AND e.time < p.t1
    UNION ALL
    SELECT b.check_id, b.id, b.time, b.status, b.reason
      FROM chk, p, LATERAL (SELECT e.check_id, e.id, e.time, e.status, e.reason FROM app.check_events e
                             WHERE e.check_id = chk.id AND e.time < p.t0 ORDER BY e.time DESC, e.id DESC LIMIT 1) b
    UNION ALL
    SELECT a.check_id, a.id, a.time, a.status, a.reason
      FROM chk, p, LATERAL (SELECT e.check_id, e.id, e.time, e.status, e.reason FROM app.check_events e
                             WHERE e.check_id = chk.id AND e.time >= p.t1 ORDER BY e.time, e.id LIMIT 1) a
), span AS (
    SELECT ev.check_id, ev.time, ev.status, ev.reason, lead(ev.time) OVER (PARTITION BY ev.check_id ORDER BY ev.time, ev.id) AS ended
      FROM ev
), status AS (
    SELECT s.check_id,
           coalesce(range_agg(tstzrange(s.time, coalesce(s.ended, 'infinity'))) FILTER (WHERE s.status = 'down'), '{}') AS down,
           coalesce(range_agg(tstzrange(s.time, coalesce(s.ended, 'infinity'))) FILTER (WHERE s.status = 'up'), '{}') AS up
      FROM span s
     WHERE s.time < (SELECT t1 FROM p)
     GROUP BY s.check_id
), tail_result AS (
    -- Raw results from the tail's start on, and the last one before it: each vouches for its status
    -- until the next, for at most the check's grace.
    SELECT chk.id AS check_id, chk.grace, r.time
      FROM chk JOIN api.check_results r ON r.check_id = chk.id
     WHERE NOT isempty(chk.tail) AND r.time >= lower(chk.tail) AND r.time < upper(chk.tail)
    UNION ALL
    SELECT chk.id, chk.grace, b.time
      FROM chk, LATERAL (SELECT r.time FROM api.check_results r
                          WHERE r.check_id = chk.id AND r.time < lower(chk.tail) ORDER BY r.time DESC LIMIT 1) b
     WHERE NOT isempty(chk.tail)
), piece AS (
    SELECT t.check_id, tstzrange(t.time, least(lead(t.time) OVER (PARTITION BY t.check_id ORDER BY t.time), t.time + t.grace)) AS vouched
      FROM tail_result t
), vouched AS (
    SELECT pc.check_id, range_agg(pc.vouched) AS mr FROM piece pc GROUP BY pc.check_id
), gap AS (
    SELECT g.check_id, range_agg(g.during) AS mr
      FROM (SELECT cg.check_id, cg.during * tstzrange(NULL, p.settled) AS during
              FROM app.check_gaps cg, p
             WHERE cg.check_id = ANY (@check_ids::bigint[]) AND upper(cg.during) > p.t0 AND lower(cg.during) < least(p.t1, p.settled)
            UNION ALL
            SELECT chk.id, unnest(tstzmultirange(chk.tail) - coalesce((SELECT v.mr FROM vouched v WHERE v.check_id = chk.id),
                                                                     '{}'::tstzmultirange))
              FROM chk
             WHERE NOT isempty(chk.tail)) g
     GROUP BY g.check_id
), maint AS (
    SELECT chk.id AS check_id, range_agg(o.during) AS mr
      FROM chk, p, app.maintenance_occurrences o
      JOIN app.maintenance_windows w ON w.tenant_id = o.tenant_id AND w.id = o.window_id
     WHERE p.exclude_maint AND o.during && tstzrange(p.t0, p.t1)
       AND ((cardinality(w.host_ids) = 0 AND cardinality(w.check_ids) = 0 AND jsonb_array_length(w.matchers_sql) = 0)
            OR chk.host_id = ANY (w.host_ids) OR chk.id = ANY (w.check_ids)
            OR (jsonb_array_length(w.matchers_sql) > 0 AND app.labels_match(chk.labels, w.matchers_sql)))
     GROUP BY chk.id
), part AS (
    -- The range of each check cut into the categories above, as multiranges that do not overlap.
    SELECT x.*,
           x.measured - coalesce(x.gaps, '{}') AS known
      FROM (SELECT chk.id,
                   tstzmultirange(tstzrange(p.t0, p.t1)) - tstzmultirange(chk.life) AS unmonitored,
                   tstzmultirange(chk.life) - h.open AS outside_hours,
                   tstzmultirange(chk.life) * h.open * coalesce(m.mr, '{}') AS maintenance,
                   tstzmultirange(chk.life) * h.open - coalesce(m.mr, '{}') AS measured,
                   g.mr AS gaps,
                   coalesce(s.down, '{}') AS down_status,
                   coalesce(s.up, '{}') AS up_status
              FROM chk CROSS JOIN p CROSS JOIN hours h
              LEFT JOIN maint m ON m.check_id = chk.id
              LEFT JOIN gap g ON g.check_id = chk.id
              LEFT JOIN status s ON s.check_id = chk.id) x
), cut AS (
    SELECT pt.id, pt.unmonitored, pt.outside_hours, pt.maintenance,
           pt.known * pt.down_status AS down,
           pt.known * pt.up_status AS up,
           pt.measured - pt.known * pt.down_status - pt.known * pt.up_status AS unknown
      FROM part pt
)
SELECT c.id AS check_id,
       (SELECT jsonb_agg(jsonb_build_object(
                   'day', d.day,
                   'unmonitored', app.sla_seconds(c.unmonitored * tstzmultirange(d.span)),
                   'outside_hours', app.sla_seconds(c.outside_hours * tstzmultirange(d.span)),
                   'maintenance', app.sla_seconds(c.maintenance * tstzmultirange(d.span)),
                   'unknown', app.sla_seconds(c.unknown * tstzmultirange(d.span)),
                   'up', app.sla_seconds(c.up * tstzmultirange(d.span)),
                   'down', app.sla_seconds(c.down * tstzmultirange(d.span))) ORDER BY d.day)
          FROM day d)::jsonb AS days,
       coalesce((SELECT jsonb_agg(jsonb_build_object(
                            'start', s.time, 'end', s.ended, 'reason', s.reason,
                            'counted', app.sla_seconds(c.down * tstzmultirange(tstzrange(s.time, coalesce(s.ended, 'infinity')))))
                            ORDER BY s.time)
                   FROM span s
                  WHERE s.check_id = c.id AND s.status = 'down' AND s.time < (SELECT t1 FROM p)
                    AND app.sla_seconds(c.down * tstzmultirange(tstzrange(s.time, coalesce(s.ended, 'infinity')))) > 0),
                '[]')::jsonb AS incidents
  FROM cut c
 ORDER BY c.id;
