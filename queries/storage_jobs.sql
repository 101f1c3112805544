-- name: StorageJobsRead :many
-- Every storage job (migrations/000012_storage_jobs.up.sql), with what the database says of it now and
-- what infrawatch's scheduler did and decided: every of the flavor: refresh tiers finest first (each after the tier it reads), then
-- compression, then retention.
SELECT f.job, f.kind, f.relation, f.bucket_width, f.timescaledb_job_id, f.timescaledb_scheduled,
       f.schedule_interval, f.start_offset, f.end_offset, f.compress_after, f.timescaledb_last_success,
       f.timescaledb_failing_since, f.timescaledb_consecutive_failures, f.timescaledb_last_error, f.watermark,
       f.oldest_data, f.backlog_chunks, f.oldest_backlog_end,
       s.runner, s.mode, s.checked_at, s.check_interval, s.taken_over_at, s.timescaledb_silent_since, s.state,
       s.run_interval, s.last_success, s.last_failure, s.consecutive_failures, s.last_error, s.done_through
  FROM infrawatch.storage_job_facts f
  LEFT JOIN infrawatch.storage_jobs s ON s.job = f.job
 ORDER BY CASE f.kind WHEN 'refresh' THEN 0 WHEN 'compression' THEN 1 ELSE 2 END, f.bucket_width, f.job;

-- name: StorageJobRecordRun :exec
-- Records one run of a job by infrawatch at @at: a success when @error is NULL (and, for a refresh, the
-- end of the window it reached), a failure otherwise. @run_interval is how often infrawatch runs it.
INSERT INTO infrawatch.storage_jobs AS s (job, run_interval, last_success, last_failure, consecutive_failures, last_error,
                                          done_through)
VALUES (@job, @run_interval::interval,
        CASE WHEN sqlc.narg(error)::text IS NULL THEN @at::timestamptz END,
        CASE WHEN sqlc.narg(error)::text IS NOT NULL THEN @at::timestamptz END,
        CASE WHEN sqlc.narg(error)::text IS NULL THEN 0 ELSE 1 END,
        sqlc.narg(error)::text, sqlc.narg(done_through)::timestamptz)
ON CONFLICT (job) DO UPDATE
   SET run_interval = EXCLUDED.run_interval,
       last_success = coalesce(EXCLUDED.last_success, s.last_success),
       last_failure = coalesce(EXCLUDED.last_failure, s.last_failure),
       consecutive_failures = CASE WHEN EXCLUDED.last_error IS NULL THEN 0 ELSE s.consecutive_failures + 1 END,
       last_error = coalesce(EXCLUDED.last_error, s.last_error),
       done_through = greatest(EXCLUDED.done_through, s.done_through);

-- name: StorageJobSaveCheck :exec
-- Saves what the scheduler's check of a job decided and found: who runs it, since when, and its state.
INSERT INTO infrawatch.storage_jobs AS s (job, runner, mode, checked_at, check_interval, taken_over_at,
                                          timescaledb_silent_since, state)
VALUES (@job, @runner, @mode, @checked_at, @check_interval::interval, sqlc.narg(taken_over_at)::timestamptz,
        sqlc.narg(timescaledb_silent_since)::timestamptz, @state)
ON CONFLICT (job) DO UPDATE
   SET runner = EXCLUDED.runner, mode = EXCLUDED.mode, checked_at = EXCLUDED.checked_at,
       check_interval = EXCLUDED.check_interval, taken_over_at = EXCLUDED.taken_over_at,
       timescaledb_silent_since = EXCLUDED.timescaledb_silent_since, state = EXCLUDED.state;
