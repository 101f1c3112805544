-- Poller gaps (app.check_gaps): the scheduler settles them from the raw results, for every check of
-- every tenant (system work), one stretch of time at a time (internal/sla, GapSettler).

-- name: CheckGapSettledLock :one
-- How far gaps are settled, locked for this transaction; no row when another scheduler holds the lock
-- (it settles meanwhile). started is false on a new database ('-infinity': nothing settled yet).
SELECT settled_to > '-infinity' AS started, greatest(settled_to, 'epoch')::timestamptz AS settled_to
  FROM infrawatch.check_gaps_settled FOR UPDATE SKIP LOCKED;

-- name: CheckGapFirstCheck :one
-- When the oldest check was created (any: there is one): where settling begins on a new database.
SELECT count(*) > 0 AS any, coalesce(min(created_at), 'epoch')::timestamptz AS created_at FROM app.checks;

-- name: CheckGapSettle :execrows
-- Records the gaps of every check in [@from_time, @to_time): the time from its creation on that no result
-- vouches for. A result vouches for its status from its time to the next result, at most twice the
-- check's interval; the last result before the stretch counts too. A gap across the stretch's ends is
-- recorded in pieces, one per stretch; readers merge them.
WITH p AS (
    SELECT @from_time::timestamptz AS w0, @to_time::timestamptz AS w1
), chk AS (
    SELECT c.tenant_id, c.id, make_interval(secs => 2 * c.interval_seconds) AS grace,
           tstzrange(greatest(c.created_at, p.w0), p.w1) AS stretch
      FROM app.checks c, p
     WHERE c.created_at < p.w1
), result AS (
    SELECT chk.id AS check_id, chk.grace, r.time
      FROM chk JOIN ts.check_results r ON r.check_id = chk.id, p
     WHERE r.time >= p.w0 AND r.time < p.w1
    UNION ALL
    SELECT chk.id, chk.grace, b.time
      FROM chk, p, LATERAL (SELECT r.time FROM ts.check_results r
                             WHERE r.check_id = chk.id AND r.time < p.w0 ORDER BY r.time DESC LIMIT 1) b
), piece AS (
    SELECT r.check_id, tstzrange(r.time, least(lead(r.time) OVER (PARTITION BY r.check_id ORDER BY r.time), r.time + r.grace)) AS vouched
      FROM result r
), vouched AS (
    SELECT pc.check_id, range_agg(pc.vouched) AS mr FROM piece pc GROUP BY pc.check_id
)
INSERT INTO app.check_gaps (tenant_id, check_id, during)
SELECT g.tenant_id, g.id, g.during
  FROM (SELECT chk.tenant_id, chk.id,
               unnest(tstzmultirange(chk.stretch) - coalesce(v.mr, '{}'::tstzmultirange)) AS during
          FROM chk LEFT JOIN vouched v ON v.check_id = chk.id
         WHERE NOT isempty(chk.stretch)) g;

-- name: CheckGapSetSettled :exec
UPDATE infrawatch.check_gaps_settled SET settled_to = @settled_to::timestamptz;

-- name: CheckGapList :many
-- The current tenant's gaps of a check that overlap [@from_time, @to_time), merged, in order.
SELECT lower(g.during)::timestamptz AS starts_at, upper(g.during)::timestamptz AS ends_at
  FROM (SELECT unnest(range_agg(during)) AS during FROM app.check_gaps
         WHERE check_id = @check_id AND upper(during) > @from_time::timestamptz AND lower(during) < @to_time::timestamptz) g
 ORDER BY 1;
