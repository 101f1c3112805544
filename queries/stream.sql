-- The live stream's reads (GET /api/v1/stream), in a tenant transaction as infrawatch_api: row-level
-- security confines each to the current tenant. The latest samples of subscribed series come from
-- SamplesLatest (query.sql), their ids are checked with SeriesMatch.

-- name: CheckListKnownIDs :many
-- Those of the given ids that are checks of the current tenant.
SELECT id FROM app.checks WHERE id = ANY (@ids::bigint[]);

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
