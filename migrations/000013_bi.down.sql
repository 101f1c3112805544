-- Reverts 000013 (BI access). The BI logins this database made are cluster-wide roles that would
-- outlive it: deleting their mappings drops each (trigger bi_credentials_drop_login), ending its sessions
-- first. A login that owns objects in another database of the server cannot be dropped from here: it is
-- disabled instead and named in a warning, with what to run. The role infrawatch_bi_manager is
-- cluster-wide and may serve other databases, so it stays, like infrawatch_api and infrawatch_bi.
DELETE FROM app.bi_credentials;
SELECT infrawatch.bi_drop_leftovers();
DO $$
DECLARE
    left_over text;
BEGIN
    SELECT string_agg(login, ', ' ORDER BY login) INTO left_over FROM infrawatch.bi_leftover_logins;
    IF left_over IS NOT NULL THEN
        RAISE WARNING 'BI logins % are disabled but could not be dropped: they own objects in another database of this server', left_over
            USING HINT = 'In each database where they own objects, as a superuser: DROP OWNED BY <login>; then DROP ROLE <login>;';
    END IF;
END
$$;

DROP VIEW bi.hosts, bi.checks, bi.series, bi.samples, bi.samples_5m, bi.samples_1h, bi.samples_1d, bi.check_results,
          bi.availability_1h, bi.availability_1d, bi.logs;
DROP SCHEMA bi;

DROP FUNCTION infrawatch.event_channel(text);
DROP TABLE infrawatch.event_channel;

DROP TRIGGER bi_credentials_drop_login ON app.bi_credentials;
DROP FUNCTION infrawatch.bi_credentials_drop_login();
DROP FUNCTION infrawatch.bi_drop_leftovers();
DROP FUNCTION infrawatch.bi_enforce_limits(timestamptz);
DROP FUNCTION infrawatch.bi_drop_login(text);
DROP FUNCTION infrawatch.bi_login_set_password(text, text);
DROP FUNCTION infrawatch.bi_login_create(text, text);
DROP FUNCTION infrawatch.bi_end_sessions(text);
DROP FUNCTION infrawatch.bi_configure(text);
DROP TABLE infrawatch.bi_leftover_logins;
DROP TABLE app.bi_credentials;
DROP TABLE app.bi_settings;
REVOKE USAGE ON SCHEMA app FROM infrawatch_bi_manager;
REVOKE USAGE ON SCHEMA infrawatch FROM infrawatch_bi_manager;

-- Back to PostgreSQL's defaults: PUBLIC may create temporary tables and large objects.
DO $$
BEGIN
    EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO PUBLIC', current_database());
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        GRANT EXECUTE ON FUNCTION pg_catalog.lo_create(oid), pg_catalog.lo_creat(integer),
                                  pg_catalog.lo_from_bytea(oid, bytea) TO PUBLIC;
    END IF;
END
$$;
DROP FUNCTION infrawatch.bi_deny_temporary();
