-- name: CheckCreate :one
-- The first run falls at a random point within the interval (at most a minute away), so checks created
-- together do not all run in the same second ever after.
INSERT INTO app.checks (tenant_id, host_id, name, kind, target, interval_seconds, timeout_seconds, settings,
                        secrets, enabled, location, next_run_at, parent_id)
VALUES (app.current_tenant_id(), @host_id, @name, @kind, @target, @interval_seconds, @timeout_seconds, @settings,
        @secrets, @enabled, @location, now() + random() * make_interval(secs => least(@interval_seconds, 60)),
        sqlc.narg(parent_id))
RETURNING *;

-- name: CheckGetByID :one
SELECT * FROM app.checks WHERE id = @id;

-- name: CheckList :many
SELECT * FROM app.checks
 WHERE id > @after_id
   AND (sqlc.narg(kind)::text IS NULL OR kind = sqlc.narg(kind))
   AND (sqlc.narg(host_id)::bigint IS NULL OR host_id = sqlc.narg(host_id))
 ORDER BY id
 LIMIT @max_rows;

-- name: CheckUpdate :one
UPDATE app.checks
   SET host_id = @host_id, name = @name, target = @target, interval_seconds = @interval_seconds,
       timeout_seconds = @timeout_seconds, settings = @settings, secrets = @secrets, secrets_staging = NULL,
       enabled = @enabled, location = @location, parent_id = sqlc.narg(parent_id), updated_at = now()
 WHERE id = @id
RETURNING *;

-- name: CheckDelete :execrows
DELETE FROM app.checks WHERE id = @id;

-- name: CheckCount :one
SELECT count(*) FROM app.checks;

-- name: CheckClaimDue :many
-- Claims up to max_rows checks due at @now for owner: their lease lasts the check's timeout plus grace.
-- Checks pinned to another location, of suspended tenants or of busy tenants (at their concurrency
-- limit) are left for others. SKIP LOCKED lets replicas claim side by side without waiting for each
-- other. A NULL @now is the database's now(), as pollers claim; tests pass the time of the clock they
-- drive.
WITH due AS (
    SELECT c.id
      FROM app.checks c
      JOIN app.tenants t ON t.id = c.tenant_id
     WHERE c.enabled
       AND c.next_run_at <= coalesce(sqlc.narg(now)::timestamptz, now())
       AND (c.lease_expires_at IS NULL OR c.lease_expires_at < coalesce(sqlc.narg(now)::timestamptz, now()))
       AND (c.location IS NULL OR c.location = sqlc.narg(location)::text)
       AND t.status = 'active'
       AND c.tenant_id <> ALL (@busy_tenants::uuid[])
     ORDER BY c.next_run_at
     LIMIT @max_rows
       FOR UPDATE OF c SKIP LOCKED
)
UPDATE app.checks c
   SET lease_owner = @owner::text,
       lease_expires_at = coalesce(sqlc.narg(now)::timestamptz, now())
                          + make_interval(secs => c.timeout_seconds + @grace_seconds::int)
  FROM due
 WHERE c.id = due.id
RETURNING c.id, c.tenant_id, c.name, c.kind, c.target, c.interval_seconds, c.timeout_seconds, c.settings,
          c.next_run_at, c.status, c.secrets, c.secrets_staging,
          coalesce((SELECT h.name FROM app.hosts h WHERE h.tenant_id = c.tenant_id AND h.id = c.host_id), '')::text AS host_name;

