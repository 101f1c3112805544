-- name: SamplesDeleteByTenant :execrows
DELETE FROM ts.samples WHERE tenant_id = @tenant_id;

-- name: CheckResultsDeleteByTenant :execrows
DELETE FROM ts.check_results WHERE tenant_id = @tenant_id;

-- name: LogsDeleteByTenant :execrows
DELETE FROM ts.logs WHERE tenant_id = @tenant_id;
