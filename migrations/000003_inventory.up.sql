-- What a tenant monitors: hosts, checks (agentless probes) and the metric series stored for them.

CREATE TABLE app.hosts (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id    uuid        NOT NULL REFERENCES app.tenants (id) ON DELETE CASCADE,
    name         text        NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    labels       jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(labels) = 'object'),
    -- How the host is monitored: by an agent that pushes, by checks that poll it, or both.
    monitored_by text        NOT NULL DEFAULT 'agent' CHECK (monitored_by IN ('agent', 'polling', 'both')),
    metadata     jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    last_seen_at timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name),
    UNIQUE (tenant_id, id) -- lets other tables reference (tenant_id, host_id) so a host never crosses tenants
);

CREATE TABLE app.checks (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id        uuid        NOT NULL REFERENCES app.tenants (id) ON DELETE CASCADE,
    host_id          bigint,
    name             text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind             text        NOT NULL CHECK (kind IN ('icmp', 'snmp', 'http', 'tcp', 'dns')),
    target           text        NOT NULL CHECK (length(target) BETWEEN 1 AND 2048),
    interval_seconds integer     NOT NULL DEFAULT 60 CHECK (interval_seconds BETWEEN 10 AND 86400),
    timeout_seconds  integer     NOT NULL DEFAULT 10 CHECK (timeout_seconds BETWEEN 1 AND 300),
    settings         jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(settings) = 'object'),
    enabled          boolean     NOT NULL DEFAULT true,
    location         text,       -- NULL: any poller may run it
    next_run_at      timestamptz NOT NULL DEFAULT now(),
    lease_owner      text,       -- the poller that claimed the current run
    lease_expires_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (timeout_seconds <= interval_seconds),
    FOREIGN KEY (tenant_id, host_id) REFERENCES app.hosts (tenant_id, id) ON DELETE SET NULL (host_id),
    UNIQUE (tenant_id, id)
);
CREATE INDEX checks_tenant_id_idx ON app.checks (tenant_id);
CREATE INDEX checks_due_idx ON app.checks (next_run_at) WHERE enabled;

CREATE TABLE app.series (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id  uuid        NOT NULL REFERENCES app.tenants (id) ON DELETE CASCADE,
    host_id    bigint,
    name       text        NOT NULL CHECK (length(name) BETWEEN 1 AND 1024),
    labels     jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(labels) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, host_id) REFERENCES app.hosts (tenant_id, id) ON DELETE SET NULL (host_id),
    UNIQUE (tenant_id, id)
);
-- One series per tenant, name and label set; NULLS NOT DISTINCT is not needed since no column is nullable.
CREATE UNIQUE INDEX series_identity_key ON app.series (tenant_id, name, labels);
CREATE INDEX series_host_id_idx ON app.series (host_id) WHERE host_id IS NOT NULL;

SELECT infrawatch.isolate_by_tenant('app.hosts');
SELECT infrawatch.isolate_by_tenant('app.checks');
SELECT infrawatch.isolate_by_tenant('app.series');

GRANT SELECT, INSERT, UPDATE, DELETE ON app.hosts, app.checks TO infrawatch_api;
GRANT SELECT ON app.series TO infrawatch_api;
