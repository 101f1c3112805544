-- name: EventNotify :exec
-- Queues payloads on a LISTEN/NOTIFY channel, under its private name (migration 000013: a base name and
-- the database's secret, so that BI logins can neither hear nor reach it); PostgreSQL delivers them when
-- the transaction commits (internal/events). Through app.publish_events (migration 000015), so that a
-- tenant's transaction may publish its own tenant's events and no other's.
SELECT app.publish_events(@channel::text, @payloads::text[]);

-- name: EventChannel :one
-- The private name of a channel, to LISTEN on.
SELECT infrawatch.event_channel(@base::text)::text;
