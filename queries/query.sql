-- name: QueryTransactionSettings :exec
-- Settings for the rest of a query request's transaction, ending with it: a statement timeout; a plan
-- for each statement's own parameters (a cached generic plan cannot tell which rollup chunks and series
-- a range touches, and reads a tier's whole time range of every series instead); and no JIT. The
-- planner cannot see a rollup's watermark, so it overestimates the real-time part of a tier, and the
-- cost passes jit_above_cost: compiling then takes up to a second for a query that runs in milliseconds.
SELECT set_config('statement_timeout', (@timeout_ms::bigint)::text, true),
       set_config('plan_cache_mode', 'force_custom_plan', true),
       set_config('jit', 'off', true);

-- name: SeriesMatch :many
-- The current tenant's series that match every given filter (each optional: no ids, a NULL name, …
-- match all), by id, at most @max_rows of them, each row with the number that match in all.
SELECT s.id, s.name, h.name AS host, s.labels, count(*) OVER () AS matched
  FROM app.series s LEFT JOIN app.hosts h ON h.id = s.host_id
 WHERE (cardinality(@ids::bigint[]) = 0 OR s.id = ANY (@ids::bigint[]))
   AND (sqlc.narg(name)::text IS NULL OR s.name = sqlc.narg(name))
   AND (sqlc.narg(host)::text IS NULL OR h.name = sqlc.narg(host))
   AND (sqlc.narg(labels)::jsonb IS NULL OR s.labels @> sqlc.narg(labels)::jsonb)
 ORDER BY s.id
 LIMIT @max_rows;

-- name: SeriesSearch :many
-- One page of the current tenant's series after the cursor id, by exact name or name prefix, host name
-- and labels (each optional).
SELECT s.id, s.name, h.name AS host, s.labels
  FROM app.series s LEFT JOIN app.hosts h ON h.id = s.host_id
 WHERE s.id > @after_id
   AND (sqlc.narg(name)::text IS NULL OR s.name = sqlc.narg(name))
   AND (sqlc.narg(name_prefix)::text IS NULL OR starts_with(s.name, sqlc.narg(name_prefix)))
   AND (sqlc.narg(host)::text IS NULL OR h.name = sqlc.narg(host))
   AND (sqlc.narg(labels)::jsonb IS NULL OR s.labels @> sqlc.narg(labels)::jsonb)
 ORDER BY s.id
 LIMIT @max_rows;

-- name: SamplesRange :many
-- The raw samples of the given series in [from_time, to_time), by series and time, at most @max_points
-- per series: the caller asks for one more than it allows, to tell a series over the limit. One index
-- range scan per series.
SELECT p.series_id, p.time, p.value
  FROM unnest(@series_ids::bigint[]) AS ids (id)
 CROSS JOIN LATERAL (SELECT x.series_id, x.time, x.value
                       FROM api.samples x
                      WHERE x.series_id = ids.id AND x.time >= @from_time AND x.time < @to_time
                      ORDER BY x.time
                      LIMIT @max_points) p
 ORDER BY p.series_id, p.time;

-- name: SamplesLatest :many
-- The newest sample at or after @since of each given series; series with none are left out. One
-- backward index probe per series, so the window only bounds how far back a silent series is searched.
SELECT p.series_id, p.time, p.value
  FROM unnest(@series_ids::bigint[]) AS ids (id)
 CROSS JOIN LATERAL (SELECT x.series_id, x.time, x.value
                       FROM api.samples x
                      WHERE x.series_id = ids.id AND x.time >= @since
                      ORDER BY x.time DESC
                      LIMIT 1) p
 ORDER BY p.series_id;

-- name: Samples5mRange :many
-- The 5-minute buckets of the given series that start in [from_bucket, to_time), by series and bucket, with
-- the value @agg asks for. The view is complete: it aggregates what is not materialized yet on the fly.
SELECT series_id, bucket,
       (CASE @agg::text WHEN 'avg' THEN avg WHEN 'min' THEN min WHEN 'max' THEN max WHEN 'last' THEN last
                        WHEN 'sum' THEN sum ELSE count END)::float8 AS value
  FROM api.samples_5m
 WHERE series_id = ANY (@series_ids::bigint[]) AND bucket >= @from_bucket AND bucket < @to_time
 ORDER BY series_id, bucket;

-- name: Samples1hRange :many
-- The hourly buckets of the given series that start in [from_bucket, to_time), by series and bucket, with
-- the value @agg asks for. The view is complete: it aggregates what is not materialized yet on the fly.
SELECT series_id, bucket,
       (CASE @agg::text WHEN 'avg' THEN avg WHEN 'min' THEN min WHEN 'max' THEN max WHEN 'last' THEN last
                        WHEN 'sum' THEN sum ELSE count END)::float8 AS value
  FROM api.samples_1h
 WHERE series_id = ANY (@series_ids::bigint[]) AND bucket >= @from_bucket AND bucket < @to_time
 ORDER BY series_id, bucket;

-- name: Samples1dRange :many
-- The daily buckets of the given series that start in [from_bucket, to_time), by series and bucket, with
-- the value @agg asks for. The view is complete: it aggregates what is not materialized yet on the fly.
SELECT series_id, bucket,
       (CASE @agg::text WHEN 'avg' THEN avg WHEN 'min' THEN min WHEN 'max' THEN max WHEN 'last' THEN last
                        WHEN 'sum' THEN sum ELSE count END)::float8 AS value
  FROM api.samples_1d
 WHERE series_id = ANY (@series_ids::bigint[]) AND bucket >= @from_bucket AND bucket < @to_time
 ORDER BY series_id, bucket;

-- name: TenantOverview :one
-- The current tenant at a glance. A host reports when one of its series has a sample at or after
-- @reporting_since: per host, one index probe per series until one answers. Checks are counted by
-- app.checks.status; a disabled check counts as disabled whatever its last status.
SELECT (SELECT count(*) FROM app.hosts) AS hosts_total,
       (SELECT count(*)
          FROM app.hosts h
         WHERE EXISTS (SELECT
                         FROM app.series s
                        CROSS JOIN LATERAL (SELECT 1 FROM api.samples x
                                             WHERE x.series_id = s.id AND x.time >= @reporting_since
                                             LIMIT 1) recent
                        WHERE s.host_id = h.id)) AS hosts_reporting,
       c.total AS checks_total, c.up AS checks_up, c.down AS checks_down, c.unknown AS checks_unknown,
       c.disabled AS checks_disabled,
       (SELECT count(*) FROM app.series) AS series
  FROM (SELECT count(*) AS total,
               count(*) FILTER (WHERE enabled AND status = 'up') AS up,
               count(*) FILTER (WHERE enabled AND status = 'down') AS down,
               count(*) FILTER (WHERE enabled AND status IS NULL) AS unknown,
               count(*) FILTER (WHERE NOT enabled) AS disabled
          FROM app.checks) c;
