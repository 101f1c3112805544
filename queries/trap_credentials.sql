-- SNMP trap credentials (communities and USM users), managed by admins through the API as the current
-- tenant, and read by the trap receiver across tenants (system work).

-- name: TrapCredentialCreate :one
INSERT INTO app.trap_credentials (tenant_id, name, kind, community_digest, username, engine_id, security_level,
                                  auth_protocol, priv_protocol, secrets, enabled, created_by)
VALUES (app.current_tenant_id(), @name, @kind, @community_digest, @username, @engine_id, @security_level,
        @auth_protocol, @priv_protocol, @secrets, @enabled, @created_by)
RETURNING *;

-- name: TrapCredentialGetByID :one
SELECT * FROM app.trap_credentials WHERE id = @id;

-- name: TrapCredentialList :many
SELECT * FROM app.trap_credentials
 WHERE id > @after_id
 ORDER BY id
 LIMIT @max_rows;

-- name: TrapCredentialUpdate :one
UPDATE app.trap_credentials
   SET name = @name, community_digest = @community_digest, username = @username, engine_id = @engine_id,
       security_level = @security_level, auth_protocol = @auth_protocol, priv_protocol = @priv_protocol,
       secrets = @secrets, enabled = @enabled, updated_at = now()
 WHERE id = @id
RETURNING *;

-- name: TrapCredentialDelete :execrows
DELETE FROM app.trap_credentials WHERE id = @id;

-- name: TrapCredentialsEnabled :many
-- System work (the trap receiver): every enabled credential of every active tenant.
SELECT c.id, c.tenant_id, c.kind, c.community_digest, c.username, c.engine_id, c.security_level, c.auth_protocol,
       c.priv_protocol, c.secrets
  FROM app.trap_credentials c
  JOIN app.tenants t ON t.id = c.tenant_id
 WHERE c.enabled AND t.status = 'active'
 ORDER BY c.id;

-- name: TrapCredentialSecretsList :many
-- Trap credentials with sealed secrets after after_id, for `infrawatch secrets rotate` (system work).
SELECT id, tenant_id, secrets FROM app.trap_credentials
 WHERE id > @after_id AND secrets IS NOT NULL
 ORDER BY id
 LIMIT @max_rows;

-- name: TrapCredentialSecretsSet :execrows
-- Stores a trap credential's secrets sealed anew, unless they changed since they were read.
UPDATE app.trap_credentials SET secrets = @secrets WHERE id = @id AND secrets = @old_secrets;
