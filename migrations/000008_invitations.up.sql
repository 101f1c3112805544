-- Invitations bound to a tenant and an email instead of an account. A tenant admin never creates,
-- changes or learns an account: the person invited creates their account, or proves they own it, when
-- accepting (README § Security model). Accounts that never set a password are removed; their pending
-- invitations stay, in the new shape, so that their tokens keep working.

ALTER TABLE app.invitations
    ADD COLUMN email      text,
    ADD COLUMN role       text,
    ADD COLUMN name       text NOT NULL DEFAULT '' CHECK (length(name) <= 200), -- suggested for a new account
    ADD COLUMN revoked_at timestamptz;

-- Every password-less member gets an invitation row, so that admins see it and can invite again; one
-- without a row of its own gets an unusable token and no time left.
INSERT INTO app.invitations (tenant_id, user_id, token_hash, expires_at)
SELECT m.tenant_id, m.user_id, sha256(convert_to(gen_random_uuid()::text, 'UTF8')), now()
  FROM app.memberships m JOIN app.users u ON u.id = m.user_id
 WHERE u.password_hash IS NULL
   AND NOT EXISTS (SELECT FROM app.invitations i
                    WHERE i.tenant_id = m.tenant_id AND i.user_id = m.user_id AND i.accepted_at IS NULL);

UPDATE app.invitations i
   SET email = u.email,
       role = coalesce((SELECT m.role FROM app.memberships m WHERE m.tenant_id = i.tenant_id AND m.user_id = i.user_id),
                       'viewer')
  FROM app.users u
 WHERE u.id = i.user_id;

-- A pending invitation is moot when its account has a password (it is already a member) or when the
-- membership is gone; the newest pending invitation of an email in a tenant is the one that counts.
UPDATE app.invitations i
   SET revoked_at = now()
 WHERE i.accepted_at IS NULL
   AND (EXISTS (SELECT FROM app.users u WHERE u.id = i.user_id AND u.password_hash IS NOT NULL)
        OR NOT EXISTS (SELECT FROM app.memberships m WHERE m.tenant_id = i.tenant_id AND m.user_id = i.user_id)
        OR EXISTS (SELECT FROM app.invitations j
                    WHERE j.tenant_id = i.tenant_id AND j.user_id = i.user_id AND j.accepted_at IS NULL AND j.id > i.id));

ALTER TABLE app.invitations
    DROP COLUMN user_id,
    ALTER COLUMN email SET NOT NULL,
    ALTER COLUMN role SET NOT NULL,
    ADD CHECK (email LIKE '%_@_%'),
    ADD CHECK (role IN ('owner', 'admin', 'editor', 'viewer')),
    ADD CHECK (accepted_at IS NULL OR revoked_at IS NULL);
-- One live invitation per email and tenant: inviting again revokes the previous one.
CREATE UNIQUE INDEX invitations_pending_email_key ON app.invitations (tenant_id, lower(email))
    WHERE accepted_at IS NULL AND revoked_at IS NULL;

-- Never-activated accounts go with their memberships.
DELETE FROM app.users WHERE password_hash IS NULL;

-- Accounts are global: a tenant may read its members' accounts, but never their password hashes, and
-- change none of them.
REVOKE SELECT, UPDATE ON app.users FROM infrawatch_api;
GRANT SELECT (id, email, name, disabled_at, created_at, updated_at) ON app.users TO infrawatch_api;
