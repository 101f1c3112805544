-- BI access: read-only PostgreSQL logins, one set per tenant, on the documented views of schema bi
-- (sql/bi/README.md documents them column by column; README § BI access says how to connect).
--
-- A BI login is a real PostgreSQL role, cluster-wide, that a tenant's analysts and tools (Grafana,
-- Metabase, Superset, psql) log in as. What keeps it to its tenant:
--   - app.bi_credentials maps each login to its tenant. Tenant-facing roles cannot write it: the API role
--     reads it under row-level security, BI logins cannot reach schema app at all.
--   - The views of schema bi filter on session_user through that mapping. session_user is the login that
--     authenticated; nothing a session can set (a setting, SET ROLE, RESET ROLE) changes it.
--   - The views are security_barrier, so a condition a login writes cannot see rows of another tenant
--     before the view's own filter has removed them.
--   - The login is a member of infrawatch_bi only, which may SELECT the views of schema bi and nothing
--     else; it may not create anything (no CREATE on any schema, no TEMPORARY on the database) nor make
--     large objects.
--   - Logins are created, changed and dropped only by the SECURITY DEFINER functions below, owned by
--     infrawatch_bi_manager, a NOLOGIN role with CREATEROLE that nothing logs in as. Only the owning login
--     may call them (system work through db.System): the API role never gets CREATEROLE.
--   - Per-tenant limits (app.bi_settings): a statement timeout and an idle-in-transaction timeout set
--     on the login in this database, and a connection limit on the login. A session can change its own
--     timeouts, so internal/bi's enforcer also ends sessions past them (infrawatch.bi_enforce_limits).
--
-- Roles are cluster-wide while this schema is one database's: login names are random (bi_ and 16
-- characters), never derived from the tenant, so that they neither collide across the databases of one
-- server nor tell one tenant the names of others (pg_roles is readable by every login).

-- infrawatch_bi_manager creates, changes and drops BI logins through the functions it owns below. It is
-- cluster-wide, so it may exist from another database of the same server, and migrate down leaves it.
-- INHERIT: it is made a member of each login it creates, so that it may see and end that login's sessions.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'infrawatch_bi_manager') THEN
        BEGIN
            CREATE ROLE infrawatch_bi_manager NOLOGIN CREATEROLE INHERIT NOBYPASSRLS;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN
                NULL; -- created at the same moment by a migration of another database
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'migration 000013 (BI access) must create the role infrawatch_bi_manager, which needs a superuser or a login with CREATEROLE'
                    USING HINT = 'Run it once as a superuser, or have one run: CREATE ROLE infrawatch_bi_manager NOLOGIN CREATEROLE; GRANT infrawatch_bi_manager TO '
                                 || quote_ident(current_user) || ';';
        END;
    END IF;
    -- From PostgreSQL 16, CREATEROLE acts only on roles one has ADMIN OPTION on: the manager puts new
    -- logins in infrawatch_bi, so it needs that option, and nothing more of the role.
    IF current_setting('server_version_num')::integer >= 160000 THEN
        EXECUTE 'GRANT infrawatch_bi TO infrawatch_bi_manager WITH ADMIN TRUE, INHERIT FALSE, SET FALSE';
    END IF;
END
$$;
-- The owning login makes the manager the owner of the functions below, which needs its membership.
GRANT infrawatch_bi_manager TO CURRENT_USER;

-- Per-tenant limits of BI logins. A tenant's row is made with the defaults when it creates its first
-- login; the operator may change it (a login takes new values when it is rotated).
CREATE TABLE app.bi_settings (
    tenant_id                   uuid        NOT NULL PRIMARY KEY REFERENCES app.tenants (id) ON DELETE CASCADE,
    -- statement_timeout of the tenant's logins in this database.
    statement_timeout           interval    NOT NULL DEFAULT '30 seconds'
                                            CHECK (statement_timeout BETWEEN '100 milliseconds' AND '1 hour'),
    -- idle_in_transaction_session_timeout: a session that leaves a transaction open holds back vacuum.
    idle_in_transaction_timeout interval    NOT NULL DEFAULT '1 minute'
                                            CHECK (idle_in_transaction_timeout BETWEEN '1 second' AND '1 hour'),
    -- CONNECTION LIMIT of each login.
    connection_limit            integer     NOT NULL DEFAULT 5 CHECK (connection_limit BETWEEN 1 AND 100),
    -- How many logins the tenant may have at once.
    max_credentials             integer     NOT NULL DEFAULT 10 CHECK (max_credentials BETWEEN 0 AND 100),
    updated_at                  timestamptz NOT NULL DEFAULT now()
);

