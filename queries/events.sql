-- name: EventNotify :exec
-- Queues payloads on a LISTEN/NOTIFY channel; PostgreSQL delivers them when the transaction commits
-- (internal/events).
SELECT pg_notify(@channel::text, p) FROM unnest(@payloads::text[]) AS p;
