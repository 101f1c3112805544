// Package bi gives tenants read-only PostgreSQL logins for their BI tools (Grafana, Metabase, Superset,
// psql) on the documented views of schema bi (sql/bi/README.md).
//
// A BI login is a real role of the PostgreSQL server, mapped to one tenant in app.bi_credentials
// (migration 000013). What a login can see is decided in the database, not here:
//
//   - the views of schema bi filter on session_user through that mapping, so no setting, SET ROLE or
//     RESET ROLE a session makes changes the tenant it sees, and they are security_barrier views, so a
//     condition the login writes never sees another tenant's rows;
//   - the login is a member of infrawatch_bi only, which reads schema bi and nothing else, may create
//     nothing (no schema, no temporary table, no large object) and writes nothing;
//   - the role is created, changed and dropped by SECURITY DEFINER functions owned by
//     infrawatch_bi_manager (a NOLOGIN role with CREATEROLE), which only the owning login may call:
//     this package calls them through db.System, and the API role never manages roles.
//
// This package holds the lifecycle around them: Service makes a login with a random name and password
// (the password leaves this process only as a SCRAM-SHA-256 verifier, and is answered once), rotates
// its password, and revokes it (deleting its mapping drops the role and ends its sessions), each with an
// audit entry in the same transaction. Enforcer ends the sessions of logins past their tenant's limits:
// a session may change its own statement_timeout, so the limit set on the login is a default, and the
// enforcer makes it a limit.
package bi
