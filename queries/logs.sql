-- name: LogSearch :many
-- The current tenant's log lines, newest first, through api.search_logs (see migration 000010); every
-- filter is optional. A host name that is not the tenant's matches no line. Lines sharing a time come
-- in the function's total order, which the next page resumes by skipping @skip lines of its first time.
SELECT l.time, l.host_id, coalesce(h.name, '')::text AS host, l.source, l.severity, l.message, l.attributes
  FROM api.search_logs(@from_time, @to_time,
                       CASE WHEN sqlc.narg(host)::text IS NOT NULL
                            THEN ARRAY(SELECT id FROM app.hosts WHERE name = sqlc.narg(host)) END,
                       @severities::text[], sqlc.narg(contains)::text, @skip::integer, @max_rows::integer) l
  LEFT JOIN app.hosts h ON h.id = l.host_id
 ORDER BY l.time DESC, l.host_id, l.source, l.severity, l.message, l.attributes;

-- name: LogDeleteByTenant :execrows
DELETE FROM ts.logs WHERE tenant_id = @tenant_id;
