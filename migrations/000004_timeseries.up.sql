-- Time series: metric samples, check results and logs. Hypertables in the timescale flavor, tables
-- partitioned by day in the postgres flavor; the same names and columns in both.
--
-- These tables carry no row-level security (TimescaleDB refuses it with compression, and a continuous
-- aggregate over an RLS table) and grant nothing to tenant-facing roles. Ingest, polling and maintenance
-- write them as the owner with tenant_id stamped by the server; tenants read them through the views in api.
-- There are no foreign keys to app: they would cost every ingested row a lookup. Deleting a tenant deletes
-- its rows here explicitly.

CREATE TABLE ts.samples (
    time      timestamptz      NOT NULL,
    tenant_id uuid             NOT NULL,
    series_id bigint           NOT NULL,
    value     double precision NOT NULL
);
SELECT infrawatch.make_time_partitioned('ts.samples', '1 day');
-- The only index on the hot path: it serves reads by series and makes retried writes idempotent.
CREATE UNIQUE INDEX samples_series_id_time_key ON ts.samples (series_id, time);

CREATE TABLE ts.check_results (
    time      timestamptz NOT NULL,
    tenant_id uuid        NOT NULL,
    check_id  bigint      NOT NULL,
    status    text        NOT NULL CHECK (status IN ('up', 'down')),
    latency   interval,   -- NULL when the probe got no answer
    detail    jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(detail) = 'object')
);
SELECT infrawatch.make_time_partitioned('ts.check_results', '1 day');
CREATE UNIQUE INDEX check_results_check_id_time_key ON ts.check_results (check_id, time);

CREATE TABLE ts.logs (
    time       timestamptz NOT NULL,
    tenant_id  uuid        NOT NULL,
    host_id    bigint,
    source     text        NOT NULL DEFAULT '',
    severity   text        NOT NULL DEFAULT 'info'
                           CHECK (severity IN ('debug', 'info', 'notice', 'warning', 'error', 'critical',
                                               'alert', 'emergency')),
    message    text        NOT NULL,
    attributes jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(attributes) = 'object')
);
SELECT infrawatch.make_time_partitioned('ts.logs', '1 day');
CREATE INDEX logs_tenant_id_time_idx ON ts.logs (tenant_id, time DESC);

-- Compression of older chunks (timescale flavor). The postgres flavor keeps rows as they are.
DO $$
BEGIN
    IF infrawatch.flavor() = 'timescale' THEN
        ALTER TABLE ts.samples SET (timescaledb.compress,
                                    timescaledb.compress_segmentby = 'series_id',
                                    timescaledb.compress_orderby = 'time DESC');
        PERFORM add_compression_policy('ts.samples', compress_after => interval '7 days');
        ALTER TABLE ts.check_results SET (timescaledb.compress,
                                          timescaledb.compress_segmentby = 'check_id',
                                          timescaledb.compress_orderby = 'time DESC');
        PERFORM add_compression_policy('ts.check_results', compress_after => interval '7 days');
        ALTER TABLE ts.logs SET (timescaledb.compress,
                                 timescaledb.compress_segmentby = 'tenant_id',
                                 timescaledb.compress_orderby = 'time DESC');
        PERFORM add_compression_policy('ts.logs', compress_after => interval '7 days');
    END IF;
END
$$;

-- Tenant-facing views. security_barrier keeps the tenant filter ahead of any function in a caller's
-- WHERE clause, so a leaky function never sees another tenant's rows.
CREATE VIEW api.samples WITH (security_barrier) AS
    SELECT time, tenant_id, series_id, value
      FROM ts.samples
     WHERE tenant_id = (SELECT app.current_tenant_id());

CREATE VIEW api.check_results WITH (security_barrier) AS
    SELECT time, tenant_id, check_id, status, latency, detail
      FROM ts.check_results
     WHERE tenant_id = (SELECT app.current_tenant_id());

CREATE VIEW api.logs WITH (security_barrier) AS
    SELECT time, tenant_id, host_id, source, severity, message, attributes
      FROM ts.logs
     WHERE tenant_id = (SELECT app.current_tenant_id());

GRANT SELECT ON api.samples, api.check_results, api.logs TO infrawatch_api;
