-- name: ReplicaBeat :exec
-- System work (every process): the process is alive with these roles, by the database's clock, so that
-- the clocks of the replicas' hosts never matter.
INSERT INTO infrawatch.replicas AS r (id, roles, started_at, seen_at)
VALUES (@id, @roles::text[], now(), now())
ON CONFLICT (id) DO UPDATE SET roles = excluded.roles, seen_at = excluded.seen_at;

-- name: ReplicaLeave :exec
-- System work: the process stops; what is divided among replicas is divided among the others at once.
DELETE FROM infrawatch.replicas WHERE id = @id;

-- name: ReplicasForgetDead :execrows
-- System work: rows of processes whose last heartbeat is older than @dead_after.
DELETE FROM infrawatch.replicas WHERE seen_at < now() - @dead_after::interval;

-- name: ReplicasCountLive :one
-- System work: how many processes with role have beaten within @alive_within.
SELECT count(*) FROM infrawatch.replicas WHERE @role::text = ANY (roles) AND seen_at >= now() - @alive_within::interval;
