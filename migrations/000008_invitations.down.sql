-- Back to invitations that name an account. A pending invitation for an email without an account gets
-- the password-less account and the membership it had before 000008; the old shape cannot say
-- "revoked" or "for an account that has a password", so those invitations go.
REVOKE SELECT (id, email, name, disabled_at, created_at, updated_at) ON app.users FROM infrawatch_api;
GRANT SELECT, UPDATE ON app.users TO infrawatch_api;

DROP INDEX app.invitations_pending_email_key;

INSERT INTO app.users (email)
SELECT DISTINCT ON (lower(i.email)) i.email
  FROM app.invitations i
 WHERE i.accepted_at IS NULL AND i.revoked_at IS NULL
   AND NOT EXISTS (SELECT FROM app.users u WHERE lower(u.email) = lower(i.email))
 ORDER BY lower(i.email), i.id;

ALTER TABLE app.invitations ADD COLUMN user_id uuid REFERENCES app.users (id) ON DELETE CASCADE;
UPDATE app.invitations i SET user_id = u.id FROM app.users u WHERE lower(u.email) = lower(i.email);
DELETE FROM app.invitations i
 WHERE i.user_id IS NULL OR i.revoked_at IS NOT NULL
    OR (i.accepted_at IS NULL AND EXISTS (SELECT FROM app.users u WHERE u.id = i.user_id AND u.password_hash IS NOT NULL));

INSERT INTO app.memberships (tenant_id, user_id, role)
SELECT i.tenant_id, i.user_id, i.role FROM app.invitations i WHERE i.accepted_at IS NULL
    ON CONFLICT DO NOTHING;

ALTER TABLE app.invitations
    ALTER COLUMN user_id SET NOT NULL,
    DROP COLUMN revoked_at,
    DROP COLUMN name,
    DROP COLUMN role,
    DROP COLUMN email;
