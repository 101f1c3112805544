-- Storage foundation: schemas, the tenant-facing roles, the storage flavor and the helpers that turn a
-- plain table into a time-partitioned one in either flavor.
--
-- `infrawatch migrate` sets the session setting infrawatch.flavor ('timescale' or 'postgres') before it runs
-- the migrations; this migration records it in infrawatch.storage, and every later migration reads it from
-- there through infrawatch.flavor().

-- Roles are cluster-wide, so they may already exist from another database of the same cluster.
DO $$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['infrawatch_api', 'infrawatch_bi'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = role_name) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN NOINHERIT NOBYPASSRLS', role_name);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL; -- created at the same moment by a migration of another database
            END;
        END IF;
    END LOOP;
END
$$;

-- The owning login switches to infrawatch_api with SET LOCAL ROLE inside tenant transactions.
GRANT infrawatch_api TO CURRENT_USER;

-- infrawatch: internal bookkeeping and helpers, owner only.
CREATE SCHEMA infrawatch;
REVOKE ALL ON SCHEMA infrawatch FROM PUBLIC;

-- app: tenant-owned configuration. Every table has row-level security with a policy for infrawatch_api.
CREATE SCHEMA app;
REVOKE ALL ON SCHEMA app FROM PUBLIC;
GRANT USAGE ON SCHEMA app TO infrawatch_api;

-- ts: time series (hypertables or partitioned tables). No row-level security and no grants to any
-- tenant-facing role; tenants read them only through the views in api.
CREATE SCHEMA ts;
REVOKE ALL ON SCHEMA ts FROM PUBLIC;

-- api: security_barrier views over ts that filter on the current tenant, for infrawatch_api.
CREATE SCHEMA api;
REVOKE ALL ON SCHEMA api FROM PUBLIC;
GRANT USAGE ON SCHEMA api TO infrawatch_api;

-- current_tenant_id is the tenant of the current transaction, set by the Go tenant runner with
-- set_config('infrawatch.tenant_id', …, true). NULL when no tenant is set, so policies match nothing.
CREATE FUNCTION app.current_tenant_id() RETURNS uuid
    LANGUAGE sql STABLE
    AS $$ SELECT nullif(current_setting('infrawatch.tenant_id', true), '')::uuid $$;

-- isolate_by_tenant turns on row-level security for a table with a tenant_id column and gives
-- infrawatch_api the one policy every such table has: it sees and writes only the current tenant's rows.
-- The subselect around current_tenant_id() makes the planner evaluate it once per statement (InitPlan).
CREATE FUNCTION infrawatch.isolate_by_tenant(tbl regclass) RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
    EXECUTE format('CREATE POLICY tenant_isolation ON %s TO infrawatch_api
                        USING (tenant_id = (SELECT app.current_tenant_id()))
                        WITH CHECK (tenant_id = (SELECT app.current_tenant_id()))', tbl);
END
$$;

CREATE TABLE infrawatch.storage (
    flavor     text        NOT NULL CHECK (flavor IN ('timescale', 'postgres')),
    created_at timestamptz NOT NULL DEFAULT now(),
    singleton  boolean     NOT NULL DEFAULT true PRIMARY KEY CHECK (singleton)
);
INSERT INTO infrawatch.storage (flavor) VALUES (current_setting('infrawatch.flavor'));

DO $$
BEGIN
    IF current_setting('infrawatch.flavor') = 'timescale' THEN
        CREATE EXTENSION IF NOT EXISTS timescaledb;
    END IF;
END
$$;

-- flavor names the storage flavor this database was built with.
CREATE FUNCTION infrawatch.flavor() RETURNS text
    LANGUAGE sql STABLE
    AS $$ SELECT flavor FROM infrawatch.storage $$;

-- time_partitioned lists the tables that infrawatch.make_time_partitioned converted, with the width of
-- their partitions (or chunks), so that maintenance knows what to create ahead and drop behind.
CREATE TABLE infrawatch.time_partitioned (
    table_name     regclass NOT NULL PRIMARY KEY,
    chunk_interval interval NOT NULL CHECK (chunk_interval > '0'::interval)
);

-- ensure_partitions creates the missing partitions of a postgres-flavor table that cover [from_time, to_time).
-- Partition bounds are multiples of the table's chunk interval since the Unix epoch. A no-op in the
-- timescale flavor, where TimescaleDB creates chunks as rows arrive.
CREATE FUNCTION infrawatch.ensure_partitions(tbl regclass, from_time timestamptz, to_time timestamptz)
    RETURNS integer
    LANGUAGE plpgsql
    AS $$
DECLARE
    width   interval;
    bound   timestamptz;
    made    integer := 0;
    part    text;
    schema  text;
    relname text;
BEGIN
    IF infrawatch.flavor() <> 'postgres' THEN
        RETURN 0;
    END IF;
    SELECT chunk_interval INTO width FROM infrawatch.time_partitioned WHERE table_name = tbl;
    IF width IS NULL THEN
        RAISE EXCEPTION 'ensure_partitions: % is not a time-partitioned table', tbl;
    END IF;
    SELECT n.nspname, c.relname INTO schema, relname
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = tbl;
    bound := date_bin(width, from_time, 'epoch'::timestamptz);
    WHILE bound < to_time LOOP
        part := format('%s_p%s', relname, to_char(bound AT TIME ZONE 'UTC', 'YYYYMMDD"t"HH24MISS'));
        IF to_regclass(format('%I.%I', schema, part)) IS NULL THEN
            EXECUTE format('CREATE TABLE %I.%I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)',
                           schema, part, tbl, bound, bound + width);
            made := made + 1;
        END IF;
        bound := bound + width;
    END LOOP;
    RETURN made;
END
$$;

-- make_time_partitioned turns a freshly created, empty table with a "time" column into a hypertable
-- (timescale flavor) or a table partitioned by range of "time" (postgres flavor) with the same name,
-- columns, defaults and constraints, and partitions for the last 30 days and the next 7 days.
-- Create indexes after calling it, so they land on every chunk or partition.
CREATE FUNCTION infrawatch.make_time_partitioned(tbl regclass, chunk interval)
    RETURNS void
    LANGUAGE plpgsql
    AS $$
DECLARE
    schema  text;
    relname text;
BEGIN
    SELECT n.nspname, c.relname INTO schema, relname
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = tbl;
    IF infrawatch.flavor() = 'timescale' THEN
        PERFORM create_hypertable(tbl, by_range('time', chunk), create_default_indexes => false);
        INSERT INTO infrawatch.time_partitioned (table_name, chunk_interval) VALUES (tbl, chunk);
    ELSE
        EXECUTE format('CREATE TABLE %I.%I (LIKE %s INCLUDING ALL) PARTITION BY RANGE (time)',
                       schema, relname || '_partitioned', tbl);
        EXECUTE format('DROP TABLE %s', tbl);
        EXECUTE format('ALTER TABLE %I.%I RENAME TO %I', schema, relname || '_partitioned', relname);
        INSERT INTO infrawatch.time_partitioned (table_name, chunk_interval)
             VALUES (format('%I.%I', schema, relname)::regclass, chunk);
        PERFORM infrawatch.ensure_partitions(format('%I.%I', schema, relname)::regclass,
                                             now() - interval '30 days', now() + interval '7 days');
    END IF;
END
$$;