-- One row per BI login: the mapping the views of schema bi filter on. Deleting a row drops its login
-- (trigger bi_credentials_drop_login), so revoking, deleting the tenant and migrate down all drop logins.
CREATE TABLE app.bi_credentials (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id  uuid        NOT NULL REFERENCES app.tenants (id) ON DELETE CASCADE,
    name       text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200), -- what it is for, e.g. "grafana"
    login      text        NOT NULL UNIQUE CHECK (login ~ '^bi_[a-z2-7]{16}$'),
    created_by uuid        REFERENCES app.users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    rotated_at timestamptz, -- the last password change; NULL until the first
    UNIQUE (tenant_id, id)
);
CREATE INDEX bi_credentials_tenant_id_idx ON app.bi_credentials (tenant_id);

SELECT infrawatch.isolate_by_tenant('app.bi_settings');
SELECT infrawatch.isolate_by_tenant('app.bi_credentials');
-- The API lists a tenant's logins and limits; every change is system work.
GRANT SELECT ON app.bi_settings, app.bi_credentials TO infrawatch_api;
-- The manager's functions act only on mapped logins, with their tenant's limits: it reads both tables,
-- every row (its own policy), and writes neither.
GRANT USAGE ON SCHEMA app TO infrawatch_bi_manager;
GRANT SELECT ON app.bi_settings, app.bi_credentials TO infrawatch_bi_manager;
CREATE POLICY bi_manager ON app.bi_settings TO infrawatch_bi_manager USING (true);
CREATE POLICY bi_manager ON app.bi_credentials TO infrawatch_bi_manager USING (true);

-- Logins whose mapping went but that could not be dropped (they own objects in another database of the
-- server): disabled, out of infrawatch_bi, and dropped by a later enforcer pass once they can be.
CREATE TABLE infrawatch.bi_leftover_logins (
    login  text        NOT NULL PRIMARY KEY,
    since  timestamptz NOT NULL DEFAULT now(),
    reason text        NOT NULL
);
GRANT USAGE ON SCHEMA infrawatch TO infrawatch_bi_manager;
GRANT SELECT, INSERT, UPDATE, DELETE ON infrawatch.bi_leftover_logins TO infrawatch_bi_manager;

-- bi_deny_temporary takes the database's TEMPORARY privilege from PUBLIC, which every role holds by
-- default: a BI login must not create temporary tables or functions (pg_temp). The owner keeps it. The
-- privilege lives in pg_database, which CREATE DATABASE … TEMPLATE does not copy, so internal/bi calls
-- this again before it creates a login; when the owning login does not own the database it cannot, and
-- bi_login_create then refuses to make a login that could (see README § BI access).
CREATE FUNCTION infrawatch.bi_deny_temporary() RETURNS boolean
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF has_database_privilege('public', current_database(), 'TEMPORARY') THEN
        EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
    END IF;
    RETURN NOT has_database_privilege('public', current_database(), 'TEMPORARY');
END
$$;
REVOKE ALL ON FUNCTION infrawatch.bi_deny_temporary() FROM PUBLIC;
SELECT infrawatch.bi_deny_temporary();

