-- The processes of a deployment, each with its roles, as their heartbeats last said (internal/replicas):
-- what is divided among replicas reads it. A process writes its row every 10 seconds and deletes it when
-- it stops; a row not written for a minute is a dead process's, deleted by the next heartbeat of any.
-- System work only: tenant-facing roles have no access.
CREATE TABLE infrawatch.replicas (
    id         text          NOT NULL PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 200),
    roles      text[]        NOT NULL,
    started_at timestamptz   NOT NULL,
    seen_at    timestamptz   NOT NULL
);
