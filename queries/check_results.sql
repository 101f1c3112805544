-- name: CheckResultList :many
-- A check's results, newest first, before a time (the page cursor).
SELECT time, status, latency, detail
  FROM api.check_results
 WHERE check_id = @check_id AND time < @before
 ORDER BY time DESC
 LIMIT @max_rows;

-- name: CheckResultDeleteByTenant :execrows
DELETE FROM ts.check_results WHERE tenant_id = @tenant_id;
