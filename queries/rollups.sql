-- name: RollupsRefresh :many
-- Brings the postgres flavor's rollups up to date for the buckets that ended by @upto (maintenance's
-- clock minus its lag), at most @max_buckets buckets per tier and call; one row per tier. Returns no rows
-- in the timescale flavor, where refresh policies do this work.
SELECT name, watermark, rows_written, backlog
  FROM infrawatch.refresh_rollups(@upto::timestamptz, @max_buckets::integer);

-- name: RollupsDeleteByTenant :one
-- Deletes a tenant's rows from every rollup; tenant deletion calls it with the raw tables' deletes.
SELECT infrawatch.delete_tenant_rollups(@tenant_id::uuid)::bigint AS deleted;

-- name: RollupsSetRefreshStart :one
-- Moves the start of a continuous aggregate's refresh window to @start_offset before now (timescale
-- flavor; false in the postgres flavor). Says whether the policy changed.
SELECT infrawatch.set_refresh_start((@rollup::text)::regclass, @start_offset::interval) AS changed;

-- name: StorageDropOlderThan :one
-- Drops the chunks or partitions of a raw table or rollup that hold only data older than @keep;
-- returns how many.
SELECT infrawatch.drop_old_data((@relation::text)::regclass, now() - @keep::interval) AS dropped;

-- name: StorageSetCompressAfter :one
-- Moves a hypertable's compression policy to chunks older than @compress_after (timescale flavor;
-- false in the postgres flavor). Says whether the policy changed.
SELECT infrawatch.set_compress_after((@hypertable::text)::regclass, @compress_after::interval) AS changed;

-- name: RollupsRefreshWindow :exec
-- Materializes the buckets of a continuous aggregate between @window_start and @window_end (timescale
-- flavor): the new ones, and the older ones that late rows invalidated. A CALL that commits as it goes,
-- so it must run outside any transaction (System.WithSessionLock).
CALL refresh_continuous_aggregate((@rollup::text)::regclass, @window_start::timestamptz, @window_end::timestamptz);