-- name: CheckCompleteRuns :many
-- Completes runs still leased by owner for the slot they claimed: stores the status and the next slot
-- and releases the lease. A run whose lease was lost (it ran past its lease and another poller claimed
-- the check) matches nothing, so its result is discarded and a slot is never stored twice.
UPDATE app.checks c
   SET status = CASE WHEN r.up THEN 'up' ELSE 'down' END,
       status_reason = r.reason,
       status_since = CASE WHEN c.status IS DISTINCT FROM (CASE WHEN r.up THEN 'up' ELSE 'down' END)
                           THEN r.started_at ELSE c.status_since END,
       last_run_at = r.started_at,
       next_run_at = r.next_run_at,
       lease_owner = NULL,
       lease_expires_at = NULL
  FROM (SELECT unnest(@ids::bigint[]) AS id, unnest(@slots::timestamptz[]) AS slot, unnest(@ups::boolean[]) AS up,
               unnest(@reasons::text[]) AS reason, unnest(@started_at::timestamptz[]) AS started_at,
               unnest(@next_run_at::timestamptz[]) AS next_run_at) r
 WHERE c.id = r.id AND c.lease_owner = @owner::text AND c.next_run_at = r.slot
RETURNING c.id;

-- name: CheckSkipRun :execrows
-- Moves a run whose result the database refused on to the check's next slot and releases its lease,
-- leaving the status as it was, so that a check whose results cannot be stored never freezes. Like
-- CheckCompleteRuns, it does nothing to a check whose lease was lost.
UPDATE app.checks
   SET last_run_at = @started_at::timestamptz, next_run_at = @next_run_at::timestamptz,
       lease_owner = NULL, lease_expires_at = NULL
 WHERE id = @id AND lease_owner = @owner::text AND next_run_at = @slot::timestamptz;

-- name: CheckReleaseLeases :exec
-- Gives back checks claimed but not run (the poller is shutting down), so another replica runs them now.
UPDATE app.checks SET lease_owner = NULL, lease_expires_at = NULL
 WHERE id = ANY (@ids::bigint[]) AND lease_owner = @owner::text;

-- name: CheckGetForRun :one
-- One check for a run requested through the API (POST /checks/{id}/run); the caller has already
-- checked that it belongs to tenant.
SELECT c.id, c.tenant_id, c.name, c.kind, c.target, c.interval_seconds, c.timeout_seconds, c.settings,
       c.next_run_at, c.status, c.secrets, c.secrets_staging,
       coalesce((SELECT h.name FROM app.hosts h WHERE h.tenant_id = c.tenant_id AND h.id = c.host_id), '')::text AS host_name,
       c.last_run_at
  FROM app.checks c
 WHERE c.tenant_id = @tenant_id AND c.id = @id;

-- name: CheckSetRunStatus :exec
-- Stores the status found by a run requested through the API, leaving the schedule alone.
UPDATE app.checks
   SET status = @status::text, status_reason = @reason, last_run_at = @started_at::timestamptz,
       status_since = CASE WHEN status IS DISTINCT FROM @status::text THEN @started_at ELSE status_since END
 WHERE tenant_id = @tenant_id AND id = @id;

-- name: CheckListKnownIDs :many
-- Those of the given ids that are checks of the current tenant.
SELECT id FROM app.checks WHERE id = ANY (@ids::bigint[]);

-- name: CheckSecretsList :many
-- Checks with secrets, sealed or waiting to be sealed, after after_id: for sealing at start and for
-- `infrawatch secrets rotate` (system work). only_staged limits them to those still in the clear.
SELECT id, tenant_id, secrets, secrets_staging
  FROM app.checks
 WHERE id > @after_id
   AND (secrets_staging IS NOT NULL OR (NOT @only_staged::boolean AND secrets IS NOT NULL))
 ORDER BY id
 LIMIT @max_rows;

-- name: CheckSecretsSet :execrows
-- Stores a check's secrets sealed anew and empties its staging, unless the check changed since they were
-- read (an update through the API seals on its own).
UPDATE app.checks
   SET secrets = @secrets, secrets_staging = NULL
 WHERE id = @id
   AND secrets IS NOT DISTINCT FROM sqlc.narg(old_secrets)::bytea
   AND secrets_staging IS NOT DISTINCT FROM sqlc.narg(old_staging)::jsonb;
