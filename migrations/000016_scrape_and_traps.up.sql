-- Scraping Prometheus exporters (check kind prometheus) and receiving SNMP traps (issue 19). Independent
-- of the alerting migration (000015): this touches app.checks' kind list and adds one table.

-- The prometheus check kind (internal/checks/prometheus.go).
ALTER TABLE app.checks
    DROP CONSTRAINT checks_kind_check,
    ADD CONSTRAINT checks_kind_check CHECK (kind IN ('icmp', 'snmp', 'http', 'tcp', 'dns', 'prometheus'));

-- What a tenant's devices send traps with (internal/traps): a community (SNMP v1 and v2c) or a USM user
-- (v3). A trap is stored for the tenant whose credential it carries, so a credential belongs to one
-- tenant only: a community is unique across tenants, and so is a USM user name with its engine id.
--
-- A community is never stored, only its SHA-256 digest (internal/traps.CommunityDigest), which is what
-- the receiver looks an incoming community up by; the API never shows it. A USM user's passwords are
-- sealed in secrets (AES-256-GCM under the deployment's key, internal/secrets), as {"auth_password",
-- "priv_password"}.
CREATE TABLE app.trap_credentials (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id        uuid        NOT NULL REFERENCES app.tenants (id) ON DELETE CASCADE,
    name             text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind             text        NOT NULL CHECK (kind IN ('community', 'usm')),
    community_digest bytea       UNIQUE CHECK (octet_length(community_digest) = 32),
    username         text        CHECK (length(username) BETWEEN 1 AND 32),
    -- The sending device's authoritative engine id; NULL accepts the user from any engine.
    engine_id        bytea       CHECK (octet_length(engine_id) BETWEEN 5 AND 32),
    security_level   text        CHECK (security_level IN ('noAuthNoPriv', 'authNoPriv', 'authPriv')),
    auth_protocol    text        CHECK (auth_protocol IN ('MD5', 'SHA', 'SHA224', 'SHA256', 'SHA384', 'SHA512')),
    priv_protocol    text        CHECK (priv_protocol IN ('DES', 'AES', 'AES192', 'AES256', 'AES192C', 'AES256C')),
    secrets          bytea,
    enabled          boolean     NOT NULL DEFAULT true,
    created_by       uuid,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name),
    UNIQUE (tenant_id, id),
    CONSTRAINT trap_credentials_shape_check CHECK (CASE kind
        WHEN 'community' THEN community_digest IS NOT NULL AND username IS NULL AND engine_id IS NULL
                              AND security_level IS NULL AND auth_protocol IS NULL AND priv_protocol IS NULL AND secrets IS NULL
        ELSE community_digest IS NULL AND username IS NOT NULL AND security_level IS NOT NULL
             AND (auth_protocol IS NOT NULL) = (security_level <> 'noAuthNoPriv')
             AND (priv_protocol IS NOT NULL) = (security_level = 'authPriv')
             AND (secrets IS NOT NULL) = (security_level <> 'noAuthNoPriv')
    END)
);
CREATE UNIQUE INDEX trap_credentials_usm_key ON app.trap_credentials (username, engine_id) NULLS NOT DISTINCT
    WHERE kind = 'usm';
SELECT infrawatch.isolate_by_tenant('app.trap_credentials');
GRANT SELECT, INSERT, UPDATE, DELETE ON app.trap_credentials TO infrawatch_api;
