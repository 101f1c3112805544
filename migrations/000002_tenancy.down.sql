DROP POLICY tenant_isolation ON app.users;
DROP TABLE app.api_keys;
DROP TABLE app.memberships;
DROP TABLE app.users;
DROP TABLE app.tenants;
