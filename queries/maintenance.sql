-- name: MaintenanceTryLock :one
-- A transaction-level advisory lock: only one replica runs a maintenance pass at a time, and the lock
-- goes away with the transaction even if the replica dies.
SELECT pg_try_advisory_xact_lock(@lock_key::bigint);

-- name: PartitionsEnsureAhead :many
-- Creates the missing partitions of every time-partitioned table from yesterday to @ahead from now
-- (postgres flavor; TimescaleDB makes its own chunks, and there it returns 0 for each table).
SELECT table_name::text AS table_name,
       infrawatch.ensure_partitions(table_name, now() - interval '1 day', now() + @ahead::interval) AS created
  FROM infrawatch.time_partitioned
 ORDER BY 1;

-- name: MaintenanceSetLockTimeout :exec
-- Bounds how long a statement of the current transaction waits for a lock. Creating and dropping
-- partitions locks the parent table, and while a pass waits for that lock, ingest queues behind it:
-- better to give up and try again at the next pass.
SELECT set_config('lock_timeout', (@timeout_ms::bigint)::text, true);

-- name: MaintenanceTrySessionLock :one
-- The session-level form of MaintenanceTryLock, for work that cannot run in a transaction (TimescaleDB's
-- refresh_continuous_aggregate): held until MaintenanceSessionUnlock or the end of the session. Session
-- and transaction advisory locks on one key exclude each other, across sessions.
SELECT pg_try_advisory_lock(@lock_key::bigint);

-- name: MaintenanceSessionUnlock :one
-- Releases a lock MaintenanceTrySessionLock took; false when this session did not hold it.
SELECT pg_advisory_unlock(@lock_key::bigint);

-- name: StorageCompressOldestChunk :one
-- Compresses the oldest chunk of @hypertable that ends by @older_than and is not compressed yet; returns
-- its name, or '' when none is left (timescale flavor; always '' in the postgres flavor).
SELECT coalesce(infrawatch.compress_oldest_chunk((@hypertable::text)::regclass, @older_than::timestamptz), '')::text AS chunk;

-- name: StorageFlavor :one
-- The storage flavor the database was built with: timescale or postgres.
SELECT infrawatch.flavor()::text AS flavor;
