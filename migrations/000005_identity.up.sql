-- Identity: token signing keys, refresh tokens, OAuth2 clients, invitations and the audit log.

-- A membership can be disabled without deleting it: the user keeps their account and other tenants.
ALTER TABLE app.memberships ADD COLUMN disabled_at timestamptz;

-- Keys that sign access tokens (Ed25519). The newest active key signs; every key not yet retired
-- verifies, so keys rotate without logging anyone out. Owner only: tenant-facing roles never see them.
CREATE TABLE infrawatch.signing_keys (
    kid         text        NOT NULL PRIMARY KEY,
    algorithm   text        NOT NULL CHECK (algorithm = 'EdDSA'),
    private_key bytea       NOT NULL, -- Ed25519 seed (32 bytes)
    created_at  timestamptz NOT NULL DEFAULT now(),
    retired_at  timestamptz           -- no longer verifies after this time
);

-- Refresh tokens, stored hashed. Each use rotates the token: the old row is marked used and a new row of
-- the same family is issued. Presenting a used token again means it leaked, and revokes the family.
CREATE TABLE app.refresh_tokens (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   uuid        NOT NULL REFERENCES app.tenants (id) ON DELETE CASCADE,
    family_id   uuid        NOT NULL,
    user_id     uuid        REFERENCES app.users (id) ON DELETE CASCADE,
    client_id   bigint,     -- set for OAuth2 clients, NULL for users
    token_hash  bytea       NOT NULL UNIQUE,
    scopes      text[]      NOT NULL DEFAULT '{}',
    issued_at   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz,
    CHECK ((user_id IS NULL) <> (client_id IS NULL))
);
CREATE INDEX refresh_tokens_family_id_idx ON app.refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_id_idx ON app.refresh_tokens (user_id) WHERE user_id IS NOT NULL;

-- OAuth2 clients for integrations (client credentials grant). Secrets are stored hashed.
CREATE TABLE app.oauth_clients (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   uuid        NOT NULL REFERENCES app.tenants (id) ON DELETE CASCADE,
    client_id   text        NOT NULL UNIQUE,
    name        text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    secret_hash bytea       NOT NULL,
    scopes      text[]      NOT NULL CHECK (scopes <@ ARRAY['ingest', 'read', 'write', 'admin'] AND cardinality(scopes) > 0),
    created_by  uuid        REFERENCES app.users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    UNIQUE (tenant_id, id)
);
ALTER TABLE app.refresh_tokens
    ADD FOREIGN KEY (client_id) REFERENCES app.oauth_clients (id) ON DELETE CASCADE;

-- Invitations: a user added without a password gets a one-time token to set one.
CREATE TABLE app.invitations (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   uuid        NOT NULL REFERENCES app.tenants (id) ON DELETE CASCADE,
    user_id     uuid        NOT NULL REFERENCES app.users (id) ON DELETE CASCADE,
    token_hash  bytea       NOT NULL UNIQUE,
    created_by  uuid        REFERENCES app.users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    accepted_at timestamptz
);
CREATE INDEX invitations_tenant_id_idx ON app.invitations (tenant_id);

-- Who changed what, when. Rows are only ever inserted.
CREATE TABLE app.audit_log (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   uuid        NOT NULL REFERENCES app.tenants (id) ON DELETE CASCADE,
    time        timestamptz NOT NULL DEFAULT now(),
    actor_kind  text        NOT NULL CHECK (actor_kind IN ('user', 'api_key', 'oauth_client', 'operator', 'system')),
    actor_id    text        NOT NULL,
    action      text        NOT NULL,   -- e.g. host.create, api_key.revoke
    object_kind text        NOT NULL,
    object_id   text        NOT NULL DEFAULT '',
    details     jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(details) = 'object')
);
CREATE INDEX audit_log_tenant_id_id_idx ON app.audit_log (tenant_id, id DESC);

SELECT infrawatch.isolate_by_tenant('app.refresh_tokens');
SELECT infrawatch.isolate_by_tenant('app.oauth_clients');
SELECT infrawatch.isolate_by_tenant('app.invitations');
SELECT infrawatch.isolate_by_tenant('app.audit_log');

GRANT SELECT, INSERT, UPDATE ON app.refresh_tokens TO infrawatch_api;
GRANT SELECT, INSERT, UPDATE, DELETE ON app.oauth_clients TO infrawatch_api;
GRANT SELECT, INSERT, UPDATE ON app.invitations TO infrawatch_api;
GRANT SELECT, INSERT ON app.audit_log TO infrawatch_api;
