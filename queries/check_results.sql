-- name: CheckResultList :many
-- A check's results, newest first, before a time (the page cursor).
SELECT time, status, latency, detail
  FROM api.check_results
 WHERE check_id = @check_id AND time < @before
 ORDER BY time DESC
 LIMIT @max_rows;

-- name: CheckResultDeleteByTenant :execrows
DELETE FROM ts.check_results WHERE tenant_id = @tenant_id;

-- name: CheckResultInsert :exec
-- Stores the results of runs, element i of every array making one row; a run whose target did not
-- answer (answered false) stores a NULL latency.
INSERT INTO ts.check_results (time, tenant_id, check_id, status, latency, detail)
SELECT r.time, r.tenant_id, r.check_id, r.status, CASE WHEN r.answered THEN r.latency END, r.detail
  FROM (SELECT unnest(@times::timestamptz[]) AS time, unnest(@tenant_ids::uuid[]) AS tenant_id,
               unnest(@check_ids::bigint[]) AS check_id, unnest(@statuses::text[]) AS status,
               unnest(@answered::boolean[]) AS answered, unnest(@latencies::interval[]) AS latency,
               unnest(@details::jsonb[]) AS detail) r;
