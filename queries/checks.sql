-- name: CheckCreate :one
-- The first run falls at a random point within the interval (at most a minute away), so checks created
-- together do not all run in the same second ever after.
INSERT INTO app.checks (tenant_id, host_id, name, kind, target, interval_seconds, timeout_seconds, settings,
                        enabled, location, next_run_at)
VALUES (app.current_tenant_id(), @host_id, @name, @kind, @target, @interval_seconds, @timeout_seconds, @settings,
        @enabled, @location, now() + random() * make_interval(secs => least(@interval_seconds, 60)))
RETURNING *;

-- name: CheckGetByID :one
SELECT * FROM app.checks WHERE id = @id;

-- name: CheckList :many
SELECT * FROM app.checks
 WHERE id > @after_id
   AND (sqlc.narg(kind)::text IS NULL OR kind = sqlc.narg(kind))
   AND (sqlc.narg(host_id)::bigint IS NULL OR host_id = sqlc.narg(host_id))
 ORDER BY id
 LIMIT @max_rows;

-- name: CheckUpdate :one
UPDATE app.checks
   SET host_id = @host_id, name = @name, target = @target, interval_seconds = @interval_seconds,
       timeout_seconds = @timeout_seconds, settings = @settings, enabled = @enabled, location = @location,
       updated_at = now()
 WHERE id = @id
RETURNING *;

-- name: CheckDelete :execrows
DELETE FROM app.checks WHERE id = @id;

-- name: CheckCount :one
SELECT count(*) FROM app.checks;

-- name: CheckResultList :many
-- A check's results, newest first, before a time (the page cursor).
SELECT time, status, latency, detail
  FROM api.check_results
 WHERE check_id = @check_id AND time < @before
 ORDER BY time DESC
 LIMIT @max_rows;
