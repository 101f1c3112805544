-- name: CheckEventCreate :one
INSERT INTO app.check_events (tenant_id, check_id, time, status, previous_status, reason)
VALUES (@tenant_id, @check_id, @time, @status, sqlc.narg(previous_status), @reason)
RETURNING id;

-- name: CheckEventListAfter :many
-- The current tenant's status changes after @after_id and no older than @since, of the given checks
-- (all of them when @all_checks), oldest first: the newest @max_rows of them when more match.
SELECT e.id, e.check_id, e.time, e.status, e.reason
  FROM (SELECT id, check_id, time, status, reason
          FROM app.check_events
         WHERE id > @after_id AND time >= @since
           AND (@all_checks::boolean OR check_id = ANY (@check_ids::bigint[]))
         ORDER BY id DESC
         LIMIT @max_rows) e
 ORDER BY e.id;

-- name: CheckEventLastID :one
-- The id of the current tenant's newest status change, 0 when there is none: where a stream that was
-- given no Last-Event-ID starts counting, so that it can catch up after missing events.
SELECT coalesce(max(id), 0)::bigint AS id FROM app.check_events;
