-- Tenant-isolation audit: every row this query returns is a hole. CI runs it on every flavor
-- (internal/db/isolation_test.go); operators can run it against a live database with psql.
-- See ARCHITECTURE.md § Tenant isolation.
WITH tenant_roles AS (
    SELECT oid, rolname FROM pg_roles WHERE rolname IN ('infrawatch_api', 'infrawatch_bi')
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
 WHERE n.nspname = 'api' AND c.relkind = 'v'
   AND NOT coalesce(c.reloptions @> ARRAY['security_barrier=true'], false)
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
ORDER BY 1, 2;
