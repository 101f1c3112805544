-- name: MembershipCreate :one
INSERT INTO app.memberships (tenant_id, user_id, role)
VALUES (@tenant_id, @user_id, @role)
RETURNING *;

-- name: MembershipListByUser :many
SELECT * FROM app.memberships WHERE user_id = @user_id ORDER BY created_at;

-- name: MembershipAuthenticate :one
-- System work at every request with a user token: the current role, whether anything is disabled, and
-- the tenant's overrides of per-process caps (streams, heavy reads), so a change applies at the next request.
SELECT m.role, (m.disabled_at IS NOT NULL)::boolean AS membership_disabled,
       (u.disabled_at IS NOT NULL)::boolean AS user_disabled,
       t.status AS tenant_status, t.max_streams AS tenant_max_streams, t.max_heavy_reads AS tenant_max_heavy_reads
  FROM app.memberships m
  JOIN app.users u ON u.id = m.user_id
  JOIN app.tenants t ON t.id = m.tenant_id
 WHERE m.tenant_id = @tenant_id AND m.user_id = @user_id;

-- name: MembershipListMembers :many
-- The current tenant's members with their accounts, after the cursor user id.
SELECT u.id, u.email, u.name, m.role, m.disabled_at, m.created_at
  FROM app.memberships m JOIN app.users u ON u.id = m.user_id
 WHERE u.id > @after_id
 ORDER BY u.id
 LIMIT @max_rows;

-- name: MembershipGetMember :one
SELECT u.id, u.email, u.name, m.role, m.disabled_at, m.created_at
  FROM app.memberships m JOIN app.users u ON u.id = m.user_id
 WHERE u.id = @user_id;

-- name: MembershipExistsByEmail :one
-- Under the tenant runner, which shows only the tenant's members: whether email is one of them.
SELECT EXISTS (SELECT FROM app.memberships m JOIN app.users u ON u.id = m.user_id
                WHERE lower(u.email) = lower(@email))::boolean;

-- name: MembershipUpdate :one
UPDATE app.memberships
   SET role = coalesce(sqlc.narg(role), role),
       disabled_at = CASE WHEN sqlc.narg(disabled)::boolean IS NULL THEN disabled_at
                          WHEN sqlc.narg(disabled)::boolean THEN coalesce(disabled_at, now())
                          ELSE NULL END
 WHERE user_id = @user_id
RETURNING *;

-- name: MembershipDelete :execrows
DELETE FROM app.memberships WHERE user_id = @user_id;

-- name: MembershipCountActiveOwners :one
SELECT count(*) FROM app.memberships WHERE role = 'owner' AND disabled_at IS NULL;

-- name: MembershipListTenantsByUser :many
-- System work for the tenant switcher: the tenants a user may open — enabled memberships of active
-- tenants — by slug. Called only for a user whose password or access token was just verified.
SELECT t.id, t.slug, t.name, m.role
  FROM app.memberships m
  JOIN app.tenants t ON t.id = m.tenant_id
 WHERE m.user_id = @user_id AND m.disabled_at IS NULL AND t.status = 'active'
 ORDER BY t.slug;