-- Large objects: any role may create them by default, read-only transaction or not, so a BI login could
-- write to the database through lo_create and friends. Only a superuser may take that from PUBLIC
-- (pg_catalog's functions); otherwise the isolation audit reports the hole until an operator does.
DO $$
BEGIN
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        REVOKE EXECUTE ON FUNCTION pg_catalog.lo_create(oid), pg_catalog.lo_creat(integer),
                                   pg_catalog.lo_from_bytea(oid, bytea) FROM PUBLIC;
    ELSE
        RAISE WARNING 'BI logins may create large objects: as a superuser, run REVOKE EXECUTE ON FUNCTION pg_catalog.lo_create(oid), pg_catalog.lo_creat(integer), pg_catalog.lo_from_bytea(oid, bytea) FROM PUBLIC in database %', current_database();
    END IF;
END
$$;

-- bi_configure applies a mapped login's tenant limits: its connection limit, and in this database its
-- timeouts, read-only transactions by default and schema bi as its search path.
CREATE FUNCTION infrawatch.bi_configure(login text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    s app.bi_settings;
BEGIN
    SELECT st.* INTO s
      FROM app.bi_credentials c JOIN app.bi_settings st ON st.tenant_id = c.tenant_id
     WHERE c.login = bi_configure.login;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'bi_configure: % is not a BI login with limits', login USING ERRCODE = 'no_data_found';
    END IF;
    EXECUTE format('ALTER ROLE %I CONNECTION LIMIT %s', login, s.connection_limit);
    EXECUTE format('ALTER ROLE %I IN DATABASE %I SET default_transaction_read_only = on', login, current_database());
    EXECUTE format('ALTER ROLE %I IN DATABASE %I SET statement_timeout = %L', login, current_database(),
                   (extract(epoch FROM s.statement_timeout) * 1000)::bigint || 'ms');
    EXECUTE format('ALTER ROLE %I IN DATABASE %I SET idle_in_transaction_session_timeout = %L', login, current_database(),
                   (extract(epoch FROM s.idle_in_transaction_timeout) * 1000)::bigint || 'ms');
    EXECUTE format('ALTER ROLE %I IN DATABASE %I SET search_path = bi', login, current_database());
END
$$;

-- bi_end_sessions ends every session of a login, on any database of the server, waiting up to 5 s for
-- each to go, and returns how many it ended. A loop, not a WHERE clause: the planner may evaluate the
-- conditions of a WHERE clause in any order, and must never signal a session of another role.
CREATE FUNCTION infrawatch.bi_end_sessions(login text) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    session_pid integer;
    ended       integer := 0;
BEGIN
    FOR session_pid IN
        SELECT a.pid FROM pg_stat_activity a WHERE a.usename = bi_end_sessions.login AND a.pid <> pg_backend_pid()
    LOOP
        IF pg_terminate_backend(session_pid, 5000) THEN
            ended := ended + 1;
        END IF;
    END LOOP;
    RETURN ended;
END
$$;

-- bi_login_create makes the login of a mapping that exists (inserted in the same transaction), with the
-- password whose SCRAM-SHA-256 verifier is given — never the password itself, so that it appears in no
-- statement, log or catalog — as a member of infrawatch_bi only, with its tenant's limits.
CREATE FUNCTION infrawatch.bi_login_create(login text, verifier text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM app.bi_credentials c WHERE c.login = bi_login_create.login) THEN
        RAISE EXCEPTION 'bi_login_create: % is not mapped to a tenant', login USING ERRCODE = 'no_data_found';
    END IF;
    IF verifier !~ '^SCRAM-SHA-256\$[0-9]+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$' THEN
        RAISE EXCEPTION 'bi_login_create: the password must come as a SCRAM-SHA-256 verifier' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    BEGIN
        EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT NOREPLICATION NOBYPASSRLS '
                       'CONNECTION LIMIT 0 PASSWORD %L IN ROLE infrawatch_bi', login, verifier);
    EXCEPTION WHEN duplicate_object THEN
        -- A role of that name exists on the server (another database made it): the caller picks another.
        RAISE EXCEPTION 'bi_login_create: role % exists', login USING ERRCODE = 'unique_violation';
    END;
    EXECUTE format('GRANT %I TO infrawatch_bi_manager', login); -- to see and end its sessions
    PERFORM infrawatch.bi_configure(login);
    IF has_database_privilege(login, current_database(), 'TEMPORARY') THEN
        RAISE EXCEPTION 'BI logins could create temporary tables in database %', current_database()
            USING HINT = format('As the owner of the database, run REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database()),
                  ERRCODE = 'insufficient_privilege';
    END IF;
END
$$;

-- bi_login_set_password gives a mapped login a new password (as a SCRAM-SHA-256 verifier), applies its
-- tenant's limits again and ends its sessions, so that nothing logged in with the old password stays.
CREATE FUNCTION infrawatch.bi_login_set_password(login text, verifier text) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM app.bi_credentials c WHERE c.login = bi_login_set_password.login)
       OR NOT pg_has_role(login, 'infrawatch_bi', 'MEMBER') THEN
        RAISE EXCEPTION 'bi_login_set_password: % is not a BI login', login USING ERRCODE = 'no_data_found';
    END IF;
    IF verifier !~ '^SCRAM-SHA-256\$[0-9]+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$' THEN
        RAISE EXCEPTION 'bi_login_set_password: the password must come as a SCRAM-SHA-256 verifier' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE format('ALTER ROLE %I PASSWORD %L', login, verifier);
    PERFORM infrawatch.bi_configure(login);
    RETURN infrawatch.bi_end_sessions(login);
END
$$;

-- bi_drop_login ends a login's sessions and drops it, with what it owns in this database (large objects
-- made before they were denied, say). A role that owns objects in another database of the server cannot
-- be dropped from here: it is then disabled (no login, no password, out of infrawatch_bi), its sessions
-- ended again, and listed in infrawatch.bi_leftover_logins for a later pass. Returns whether it dropped it.
-- A name that is no BI login (no such role, or a role outside infrawatch_bi) is left alone.
CREATE FUNCTION infrawatch.bi_drop_login(login text) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles r WHERE r.rolname = login AND NOT r.rolsuper) THEN
        DELETE FROM infrawatch.bi_leftover_logins l WHERE l.login = bi_drop_login.login;
        RETURN false; -- nothing to drop (a seeded mapping of tests, or dropped by hand)
    END IF;
    IF NOT pg_has_role(login, 'infrawatch_bi', 'MEMBER')
       AND NOT EXISTS (SELECT FROM infrawatch.bi_leftover_logins l WHERE l.login = bi_drop_login.login) THEN
        RETURN false; -- not a BI login: never drop another role of the server
    END IF;
    PERFORM infrawatch.bi_end_sessions(login);
    BEGIN
        EXECUTE format('DROP OWNED BY %I', login);
        EXECUTE format('DROP ROLE %I', login);
        DELETE FROM infrawatch.bi_leftover_logins l WHERE l.login = bi_drop_login.login;
        RETURN true;
    EXCEPTION WHEN dependent_objects_still_exist THEN
        EXECUTE format('ALTER ROLE %I NOLOGIN PASSWORD NULL', login);
        IF pg_has_role(login, 'infrawatch_bi', 'MEMBER') THEN
            EXECUTE format('REVOKE infrawatch_bi FROM %I', login);
        END IF;
        PERFORM infrawatch.bi_end_sessions(login);
        INSERT INTO infrawatch.bi_leftover_logins AS l (login, reason) VALUES (bi_drop_login.login, SQLERRM)
            ON CONFLICT (login) DO UPDATE SET reason = excluded.reason;
        RAISE WARNING 'BI login % was disabled but not dropped: %', login, SQLERRM;
        RETURN false;
    END;
