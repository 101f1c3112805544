-- Tenants, users, memberships and API keys, with row-level security for infrawatch_api.

CREATE TABLE app.tenants (
    id                     uuid        NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
    slug                   text        NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name                   text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    status                 text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    time_zone              text        NOT NULL DEFAULT 'UTC',
    -- Per-tenant limits. Defaults follow Grafana Mimir's per-tenant defaults.
    max_series             integer     NOT NULL DEFAULT 150000 CHECK (max_series > 0),
    max_labels_per_series  integer     NOT NULL DEFAULT 30 CHECK (max_labels_per_series > 0),
    max_label_name_length  integer     NOT NULL DEFAULT 1024 CHECK (max_label_name_length > 0),
    max_label_value_length integer     NOT NULL DEFAULT 2048 CHECK (max_label_value_length > 0),
    ingest_rate            integer     NOT NULL DEFAULT 10000 CHECK (ingest_rate > 0),  -- samples per second
    ingest_burst           integer     NOT NULL DEFAULT 200000 CHECK (ingest_burst > 0), -- samples
    max_checks             integer     NOT NULL DEFAULT 1000 CHECK (max_checks >= 0),
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);

-- Users are global: one person may belong to several tenants through memberships.
CREATE TABLE app.users (
    id            uuid        NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
    email         text        NOT NULL CHECK (email LIKE '%_@_%'),
    name          text        NOT NULL DEFAULT '',
    password_hash text,       -- argon2id in PHC string format; NULL until the user sets one
    disabled_at   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON app.users (lower(email));

CREATE TABLE app.memberships (
    tenant_id  uuid        NOT NULL REFERENCES app.tenants (id) ON DELETE CASCADE,
    user_id    uuid        NOT NULL REFERENCES app.users (id) ON DELETE CASCADE,
    role       text        NOT NULL CHECK (role IN ('owner', 'admin', 'editor', 'viewer')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id)
);
CREATE INDEX memberships_user_id_idx ON app.memberships (user_id);

-- API keys are shown once; only a hash of the secret is kept. The prefix identifies a key in lists
-- and logs and finds the row when a key is presented.
CREATE TABLE app.api_keys (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id    uuid        NOT NULL REFERENCES app.tenants (id) ON DELETE CASCADE,
    name         text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    prefix       text        NOT NULL UNIQUE,
    secret_hash  bytea       NOT NULL,
    scopes       text[]      NOT NULL CHECK (scopes <@ ARRAY['ingest', 'read', 'write', 'admin']
                                             AND cardinality(scopes) > 0),
    created_by   uuid        REFERENCES app.users (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_keys_tenant_id_idx ON app.api_keys (tenant_id);

SELECT infrawatch.isolate_by_tenant('app.memberships');
SELECT infrawatch.isolate_by_tenant('app.api_keys');

-- The two tables without a tenant_id column get policies of their own. A tenant sees its own row:
ALTER TABLE app.tenants ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON app.tenants TO infrawatch_api
    USING (id = (SELECT app.current_tenant_id()))
    WITH CHECK (id = (SELECT app.current_tenant_id()));
-- and sees the users that are its members. Creating a user account is system work (users are
-- global), so the policy admits no new row that is not already a member of the current tenant.
ALTER TABLE app.users ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON app.users TO infrawatch_api
    USING (EXISTS (SELECT FROM app.memberships m
                    WHERE m.user_id = users.id AND m.tenant_id = (SELECT app.current_tenant_id())))
    WITH CHECK (EXISTS (SELECT FROM app.memberships m
                         WHERE m.user_id = users.id AND m.tenant_id = (SELECT app.current_tenant_id())));

GRANT SELECT, UPDATE ON app.tenants TO infrawatch_api;
GRANT SELECT, INSERT, UPDATE, DELETE ON app.memberships TO infrawatch_api;
GRANT SELECT, INSERT, UPDATE, DELETE ON app.api_keys TO infrawatch_api;
GRANT SELECT, UPDATE ON app.users TO infrawatch_api;
