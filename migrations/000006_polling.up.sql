-- Polling state: each check's current status, and its status changes as events for alerting and the
-- live stream. Pollers write both as the owner; tenants read them through row-level security.
ALTER TABLE app.checks
    ADD COLUMN status        text CHECK (status IN ('up', 'down')), -- NULL until the first run
    ADD COLUMN status_reason text NOT NULL DEFAULT '',
    ADD COLUMN status_since  timestamptz,
    ADD COLUMN last_run_at   timestamptz;

CREATE TABLE app.check_events (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       uuid        NOT NULL REFERENCES app.tenants (id) ON DELETE CASCADE,
    check_id        bigint      NOT NULL,
    time            timestamptz NOT NULL,
    status          text        NOT NULL CHECK (status IN ('up', 'down')),
    previous_status text        CHECK (previous_status IN ('up', 'down')), -- NULL for the first result
    reason          text        NOT NULL DEFAULT '',
    FOREIGN KEY (tenant_id, check_id) REFERENCES app.checks (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX check_events_check_id_time_idx ON app.check_events (check_id, time DESC);
CREATE INDEX check_events_tenant_id_id_idx ON app.check_events (tenant_id, id);
SELECT infrawatch.isolate_by_tenant('app.check_events');
GRANT SELECT ON app.check_events TO infrawatch_api;

-- Claiming due checks scans by location too.
DROP INDEX app.checks_due_idx;
CREATE INDEX checks_due_idx ON app.checks (next_run_at) INCLUDE (location) WHERE enabled;
