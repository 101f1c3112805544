-- name: TenantOverview :one
-- The current tenant at a glance. A host reports when one of its series has a sample at or after
-- @reporting_since: per host, one index probe per series until one answers. Checks are counted by
-- app.checks.status; a disabled check counts as disabled whatever its last status.
SELECT (SELECT count(*) FROM app.hosts) AS hosts_total,
       (SELECT count(*)
          FROM app.hosts h
         WHERE EXISTS (SELECT
                         FROM app.series s
                        CROSS JOIN LATERAL (SELECT 1 FROM api.samples x
                                             WHERE x.series_id = s.id AND x.time >= @reporting_since
                                             LIMIT 1) recent
                        WHERE s.host_id = h.id)) AS hosts_reporting,
       c.total AS checks_total, c.up AS checks_up, c.down AS checks_down, c.unknown AS checks_unknown,
       c.disabled AS checks_disabled,
       (SELECT count(*) FROM app.series) AS series
  FROM (SELECT count(*) AS total,
               count(*) FILTER (WHERE enabled AND status = 'up') AS up,
               count(*) FILTER (WHERE enabled AND status = 'down') AS down,
               count(*) FILTER (WHERE enabled AND status IS NULL) AS unknown,
               count(*) FILTER (WHERE NOT enabled) AS disabled
          FROM app.checks) c;

-- name: TenantCreate :one
-- System work: runs as the owner, never through the tenant runner.
INSERT INTO app.tenants (slug, name)
VALUES (@slug, @name)
RETURNING *;

-- name: TenantGetByID :one
SELECT * FROM app.tenants WHERE id = @id;

-- name: TenantGetBySlug :one
SELECT * FROM app.tenants WHERE slug = @slug;

-- name: TenantGetCurrent :one
-- Under the tenant runner, row-level security leaves exactly the current tenant's row.
SELECT * FROM app.tenants WHERE id = app.current_tenant_id();

-- name: TenantUpdateSettings :one
UPDATE app.tenants
   SET name = coalesce(sqlc.narg(name), name),
       time_zone = coalesce(sqlc.narg(time_zone), time_zone),
       updated_at = now()
 WHERE id = app.current_tenant_id()
RETURNING *;

-- name: TenantList :many
-- Operator work: every tenant, by creation.
SELECT * FROM app.tenants WHERE id > @after_id ORDER BY id LIMIT @max_rows;

-- name: TenantSetStatus :one
UPDATE app.tenants SET status = @status, updated_at = now() WHERE id = @id RETURNING *;

-- name: TenantDelete :execrows
-- Cascades to every app table; the time series go with TimeseriesDeleteByTenant in the same transaction.
DELETE FROM app.tenants WHERE id = @id;

-- name: TenantSetLimits :one
-- Operator work: sets the limits given (a null leaves the limit as it is), and max_streams and
-- max_heavy_reads when their set_ flag is true (a null value then means the server's flag).
UPDATE app.tenants
   SET max_series = coalesce(sqlc.narg(max_series), max_series),
       max_labels_per_series = coalesce(sqlc.narg(max_labels_per_series), max_labels_per_series),
       max_label_name_length = coalesce(sqlc.narg(max_label_name_length), max_label_name_length),
       max_label_value_length = coalesce(sqlc.narg(max_label_value_length), max_label_value_length),
       ingest_rate = coalesce(sqlc.narg(ingest_rate), ingest_rate),
       ingest_burst = coalesce(sqlc.narg(ingest_burst), ingest_burst),
       max_checks = coalesce(sqlc.narg(max_checks), max_checks),
       max_streams = CASE WHEN @set_max_streams::boolean THEN sqlc.narg(max_streams)::integer ELSE max_streams END,
       max_heavy_reads = CASE WHEN @set_max_heavy_reads::boolean THEN sqlc.narg(max_heavy_reads)::integer
                              ELSE max_heavy_reads END,
       updated_at = now()
 WHERE id = @id
RETURNING *;

-- name: TenantUsageGet :one
-- A tenant's usage: its exact series count, its checks, and the samples stored for it in the last
-- complete minute and in the current one so far, minutes by the database's clock (ingest_usage). As
-- system work or under the tenant runner alike (row-level security then leaves only its rows).
SELECT coalesce((SELECT c.series FROM app.series_counts c WHERE c.tenant_id = @tenant_id), 0)::bigint AS series,
       (SELECT count(*) FROM app.checks k WHERE k.tenant_id = @tenant_id) AS checks,
       (m.this_minute - interval '1 minute')::timestamptz AS last_minute,
       coalesce((SELECT sum(u.samples) FROM app.ingest_usage u
                  WHERE u.tenant_id = @tenant_id AND u.minute = m.this_minute - interval '1 minute'), 0)::bigint AS samples_last_minute,
       coalesce((SELECT sum(u.samples) FROM app.ingest_usage u
                  WHERE u.tenant_id = @tenant_id AND u.minute = m.this_minute), 0)::bigint AS samples_this_minute
  FROM (SELECT date_trunc('minute', now()) AS this_minute) m;
