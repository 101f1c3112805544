-- Report runs: one per (report, period); the scheduler enqueues, claims, sends and marks them (system
-- work), the tenant reads them and asks for one now.

-- name: ReportRunEnqueue :execrows
-- System work (scheduler): the run of a report's period, unless it exists (the unique key: one email
-- per period, whichever scheduler enqueues it and however often).
INSERT INTO app.report_runs (tenant_id, report_id, period, period_start, period_end, next_attempt_at)
VALUES (@tenant_id, @report_id, @period, @period_start, @period_end, @now::timestamptz)
ON CONFLICT (report_id, period) DO NOTHING;

-- name: ReportRunSendNow :one
-- The current tenant's request to send a report's period now: a new run, or a finished one (sent or
-- failed) made pending again as a new generation, a new email. A run pending or being sent is left as
-- it is (no row: the caller answers 409).
INSERT INTO app.report_runs (tenant_id, report_id, period, period_start, period_end, manual)
VALUES (app.current_tenant_id(), @report_id, @period, @period_start, @period_end, true)
ON CONFLICT (report_id, period) DO UPDATE
   SET state = 'pending', generation = app.report_runs.generation + 1, manual = true, attempts = 0,
       next_attempt_at = now(), last_error = '', sent_at = NULL, updated_at = now()
 WHERE app.report_runs.state IN ('sent', 'failed')
RETURNING *;

-- name: ReportRunClaim :many
-- System work (scheduler): due runs (pending ones whose time has come, and runs whose scheduler died
-- while sending: their lease, next_attempt_at, passed), leased to the owner for the lease.
WITH due AS (
    SELECT d.id
      FROM app.report_runs d JOIN app.tenants t ON t.id = d.tenant_id
     WHERE d.state IN ('pending', 'sending') AND d.next_attempt_at <= @now::timestamptz AND t.status = 'active'
     ORDER BY d.next_attempt_at
     LIMIT @max_rows
       FOR UPDATE OF d SKIP LOCKED
)
UPDATE app.report_runs r
   SET state = 'sending', attempts = r.attempts + 1, lease_owner = @owner::text, lease_until = @lease_until::timestamptz,
       next_attempt_at = @lease_until::timestamptz, updated_at = @now::timestamptz
  FROM due
 WHERE r.id = due.id
RETURNING r.*;

-- name: ReportRunMarkSent :execrows
-- Records that the run's email went out, where owner still holds its lease.
UPDATE app.report_runs
   SET state = 'sent', sent_at = @now::timestamptz, last_error = '', message_id = @message_id, recipients = @recipients,
       lease_owner = NULL, lease_until = NULL, updated_at = @now::timestamptz
 WHERE id = @id AND state = 'sending' AND lease_owner = @owner::text;

-- name: ReportRunMarkRetry :execrows
-- Puts the run back for another attempt later, where owner still holds its lease.
UPDATE app.report_runs
   SET state = 'pending', next_attempt_at = @next_attempt_at, last_error = @last_error, lease_owner = NULL,
       lease_until = NULL, updated_at = now()
 WHERE id = @id AND state = 'sending' AND lease_owner = @owner::text;

-- name: ReportRunMarkFailed :execrows
-- Records that the run will not go out (refused, or tried for too long), where owner holds its lease.
UPDATE app.report_runs
   SET state = 'failed', last_error = @last_error, lease_owner = NULL, lease_until = NULL, updated_at = now()
 WHERE id = @id AND state = 'sending' AND lease_owner = @owner::text;

-- name: ReportRunList :many
-- The current tenant's runs of a report, newest first.
SELECT * FROM app.report_runs
 WHERE report_id = @report_id AND id < @before_id
 ORDER BY id DESC
 LIMIT @max_rows;
