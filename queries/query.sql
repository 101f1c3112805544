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
-- The 5-minute buckets of the given series that start in [from_bucket, to_time), one row per series
-- with two arrays: the buckets' starts and the values @agg asks for, pair by pair in the order the rows
-- were read, which the caller puts in time order. Arrays rather than a row per bucket, and no ORDER BY:
-- for a 30-day dashboard of 20 series PostgreSQL sends 20 rows instead of 14,400 and sorts nothing,
-- and pgx decodes 40 arrays. The view is complete: it aggregates what is not materialized yet on the fly.
SELECT series_id, array_agg(bucket)::timestamptz[] AS buckets,
       array_agg((CASE @agg::text WHEN 'avg' THEN avg WHEN 'min' THEN min WHEN 'max' THEN max WHEN 'last' THEN last
                                  WHEN 'sum' THEN sum ELSE count END)::float8)::float8[] AS values
  FROM api.samples_5m
 WHERE series_id = ANY (@series_ids::bigint[]) AND bucket >= @from_bucket AND bucket < @to_time
 GROUP BY series_id;

-- name: Samples1hRange :many
-- The hourly buckets of the given series that start in [from_bucket, to_time), as Samples5mRange reads
-- the 5-minute ones.
SELECT series_id, array_agg(bucket)::timestamptz[] AS buckets,
       array_agg((CASE @agg::text WHEN 'avg' THEN avg WHEN 'min' THEN min WHEN 'max' THEN max WHEN 'last' THEN last
                                  WHEN 'sum' THEN sum ELSE count END)::float8)::float8[] AS values
  FROM api.samples_1h
 WHERE series_id = ANY (@series_ids::bigint[]) AND bucket >= @from_bucket AND bucket < @to_time
 GROUP BY series_id;

-- name: Samples1dRange :many
-- The daily buckets of the given series that start in [from_bucket, to_time), as Samples5mRange reads
-- the 5-minute ones.
SELECT series_id, array_agg(bucket)::timestamptz[] AS buckets,
       array_agg((CASE @agg::text WHEN 'avg' THEN avg WHEN 'min' THEN min WHEN 'max' THEN max WHEN 'last' THEN last
                                  WHEN 'sum' THEN sum ELSE count END)::float8)::float8[] AS values
  FROM api.samples_1d
 WHERE series_id = ANY (@series_ids::bigint[]) AND bucket >= @from_bucket AND bucket < @to_time
 GROUP BY series_id;

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
