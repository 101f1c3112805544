DROP TABLE app.audit_log;
DROP TABLE app.invitations;
DROP TABLE app.refresh_tokens;
DROP TABLE app.oauth_clients;
DROP TABLE infrawatch.signing_keys;
ALTER TABLE app.memberships DROP COLUMN disabled_at;
