DROP INDEX app.checks_due_idx;
CREATE INDEX checks_due_idx ON app.checks (next_run_at) WHERE enabled;
DROP TABLE app.check_events;
ALTER TABLE app.checks
    DROP COLUMN last_run_at,
    DROP COLUMN status_since,
    DROP COLUMN status_reason,
    DROP COLUMN status;
