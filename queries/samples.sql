-- Samples (ts.samples and its rollups), read through the api views as the current tenant, except
-- SamplesDeleteByTenant (operator work) and the running totals of delta series (ingest, system work).

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

-- name: SamplesDeleteByTenant :execrows
DELETE FROM ts.samples WHERE tenant_id = @tenant_id;

-- name: SamplesLatestStored :many
-- System work (ingest): the newest stored sample of each given series of tenant, whatever its age — the
-- running total a delta series continues from. One backward probe of the (series_id, time) index each.
SELECT p.series_id, p.time, p.value
  FROM unnest(@series_ids::bigint[]) AS ids (id)
 CROSS JOIN LATERAL (SELECT x.series_id, x.time, x.value
                       FROM ts.samples x
                      WHERE x.tenant_id = @tenant_id AND x.series_id = ids.id
                      ORDER BY x.time DESC
                      LIMIT 1) p;

-- name: SamplesStoredAt :many
-- System work (ingest): which of the given (series, time) pairs of tenant have a stored sample — a delta
-- point sent again.
SELECT x.series_id, x.time
  FROM ts.samples x
 WHERE x.tenant_id = @tenant_id
   AND (x.series_id, x.time) IN (SELECT unnest(@series_ids::bigint[]), unnest(@times::timestamptz[]));

-- name: SamplesPromRaw :many
-- PromQL: the raw samples of the given series in [from_time, to_time] (both ends: the engine asks for
-- exactly the milliseconds it needs), one row per series with its times and values in time order. One
-- index range scan per series, aggregated into arrays so that a day of 1,000 series is 1,000 rows.
SELECT ids.id::bigint AS series_id, p.times::timestamptz[] AS times, p.values::float8[] AS values
  FROM unnest(@series_ids::bigint[]) AS ids (id)
 CROSS JOIN LATERAL (SELECT array_agg(x.time) AS times, array_agg(x.value) AS values
                       FROM (SELECT y.time, y.value FROM api.samples y
                              WHERE y.series_id = ids.id AND y.time >= @from_time AND y.time <= @to_time
                              ORDER BY y.time) x) p
 WHERE p.times IS NOT NULL;

-- name: SamplesPromAt :many
-- PromQL: which of the given series have a raw sample at exactly one of the given times. A rollup
-- bucket holds [start, start + width) and PromQL's windows are (t - range, t]: they hold the same
-- samples unless one lies exactly on a window's edge, which these probes find (one index probe per
-- series and time).
SELECT DISTINCT x.series_id
  FROM api.samples x
 WHERE x.series_id = ANY (@series_ids::bigint[]) AND x.time = ANY (@times::timestamptz[]);

-- name: SamplesProm5mRange :many
-- PromQL: the 5-minute buckets of the given series that start in [from_bucket, to_bucket), one row per
-- series with the buckets' starts and their min, max, sum and last, pair by pair in the order read
-- (the caller sorts them). The view is complete: it aggregates what is not materialized yet on the fly.
SELECT series_id, array_agg(bucket)::timestamptz[] AS buckets, array_agg(min)::float8[] AS mins,
       array_agg(max)::float8[] AS maxes, array_agg(sum)::float8[] AS sums, array_agg(last)::float8[] AS lasts
  FROM api.samples_5m
 WHERE series_id = ANY (@series_ids::bigint[]) AND bucket >= @from_bucket AND bucket < @to_bucket
 GROUP BY series_id;

-- name: SamplesProm1hRange :many
-- PromQL: the hourly buckets, as SamplesProm5mRange reads the 5-minute ones.
SELECT series_id, array_agg(bucket)::timestamptz[] AS buckets, array_agg(min)::float8[] AS mins,
       array_agg(max)::float8[] AS maxes, array_agg(sum)::float8[] AS sums, array_agg(last)::float8[] AS lasts
  FROM api.samples_1h
 WHERE series_id = ANY (@series_ids::bigint[]) AND bucket >= @from_bucket AND bucket < @to_bucket
 GROUP BY series_id;

-- name: SamplesProm1dRange :many
-- PromQL: the daily buckets, as SamplesProm5mRange reads the 5-minute ones.
SELECT series_id, array_agg(bucket)::timestamptz[] AS buckets, array_agg(min)::float8[] AS mins,
       array_agg(max)::float8[] AS maxes, array_agg(sum)::float8[] AS sums, array_agg(last)::float8[] AS lasts
  FROM api.samples_1d
 WHERE series_id = ANY (@series_ids::bigint[]) AND bucket >= @from_bucket AND bucket < @to_bucket
 GROUP BY series_id;
