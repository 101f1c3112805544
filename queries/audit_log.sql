-- name: AuditLogInsert :exec
INSERT INTO app.audit_log (tenant_id, actor_kind, actor_id, action, object_kind, object_id, details)
VALUES (@tenant_id, @actor_kind, @actor_id, @action, @object_kind, @object_id, @details);

-- name: AuditLogList :many
-- Newest first; the cursor is the last id seen.
SELECT * FROM app.audit_log
 WHERE (@before_id::bigint = 0 OR id < @before_id)
 ORDER BY id DESC
 LIMIT @max_rows;
