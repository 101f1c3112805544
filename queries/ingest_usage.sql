-- name: IngestUsageAdd :exec
-- The ingest writer, in the transaction that stores the samples: adds each tenant's count of one batch
-- to the current minute (by the database's clock) of the writer's slot.
INSERT INTO app.ingest_usage AS u (tenant_id, minute, slot, samples)
SELECT t.tenant_id, date_trunc('minute', now()), @slot::smallint, t.samples
  FROM (SELECT unnest(@tenant_ids::uuid[]) AS tenant_id, unnest(@samples::bigint[]) AS samples) t
    ON CONFLICT (tenant_id, minute, slot) DO UPDATE SET samples = u.samples + excluded.samples;

-- name: IngestUsagePrune :execrows
-- Maintenance: forgets the minutes older than @keep.
DELETE FROM app.ingest_usage WHERE minute < now() - @keep::interval;

-- name: IngestUsageDeleteByTenant :execrows
-- Operator work, with the tenant's other data (there is no foreign key to cascade).
DELETE FROM app.ingest_usage WHERE tenant_id = @tenant_id;
