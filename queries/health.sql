-- Readiness (GET /readyz), read through the owner's pool: only catalogs and settings.

-- name: DatabaseWritability :one
-- Whether this process can write: the server is not a standby in recovery, this connection's
-- transactions are not read-only, and a connection opened now would not be read-only either (settings
-- made with ALTER DATABASE or ALTER ROLE … SET reach only new connections; the most specific wins:
-- this role in this database, then this role, then this database).
SELECT pg_is_in_recovery() AS in_recovery,
       current_setting('transaction_read_only')::boolean AS read_only,
       coalesce((SELECT split_part(c.setting, '=', 2)::boolean
                   FROM pg_catalog.pg_db_role_setting s, unnest(s.setconfig) AS c (setting)
                  WHERE s.setdatabase IN (0, (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()))
                    AND s.setrole IN (0, (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = session_user))
                    AND split_part(c.setting, '=', 1) = 'default_transaction_read_only'
                  ORDER BY s.setrole <> 0 DESC, s.setdatabase <> 0 DESC
                  LIMIT 1), false)::boolean AS new_connections_read_only;
