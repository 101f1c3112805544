-- Scheduled SLA reports: the tenant's CRUD, and the scheduler's due reports (system work).

-- name: ReportCreate :one
INSERT INTO app.reports (tenant_id, name, slo_ids, check_ids, host_ids, host_labels, period, schedule, recipients, formats,
                         language, enabled, next_run_at, next_period, created_by)
VALUES (app.current_tenant_id(), @name, coalesce(@slo_ids::bigint[], '{}'), coalesce(@check_ids::bigint[], '{}'),
        coalesce(@host_ids::bigint[], '{}'), sqlc.narg(host_labels), @period, @schedule, @recipients::text[],
        coalesce(@formats::text[], '{}'), @language, @enabled, @next_run_at, @next_period, @created_by)
RETURNING *;

-- name: ReportGetByID :one
SELECT * FROM app.reports WHERE id = @id;

-- name: ReportList :many
SELECT * FROM app.reports WHERE id > @after_id ORDER BY id LIMIT @max_rows;

-- name: ReportUpdate :one
UPDATE app.reports
   SET name = @name, slo_ids = coalesce(@slo_ids::bigint[], '{}'), check_ids = coalesce(@check_ids::bigint[], '{}'),
       host_ids = coalesce(@host_ids::bigint[], '{}'), host_labels = sqlc.narg(host_labels), period = @period,
       schedule = @schedule, recipients = @recipients::text[], formats = coalesce(@formats::text[], '{}'),
       language = @language, enabled = @enabled, next_run_at = @next_run_at, next_period = @next_period,
       updated_at = now()
 WHERE id = @id
RETURNING *;

-- name: ReportDelete :execrows
DELETE FROM app.reports WHERE id = @id;

-- name: ReportKnownSLOs :many
-- Those of the given ids that are SLOs of the current tenant, for a report's slo_ids.
SELECT id FROM app.slos WHERE id = ANY (@ids::bigint[]);

-- name: ReportClaimDue :many
-- System work (scheduler): enabled reports of active tenants whose next period is due at @now, locked
-- so that one scheduler enqueues each period (SKIP LOCKED: replicas take different reports).
SELECT r.id, r.tenant_id, r.period, r.schedule, r.next_run_at, r.next_period, t.time_zone
  FROM app.reports r JOIN app.tenants t ON t.id = r.tenant_id
 WHERE r.enabled AND r.next_run_at <= @now::timestamptz AND t.status = 'active'
 ORDER BY r.next_run_at
 LIMIT @max_rows
   FOR UPDATE OF r SKIP LOCKED;

-- name: ReportSetNext :exec
-- System work (scheduler): the next period of a report and when it is due.
UPDATE app.reports SET next_run_at = @next_run_at, next_period = @next_period WHERE id = @id;

-- name: ReportGetSystem :one
-- System work (scheduler, `infrawatch report render`): a report of any tenant, with its tenant.
SELECT r.*, t.time_zone, t.slug AS tenant_slug, t.name AS tenant_name
  FROM app.reports r JOIN app.tenants t ON t.id = r.tenant_id
 WHERE r.id = @id;
