-- BI logins (migration 000013): app.bi_credentials maps each login to its tenant. Lists run as the tenant
-- (row-level security); every change is system work through internal/bi, in one transaction with the
-- SECURITY DEFINER function that creates, changes or (through the delete trigger) drops the login.

-- name: BiCredentialList :many
-- The current tenant's BI logins with its limits, by id.
SELECT c.id, c.name, c.login, c.created_by, c.created_at, c.rotated_at,
       s.statement_timeout, s.idle_in_transaction_timeout, s.connection_limit
  FROM app.bi_credentials c
  JOIN app.bi_settings s ON s.tenant_id = c.tenant_id
 WHERE c.id > @after_id
 ORDER BY c.id
 LIMIT @max_rows;

-- name: BiCredentialGet :one
-- One of the current tenant's BI logins with its limits.
SELECT c.id, c.name, c.login, c.created_by, c.created_at, c.rotated_at,
       s.statement_timeout, s.idle_in_transaction_timeout, s.connection_limit
  FROM app.bi_credentials c
  JOIN app.bi_settings s ON s.tenant_id = c.tenant_id
 WHERE c.id = @id;

-- name: BiCredentialCount :one
-- System work: how many BI logins a tenant has.
SELECT count(*) FROM app.bi_credentials WHERE tenant_id = @tenant_id;

-- name: BiCredentialInsert :one
-- System work: maps a new login to its tenant; BiLoginCreate then makes the role, in the same transaction.
INSERT INTO app.bi_credentials (tenant_id, name, login, created_by)
VALUES (@tenant_id, @name, @login, @created_by)
RETURNING *;

-- name: BiCredentialGetForTenant :one
-- System work: a tenant's BI login by id, locked until the transaction ends.
SELECT * FROM app.bi_credentials WHERE tenant_id = @tenant_id AND id = @id FOR UPDATE;

-- name: BiCredentialMarkRotated :one
UPDATE app.bi_credentials SET rotated_at = now() WHERE tenant_id = @tenant_id AND id = @id RETURNING *;

-- name: BiCredentialDelete :one
-- System work: unmaps a login; the trigger bi_credentials_drop_login ends its sessions and drops it.
DELETE FROM app.bi_credentials WHERE tenant_id = @tenant_id AND id = @id RETURNING *;

-- name: BiDenyTemporary :one
-- Takes TEMPORARY on the database from PUBLIC (again: a database copied from a template lost it);
-- answers whether PUBLIC is without it now.
SELECT infrawatch.bi_deny_temporary();

-- name: BiLoginCreate :exec
-- Makes the role of a login mapped in this transaction, with a SCRAM-SHA-256 verifier as its password.
SELECT infrawatch.bi_login_create(@login, @verifier);

-- name: BiLoginSetPassword :one
-- Sets a mapped login's password (a SCRAM-SHA-256 verifier), applies its limits again and ends its
-- sessions; answers how many it ended.
SELECT infrawatch.bi_login_set_password(@login, @verifier)::integer AS sessions_ended;

-- name: BiEnforceLimits :many
-- Ends the sessions of BI logins past their limits at @at_time (NULL: the database's now()).
SELECT login::text AS login, pid::integer AS pid, action::text AS action, reason::text AS reason
  FROM infrawatch.bi_enforce_limits(sqlc.narg(at_time)::timestamptz);

-- name: BiDropLeftovers :many
-- Drops the logins that could only be disabled before; answers those it dropped.
SELECT login::text AS login FROM infrawatch.bi_drop_leftovers() AS login;
