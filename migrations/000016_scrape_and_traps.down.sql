-- Reverts 000016. Prometheus checks and every trap credential are deleted: the kind list before it has
-- no prometheus, and no table keeps the credentials.
DROP TABLE app.trap_credentials;
DELETE FROM app.checks WHERE kind = 'prometheus';
ALTER TABLE app.checks
    DROP CONSTRAINT checks_kind_check,
    ADD CONSTRAINT checks_kind_check CHECK (kind IN ('icmp', 'snmp', 'http', 'tcp', 'dns'));
