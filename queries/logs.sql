-- name: LogSearch :many
-- The current tenant's log lines, newest first, through the api.logs view; every filter is optional.
SELECT l.time, l.host_id, coalesce(h.name, '')::text AS host, l.source, l.severity, l.message, l.attributes
  FROM api.logs l LEFT JOIN app.hosts h ON h.id = l.host_id
 WHERE l.time >= @from_time AND l.time < @to_time
   AND (sqlc.narg(host)::text IS NULL OR h.name = sqlc.narg(host))
   AND (cardinality(@severities::text[]) = 0 OR l.severity = ANY (@severities::text[]))
   AND (sqlc.narg(contains)::text IS NULL OR l.message ILIKE '%' || sqlc.narg(contains) || '%')
 ORDER BY l.time DESC
 LIMIT @max_rows;
