-- Maintenance windows and their occurrences: the tenant's CRUD, the alerter's reads and the extension
-- of recurring windows' occurrences (system work), and the question the SLA reports ask. (The file is
-- not maintenance_windows.sql: Go builds a file named *_windows.sql.go for Windows only.)

-- name: MaintenanceWindowCreate :one
INSERT INTO app.maintenance_windows (tenant_id, name, comment, host_ids, check_ids, matchers, matchers_sql, starts_at,
                                     ends_at, cron, duration_seconds, time_zone, materialized_until, created_by)
VALUES (app.current_tenant_id(), @name, @comment, coalesce(@host_ids::bigint[], '{}'), coalesce(@check_ids::bigint[], '{}'),
        @matchers, @matchers_sql,
        @starts_at, sqlc.narg(ends_at), sqlc.narg(cron), sqlc.narg(duration_seconds), @time_zone,
        sqlc.narg(materialized_until), @created_by)
RETURNING *;

-- name: MaintenanceWindowGetByID :one
SELECT * FROM app.maintenance_windows WHERE id = @id AND deleted_at IS NULL;

-- name: MaintenanceWindowList :many
SELECT * FROM app.maintenance_windows
 WHERE id > @after_id AND deleted_at IS NULL
 ORDER BY id
 LIMIT @max_rows;

-- name: MaintenanceWindowUpdate :one
UPDATE app.maintenance_windows
   SET name = @name, comment = @comment, host_ids = coalesce(@host_ids::bigint[], '{}'),
       check_ids = coalesce(@check_ids::bigint[], '{}'),
       matchers = @matchers, matchers_sql = @matchers_sql, starts_at = @starts_at, ends_at = sqlc.narg(ends_at),
       cron = sqlc.narg(cron), duration_seconds = sqlc.narg(duration_seconds), time_zone = @time_zone,
       materialized_until = sqlc.narg(materialized_until), updated_at = now()
 WHERE id = @id AND deleted_at IS NULL
RETURNING *;

-- name: MaintenanceWindowDelete :execrows
UPDATE app.maintenance_windows SET deleted_at = @now::timestamptz, updated_at = now()
 WHERE id = @id AND deleted_at IS NULL;

-- name: MaintenanceOccurrenceInsert :exec
-- Adds occurrences of a window (its tenant's: the foreign key includes it); one already there stays. The
-- API adds them as the tenant, the alerter (extending recurring windows) as system work.
INSERT INTO app.maintenance_occurrences (tenant_id, window_id, during)
SELECT @tenant_id::uuid, @window_id::bigint, tstzrange(o.s, o.e)
  FROM (SELECT unnest(@starts::timestamptz[]) AS s, unnest(@ends::timestamptz[]) AS e) o
ON CONFLICT (window_id, lower(during)) DO NOTHING;

-- name: MaintenanceOccurrenceDropFuture :exec
-- Before a window changes or goes (with MaintenanceOccurrenceEndCurrent): occurrences that have not
-- begun at @now are removed; past ones stay, for the SLA reports.
DELETE FROM app.maintenance_occurrences o WHERE o.window_id = @window_id::bigint AND lower(o.during) >= @now::timestamptz;

-- name: MaintenanceOccurrenceEndCurrent :exec
-- The occurrence of a window under way at @now ends then.
UPDATE app.maintenance_occurrences o SET during = tstzrange(lower(o.during), @now::timestamptz)
 WHERE o.window_id = @window_id::bigint AND lower(o.during) < @now::timestamptz AND upper(o.during) > @now::timestamptz;

-- name: MaintenanceOccurrenceList :many
-- The occurrences of one window that end after @since, in order.
SELECT lower(during)::timestamptz AS starts_at, upper(during)::timestamptz AS ends_at
  FROM app.maintenance_occurrences
 WHERE window_id = @window_id AND upper(during) > @since::timestamptz
 ORDER BY lower(during)
 LIMIT @max_rows;

-- name: MaintenanceWindowsActive :many
-- System work (alerter): the windows of the given tenants in force at @at, with what they cover.
SELECT DISTINCT w.id, w.tenant_id, w.host_ids, w.check_ids, w.matchers
  FROM app.maintenance_occurrences o JOIN app.maintenance_windows w ON w.tenant_id = o.tenant_id AND w.id = o.window_id
 WHERE o.during @> @at::timestamptz AND o.tenant_id = ANY (@tenant_ids::uuid[])
 ORDER BY w.id;

-- name: MaintenanceWindowsCovering :many
-- Was a thing in maintenance at a time? The windows of the current tenant whose occurrence covers @at
-- and that cover the thing: its host, its check or its labels (a window naming nothing covers all). One
-- query over the occurrences' GiST index, deleted windows included: their past occurrences stay true.
SELECT w.id, w.name
  FROM app.maintenance_occurrences o JOIN app.maintenance_windows w ON w.tenant_id = o.tenant_id AND w.id = o.window_id
 WHERE o.during @> @at::timestamptz
   AND ((cardinality(w.host_ids) = 0 AND cardinality(w.check_ids) = 0 AND jsonb_array_length(w.matchers_sql) = 0)
        OR sqlc.narg(host_id)::bigint = ANY (w.host_ids)
        OR sqlc.narg(check_id)::bigint = ANY (w.check_ids)
        OR (jsonb_array_length(w.matchers_sql) > 0 AND app.labels_match(@labels::jsonb, w.matchers_sql)))
 ORDER BY w.id;

-- name: MaintenanceWindowsToExtend :many
-- System work (alerter): recurring windows whose occurrences end before @until, for any tenant.
SELECT id, tenant_id, starts_at, ends_at, cron, duration_seconds, time_zone, materialized_until
  FROM app.maintenance_windows
 WHERE cron IS NOT NULL AND deleted_at IS NULL AND (materialized_until IS NULL OR materialized_until < @until::timestamptz)
 ORDER BY id
 LIMIT @max_rows;

-- name: MaintenanceWindowSetMaterialized :exec
-- System work (alerter): records how far a recurring window's occurrences exist.
UPDATE app.maintenance_windows SET materialized_until = @until::timestamptz
 WHERE id = @id AND (materialized_until IS NULL OR materialized_until < @until::timestamptz);

-- name: MaintenanceWindowKnownHosts :many
-- Those of the given ids that are hosts of the current tenant, for a window's host_ids.
SELECT id FROM app.hosts WHERE id = ANY (@ids::bigint[]);