END
$$;

CREATE FUNCTION infrawatch.bi_credentials_drop_login() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    PERFORM infrawatch.bi_drop_login(old.login);
    RETURN NULL;
END
$$;
CREATE TRIGGER bi_credentials_drop_login AFTER DELETE ON app.bi_credentials
    FOR EACH ROW EXECUTE FUNCTION infrawatch.bi_credentials_drop_login();

-- bi_enforce_limits ends the sessions of BI logins that are past their tenant's limits at at_time (the
-- database's now() when NULL), whatever the session set for itself: a statement running longer than the
-- statement timeout and a second is cancelled; a session idle in a transaction longer than the idle
-- timeout and a second, or holding an advisory lock (which would hold back the server's own work,
-- maintenance's among it), is terminated. It returns what it did, one row per session.
CREATE FUNCTION infrawatch.bi_enforce_limits(at_time timestamptz)
    RETURNS TABLE (login text, pid integer, action text, reason text)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    now_at timestamptz := coalesce(at_time, now());
    x      record;
BEGIN
    FOR x IN
        SELECT a.pid, c.login, a.state, a.query_start, a.state_change, s.statement_timeout, s.idle_in_transaction_timeout,
               EXISTS (SELECT FROM pg_locks k WHERE k.pid = a.pid AND k.locktype = 'advisory') AS advisory
          FROM pg_stat_activity a
          JOIN app.bi_credentials c ON c.login = a.usename
          JOIN app.bi_settings s ON s.tenant_id = c.tenant_id
         WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()
    LOOP
        login := x.login;
        pid := x.pid;
        IF x.advisory THEN
            action := 'terminate';
            reason := 'holds an advisory lock';
        ELSIF x.state LIKE 'idle in transaction%' AND x.state_change < now_at - x.idle_in_transaction_timeout - interval '1 second' THEN
            action := 'terminate';
            reason := 'idle in a transaction past ' || x.idle_in_transaction_timeout;
        ELSIF x.state = 'active' AND x.query_start < now_at - x.statement_timeout - interval '1 second' THEN
            action := 'cancel';
            reason := 'a statement running past ' || x.statement_timeout;
        ELSE
            CONTINUE;
        END IF;
        IF action = 'cancel' THEN
            PERFORM pg_cancel_backend(x.pid);
        ELSE
            PERFORM pg_terminate_backend(x.pid, 5000); -- gone, locks released, before the next pass
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;

-- bi_drop_leftovers tries again to drop the logins bi_drop_login could only disable, and returns those it
-- dropped.
CREATE FUNCTION infrawatch.bi_drop_leftovers() RETURNS SETOF text
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT l.login FROM infrawatch.bi_leftover_logins l WHERE infrawatch.bi_drop_login(l.login)
$$;

ALTER FUNCTION infrawatch.bi_configure(text) OWNER TO infrawatch_bi_manager;
ALTER FUNCTION infrawatch.bi_end_sessions(text) OWNER TO infrawatch_bi_manager;
ALTER FUNCTION infrawatch.bi_login_create(text, text) OWNER TO infrawatch_bi_manager;
ALTER FUNCTION infrawatch.bi_login_set_password(text, text) OWNER TO infrawatch_bi_manager;
ALTER FUNCTION infrawatch.bi_drop_login(text) OWNER TO infrawatch_bi_manager;
ALTER FUNCTION infrawatch.bi_credentials_drop_login() OWNER TO infrawatch_bi_manager;
ALTER FUNCTION infrawatch.bi_enforce_limits(timestamptz) OWNER TO infrawatch_bi_manager;
ALTER FUNCTION infrawatch.bi_drop_leftovers() OWNER TO infrawatch_bi_manager;
-- Only the owning login calls them (the manager calls its own). Never PUBLIC, never a tenant-facing role.
REVOKE ALL ON FUNCTION infrawatch.bi_configure(text), infrawatch.bi_end_sessions(text),
                       infrawatch.bi_login_create(text, text), infrawatch.bi_login_set_password(text, text),
                       infrawatch.bi_drop_login(text), infrawatch.bi_credentials_drop_login(),
                       infrawatch.bi_enforce_limits(timestamptz), infrawatch.bi_drop_leftovers() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION infrawatch.bi_login_create(text, text), infrawatch.bi_login_set_password(text, text),
                          infrawatch.bi_drop_login(text), infrawatch.bi_enforce_limits(timestamptz),
                          infrawatch.bi_drop_leftovers() TO CURRENT_USER;

-- The events channel becomes private. LISTEN and NOTIFY take no privilege: any session of the database
-- may listen on a channel and notify it. Until now only the owning login connected; a BI login could
-- LISTEN infrawatch_events and read every tenant's live events, or NOTIFY it and put forged events in
-- another tenant's live stream. The channel's name now ends with a secret that only the owning login can
-- read (event_channel), so a BI login can neither hear nor reach it. Producers notify through
-- event_channel in their statement (queries/events.sql) and the stream hub asks it before LISTEN.
CREATE TABLE infrawatch.event_channel (
    suffix    text    NOT NULL CHECK (suffix ~ '^[0-9a-f]{32}$'),
    singleton boolean NOT NULL DEFAULT true PRIMARY KEY CHECK (singleton)
);
INSERT INTO infrawatch.event_channel (suffix) VALUES (replace(gen_random_uuid()::text, '-', ''));

-- event_channel is the private name of the channel named base: base, '_' and the database's secret.
CREATE FUNCTION infrawatch.event_channel(base text) RETURNS text
    LANGUAGE sql STABLE
    AS $$ SELECT base || '_' || suffix FROM infrawatch.event_channel $$;
REVOKE ALL ON FUNCTION infrawatch.event_channel(text) FROM PUBLIC;

-- Schema bi: the views BI logins read. Every view filters on the tenant mapped to session_user (the
-- subselect, evaluated once per statement), is a security_barrier, and joins the names a BI user filters
-- by (host_name, metric, check_name). Conditions on those names and on time compare with built-in
-- operators that are leakproof, so the planner may still take them into the view, to the indexes.
-- Columns are the same in both storage flavors (a test compares them).
CREATE SCHEMA bi;
REVOKE ALL ON SCHEMA bi FROM PUBLIC;
GRANT USAGE ON SCHEMA bi TO infrawatch_bi;
COMMENT ON SCHEMA bi IS 'infrawatch BI views: one tenant''s data for its BI logins; documented in sql/bi/README.md';

CREATE VIEW bi.hosts WITH (security_barrier) AS
    SELECT h.id AS host_id, h.name AS host_name, h.labels, h.metadata, h.monitored_by, h.last_seen_at, h.created_at,
           h.updated_at
      FROM app.hosts h
     WHERE h.tenant_id = (SELECT c.tenant_id FROM app.bi_credentials c WHERE c.login = session_user);

CREATE VIEW bi.checks WITH (security_barrier) AS
    SELECT ch.id AS check_id, ch.name AS check_name, ch.kind, ch.target, ch.host_id, h.name AS host_name, ch.location,
           ch.interval_seconds, ch.timeout_seconds, ch.enabled, ch.status, ch.status_reason, ch.status_since,
           ch.last_run_at, ch.created_at, ch.updated_at
      FROM app.checks ch
      LEFT JOIN app.hosts h ON h.id = ch.host_id AND h.tenant_id = ch.tenant_id
     WHERE ch.tenant_id = (SELECT c.tenant_id FROM app.bi_credentials c WHERE c.login = session_user);

CREATE VIEW bi.series WITH (security_barrier) AS
    SELECT s.id AS series_id, s.name AS metric, s.labels, s.host_id, h.name AS host_name, s.created_at
      FROM app.series s
      LEFT JOIN app.hosts h ON h.id = s.host_id AND h.tenant_id = s.tenant_id
     WHERE s.tenant_id = (SELECT c.tenant_id FROM app.bi_credentials c WHERE c.login = session_user);

-- The series views read their time series series by series: a LATERAL subquery on the series' id, so
-- that each series is read through the (series_id, time) or (series_id, bucket) index, with the time
-- condition of the query taken in too. A plain join cannot: a rollup is a UNION ALL whose newest
-- buckets are aggregated on the fly (GROUP BY), which PostgreSQL never reads by a join's parameter, so
-- it would aggregate the tenant's whole range and hash it. The ORDER BY keeps the subquery from being
-- merged into the join (which would make it a plain join again) while conditions may still enter it;
-- it costs nothing, the index reads in that order.
CREATE VIEW bi.samples WITH (security_barrier) AS
    SELECT x.time, s.id AS series_id, s.name AS metric, s.labels, s.host_id, h.name AS host_name, x.value
      FROM app.series s
     CROSS JOIN LATERAL (SELECT r.time, r.value FROM ts.samples r
                          WHERE r.series_id = s.id AND r.tenant_id = s.tenant_id ORDER BY r.time) x
      LEFT JOIN app.hosts h ON h.id = s.host_id AND h.tenant_id = s.tenant_id
     WHERE s.tenant_id = (SELECT c.tenant_id FROM app.bi_credentials c WHERE c.login = session_user);

CREATE VIEW bi.samples_5m WITH (security_barrier) AS
    SELECT r.bucket, s.id AS series_id, s.name AS metric, s.labels, s.host_id, h.name AS host_name,
           (r.sum / r.count)::double precision AS avg_value, r.min AS min_value, r.max AS max_value,
           r.sum AS sum_value, r.count AS sample_count, r.last AS last_value
      FROM app.series s
     CROSS JOIN LATERAL (SELECT x.bucket, x.min, x.max, x.sum, x.count, x.last FROM ts.samples_5m x
                          WHERE x.series_id = s.id AND x.tenant_id = s.tenant_id ORDER BY x.bucket) r
      LEFT JOIN app.hosts h ON h.id = s.host_id AND h.tenant_id = s.tenant_id
     WHERE s.tenant_id = (SELECT c.tenant_id FROM app.bi_credentials c WHERE c.login = session_user);

CREATE VIEW bi.samples_1h WITH (security_barrier) AS
    SELECT r.bucket, s.id AS series_id, s.name AS metric, s.labels, s.host_id, h.name AS host_name,
           (r.sum / r.count)::double precision AS avg_value, r.min AS min_value, r.max AS max_value,
           r.sum AS sum_value, r.count AS sample_count, r.last AS last_value
      FROM app.series s
     CROSS JOIN LATERAL (SELECT x.bucket, x.min, x.max, x.sum, x.count, x.last FROM ts.samples_1h x
                          WHERE x.series_id = s.id AND x.tenant_id = s.tenant_id ORDER BY x.bucket) r
      LEFT JOIN app.hosts h ON h.id = s.host_id AND h.tenant_id = s.tenant_id
     WHERE s.tenant_id = (SELECT c.tenant_id FROM app.bi_credentials c WHERE c.login = session_user);

CREATE VIEW bi.samples_1d WITH (security_barrier) AS
    SELECT r.bucket, s.id AS series_id, s.name AS metric, s.labels, s.host_id, h.name AS host_name,
           (r.sum / r.count)::double precision AS avg_value, r.min AS min_value, r.max AS max_value,
           r.sum AS sum_value, r.count AS sample_count, r.last AS last_value
      FROM app.series s
     CROSS JOIN LATERAL (SELECT x.bucket, x.min, x.max, x.sum, x.count, x.last FROM ts.samples_1d x
                          WHERE x.series_id = s.id AND x.tenant_id = s.tenant_id ORDER BY x.bucket) r
      LEFT JOIN app.hosts h ON h.id = s.host_id AND h.tenant_id = s.tenant_id
     WHERE s.tenant_id = (SELECT c.tenant_id FROM app.bi_credentials c WHERE c.login = session_user);

-- Check results outlive a deleted check (until retention); their check's columns are then NULL.
CREATE VIEW bi.check_results WITH (security_barrier) AS
    SELECT r.time, r.check_id, ch.name AS check_name, ch.kind, ch.host_id, h.name AS host_name, ch.location,
           r.status, r.status = 'up' AS is_up, (extract(epoch FROM r.latency) * 1000)::double precision AS latency_ms,
           r.detail
      FROM ts.check_results r
      LEFT JOIN app.checks ch ON ch.id = r.check_id AND ch.tenant_id = r.tenant_id
      LEFT JOIN app.hosts h ON h.id = ch.host_id AND h.tenant_id = r.tenant_id
     WHERE r.tenant_id = (SELECT c.tenant_id FROM app.bi_credentials c WHERE c.login = session_user);

CREATE VIEW bi.availability_1h WITH (security_barrier) AS
    SELECT r.bucket, r.check_id, ch.name AS check_name, ch.kind, ch.host_id, h.name AS host_name, ch.location,
           r.up_count, r.total AS total_count, (r.up_count::double precision / r.total)::double precision AS availability,
           r.downtime_seconds, (r.latency_sum_ms / nullif(r.latency_count, 0))::double precision AS latency_avg_ms,
           r.latency_max_ms
      FROM ts.check_results_1h r
      LEFT JOIN app.checks ch ON ch.id = r.check_id AND ch.tenant_id = r.tenant_id
      LEFT JOIN app.hosts h ON h.id = ch.host_id AND h.tenant_id = r.tenant_id
     WHERE r.tenant_id = (SELECT c.tenant_id FROM app.bi_credentials c WHERE c.login = session_user);

CREATE VIEW bi.availability_1d WITH (security_barrier) AS
    SELECT r.bucket, r.check_id, ch.name AS check_name, ch.kind, ch.host_id, h.name AS host_name, ch.location,
           r.up_count, r.total AS total_count, (r.up_count::double precision / r.total)::double precision AS availability,
           r.downtime_seconds, (r.latency_sum_ms / nullif(r.latency_count, 0))::double precision AS latency_avg_ms,
           r.latency_max_ms
      FROM ts.check_results_1d r
      LEFT JOIN app.checks ch ON ch.id = r.check_id AND ch.tenant_id = r.tenant_id
      LEFT JOIN app.hosts h ON h.id = ch.host_id AND h.tenant_id = r.tenant_id
     WHERE r.tenant_id = (SELECT c.tenant_id FROM app.bi_credentials c WHERE c.login = session_user);

CREATE VIEW bi.logs WITH (security_barrier) AS
    SELECT l.time, l.host_id, h.name AS host_name, l.source, l.severity, l.message, l.attributes
      FROM ts.logs l
      LEFT JOIN app.hosts h ON h.id = l.host_id AND h.tenant_id = l.tenant_id
     WHERE l.tenant_id = (SELECT c.tenant_id FROM app.bi_credentials c WHERE c.login = session_user);

GRANT SELECT ON bi.hosts, bi.checks, bi.series, bi.samples, bi.samples_5m, bi.samples_1h, bi.samples_1d,
                bi.check_results, bi.availability_1h, bi.availability_1d, bi.logs TO infrawatch_bi;
