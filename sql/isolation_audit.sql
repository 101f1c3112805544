-- Tenant-isolation audit: every row this query returns is a hole. CI runs it on every flavor
-- (internal/db/isolation_test.go); operators can run it against a live database with psql.
-- See ARCHITECTURE.md § Tenant isolation.
WITH tenant_roles AS (
    SELECT oid, rolname FROM pg_roles WHERE rolname IN ('infrawatch_api', 'infrawatch_bi')
    UNION
    SELECT r.oid, r.rolname FROM pg_roles r JOIN app.bi_credentials c ON c.login = r.rolname
),
-- The BI logins of this database (migration 000013): roles that tenants' analysts log in as.
bi_logins AS (
    SELECT r.* FROM pg_roles r JOIN app.bi_credentials c ON c.login = r.rolname
),
tables AS (
    SELECT c.oid, n.nspname, c.relname, c.relkind, c.relrowsecurity, c.relispartition,
           EXISTS (SELECT FROM pg_depend d
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e') AS extension_member
      FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p')
       AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
),
has_tenant_column AS (
    SELECT t.* FROM tables t
     WHERE EXISTS (SELECT FROM pg_attribute a
                    WHERE a.attrelid = t.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
)
-- 1. A table the api role may read or write must have row-level security and a policy for that role.
--    Extensions' own catalogs (TimescaleDB grants SELECT on them to PUBLIC) hold no tenant data.
SELECT format('%I.%I', t.nspname, t.relname) AS relation,
       'infrawatch_api has privileges on it but row-level security is off' AS problem
  FROM tables t
 WHERE NOT t.relrowsecurity AND NOT t.extension_member
   AND (has_table_privilege('infrawatch_api', t.oid, 'SELECT, INSERT, UPDATE, DELETE')
        OR t.nspname = 'app')
UNION ALL
SELECT format('%I.%I', t.nspname, t.relname),
       'row-level security is on but no policy applies to infrawatch_api'
  FROM tables t
 WHERE t.nspname = 'app'
   AND NOT EXISTS (SELECT FROM pg_policy p
                    WHERE p.polrelid = t.oid
                      AND (p.polroles = '{0}' OR (SELECT oid FROM pg_roles WHERE rolname = 'infrawatch_api') = ANY (p.polroles)))
UNION ALL
-- 2. A table with tenant data and no row-level security (hypertables, partitions, chunks, rollups) must
--    be out of reach of every tenant-facing role.
SELECT format('%I.%I', t.nspname, t.relname),
       format('%s can read it without row-level security', r.rolname)
  FROM has_tenant_column t CROSS JOIN tenant_roles r
 WHERE NOT t.relrowsecurity
   AND has_table_privilege(r.oid, t.oid, 'SELECT, INSERT, UPDATE, DELETE')
UNION ALL
-- 2b. So must a view over such tables that does not filter on the tenant itself: the rollups in ts
--     (continuous aggregates or views over stores) and TimescaleDB's internal views.
SELECT format('%I.%I', n.nspname, c.relname),
       format('%s can read it without a tenant filter', r.rolname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace CROSS JOIN tenant_roles r
 WHERE c.relkind IN ('v', 'm')
   AND n.nspname NOT IN ('api', 'bi', 'pg_catalog', 'information_schema')
   AND EXISTS (SELECT FROM pg_attribute a
                WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
   AND has_table_privilege(r.oid, c.oid, 'SELECT')
UNION ALL
-- 2c. A tenant-facing view filters on the tenant behind a security barrier, so that a leaky function in
--     a caller's WHERE clause never sees another tenant's rows.
SELECT format('%I.%I', n.nspname, c.relname), 'tenant-facing view without security_barrier'
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname IN ('api', 'bi') AND c.relkind = 'v'
   AND NOT coalesce(c.reloptions @> ARRAY['security_barrier=true'], false)
UNION ALL
-- 2d. A BI view filters on the login that authenticated, through the mapping tenant roles cannot write:
--     session_user and app.bi_credentials, never a setting (a BI login can set any of its own).
SELECT format('%I.%I', n.nspname, c.relname), 'BI view not filtered on session_user through app.bi_credentials'
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'bi' AND c.relkind = 'v'
   AND (pg_get_viewdef(c.oid) NOT LIKE '%SESSION_USER%'
        OR pg_get_viewdef(c.oid) ~* 'current_setting|current_tenant_id|current_user'
        OR NOT EXISTS (SELECT FROM pg_rewrite w JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = w.oid
                        WHERE w.ev_class = c.oid AND d.refobjid = 'app.bi_credentials'::regclass))
UNION ALL
-- 2e. Tenant-facing roles only read: a view of api or bi is read as its owner, so a write through it
--     would bypass row-level security.
SELECT format('%I.%I', n.nspname, c.relname), format('%s may write through it', r.rolname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace CROSS JOIN tenant_roles r
 WHERE n.nspname IN ('api', 'bi') AND c.relkind = 'v'
   AND has_table_privilege(r.oid, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')
UNION ALL
-- 2f. BI logins read schema bi only: no way into the schemas of the API role's tables and views.
SELECT format('schema %I', n.nspname), format('%s may use it', r.rolname)
  FROM pg_namespace n CROSS JOIN tenant_roles r
 WHERE n.nspname IN ('app', 'api') AND r.rolname <> 'infrawatch_api' AND has_schema_privilege(r.oid, n.oid, 'USAGE')
UNION ALL
-- 3. Every table with tenant data lives either in app (row-level security) or in ts or a TimescaleDB
--    internal schema (no grants).
SELECT format('%I.%I', t.nspname, t.relname), 'tenant data outside the app and ts schemas'
  FROM has_tenant_column t
 WHERE t.nspname NOT IN ('app', 'ts', '_timescaledb_internal', '_timescaledb_catalog')
UNION ALL
-- 4. Tenant-facing roles own nothing, bypass nothing and cannot log in as themselves.
SELECT format('%I.%I', n.nspname, c.relname), format('owned by %s', r.rolname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN tenant_roles r ON r.oid = c.relowner
UNION ALL
SELECT rolname, 'tenant-facing role is a superuser, bypasses row-level security or can log in'
  FROM pg_roles
 WHERE rolname IN ('infrawatch_api', 'infrawatch_bi') AND (rolsuper OR rolbypassrls OR rolcanlogin)
UNION ALL
-- 5. Tenant-facing roles create nothing anywhere and cannot use TimescaleDB's internal schemas.
SELECT format('schema %I', n.nspname), format('%s may create objects in it', r.rolname)
  FROM pg_namespace n CROSS JOIN tenant_roles r
 WHERE has_schema_privilege(r.oid, n.oid, 'CREATE')
UNION ALL
SELECT format('schema %I', n.nspname), format('%s may use it', r.rolname)
  FROM pg_namespace n CROSS JOIN tenant_roles r
 WHERE n.nspname IN ('ts', 'infrawatch') AND has_schema_privilege(r.oid, n.oid, 'USAGE')
UNION ALL
-- 5b. Nor temporary tables and functions (pg_temp), nor large objects: a BI login, which holds what
--     PUBLIC holds, writes nothing anywhere. (infrawatch_bi stands for every BI login here.)
SELECT format('database %I', current_database()), format('%s may create temporary tables', r.rolname)
  FROM tenant_roles r
 WHERE r.rolname <> 'infrawatch_api' AND has_database_privilege(r.oid, current_database(), 'TEMPORARY')
UNION ALL
SELECT format('function %s', f), format('%s may create large objects', r.rolname)
  FROM unnest(ARRAY['pg_catalog.lo_create(oid)', 'pg_catalog.lo_creat(integer)',
                    'pg_catalog.lo_from_bytea(oid, bytea)']::regprocedure[]) AS f CROSS JOIN tenant_roles r
 WHERE r.rolname <> 'infrawatch_api' AND has_function_privilege(r.oid, f, 'EXECUTE')
UNION ALL
-- 6. Logins are managed only by the functions of infrawatch_bi_manager, which tenant-facing roles may
--    neither call nor become; the API role never manages roles.
SELECT format('function %s', p.oid::regprocedure), format('%s may call it', r.rolname)
  FROM pg_proc p CROSS JOIN tenant_roles r
 WHERE p.proowner = (SELECT oid FROM pg_roles WHERE rolname = 'infrawatch_bi_manager')
   AND has_function_privilege(r.oid, p.oid, 'EXECUTE')
UNION ALL
SELECT r.rolname, 'tenant-facing role can create roles or act as infrawatch_bi_manager'
  FROM tenant_roles r JOIN pg_roles x ON x.oid = r.oid
 WHERE x.rolcreaterole OR x.rolcreatedb OR x.rolreplication
    OR pg_has_role(r.oid, 'infrawatch_bi_manager', 'MEMBER')
UNION ALL
-- 7. Each BI login: not a superuser, bypasses nothing, a member of infrawatch_bi and of nothing else,
--    with a connection limit, and in this database read-only by default with a statement timeout.
SELECT l.rolname, 'BI login is a superuser or bypasses row-level security'
  FROM bi_logins l
 WHERE l.rolsuper OR l.rolbypassrls
UNION ALL
SELECT l.rolname, format('BI login is a member of %s', g.rolname)
  FROM bi_logins l JOIN pg_auth_members m ON m.member = l.oid JOIN pg_roles g ON g.oid = m.roleid
 WHERE g.rolname <> 'infrawatch_bi'
UNION ALL
SELECT l.rolname, 'BI login has no connection limit'
  FROM bi_logins l
 WHERE l.rolcanlogin AND l.rolconnlimit < 0
UNION ALL
SELECT l.rolname, format('BI login lacks %s in this database', want)
  FROM bi_logins l
 CROSS JOIN unnest(ARRAY['default_transaction_read_only=on', 'statement_timeout=', 'search_path=bi']) AS want
 WHERE l.rolcanlogin
   AND NOT EXISTS (SELECT FROM pg_db_role_setting s, unnest(s.setconfig) AS cfg
                    WHERE s.setrole = l.oid
                      AND s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
                      AND cfg LIKE want || '%')
ORDER BY 1, 2;
