-- name: EventNotify :exec
-- Queues payloads on a LISTEN/NOTIFY channel, under its private name (migration 000013: a base name and
-- the database's secret, so that BI logins can neither hear nor reach it); PostgreSQL delivers them when
-- the transaction commits (internal/events).
SELECT pg_notify(infrawatch.event_channel(@channel::text), p) FROM unnest(@payloads::text[]) AS p;

-- name: EventChannel :one
-- The private name of a channel, to LISTEN on.
SELECT infrawatch.event_channel(@base::text)::text;
