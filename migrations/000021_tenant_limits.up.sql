-- Issue 20, item 6: operators set tenant limits; tenants see their limits and usage.

-- Per-tenant overrides of two limits that the server's flags set for everyone, per process: live
-- streams (the stream hub's cap, 100 per tenant by default) and concurrent heavy reads
-- (--heavy-reads-per-tenant). NULL: the server's value. They stay per process, like the caps they
-- override.
ALTER TABLE app.tenants
    ADD COLUMN max_streams     integer CHECK (max_streams BETWEEN 1 AND 10000),
    ADD COLUMN max_heavy_reads integer CHECK (max_heavy_reads BETWEEN 1 AND 1000);

-- Samples stored per tenant and minute, cluster-wide: the ingest writer adds a batch's samples in the
-- transaction that stores them, so only stored samples count. slot is the writer worker's (random)
-- number: two writers never wait on each other's row lock for the same tenant and minute. The
-- maintenance role deletes minutes older than an hour. Like ts.samples it has no foreign key: samples
-- queued for a tenant being deleted must not fail the batch of every other tenant; tenant deletion
-- deletes its rows.
CREATE TABLE app.ingest_usage (
    tenant_id uuid        NOT NULL,
    minute    timestamptz NOT NULL,  -- the start of a minute, by the database's clock
    slot      smallint    NOT NULL CHECK (slot >= 0),
    samples   bigint      NOT NULL CHECK (samples >= 0),
    PRIMARY KEY (tenant_id, minute, slot)
);
SELECT infrawatch.isolate_by_tenant('app.ingest_usage');
GRANT SELECT ON app.ingest_usage TO infrawatch_api;
