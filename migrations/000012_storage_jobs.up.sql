-- The storage jobs, watched by infrawatch: the rollup refresh of each tier, the compression of each raw
-- hypertable (timescale flavor) and retention. What the database knows of them (TimescaleDB's own runs,
-- watermarks, chunks waiting for compression) is read live through infrawatch.storage_job_facts; what
-- infrawatch's scheduler did and decided is kept in infrawatch.storage_jobs. Every process reads both
-- (GET /api/v1/operator/health, /metrics), so the answer does not depend on which replica runs the
-- scheduler. internal/maintenance (jobs.go) says what each column means to the operator.

-- storage_jobs holds, per job, the scheduler's own runs of it and its last check. Only the scheduler
-- that holds the maintenance lock writes it; a job has no row until the first check.
CREATE TABLE infrawatch.storage_jobs (
    job                      text        NOT NULL PRIMARY KEY, -- refresh_samples_5m, compress_samples, retention, …
    -- Who runs the job now: TimescaleDB's job scheduler (its policy) or infrawatch's scheduler role.
    runner                   text        NOT NULL DEFAULT 'infrawatch' CHECK (runner IN ('timescaledb', 'infrawatch')),
    mode                     text        CHECK (mode IN ('auto', 'timescaledb', 'infrawatch')), -- --timescale-jobs of the last check
    checked_at               timestamptz,          -- the scheduler's last check of the job
    check_interval           interval,             -- how often it checks
    taken_over_at            timestamptz,          -- when infrawatch took the job from TimescaleDB (runner infrawatch)
    timescaledb_silent_since timestamptz,          -- the first check that found no recent success of TimescaleDB's run
    state                    text,                 -- the state the last check found (and logged when it changed)
    -- infrawatch's own runs of the job.
    run_interval             interval,             -- how often infrawatch runs it
    last_success             timestamptz,
    last_failure             timestamptz,
    consecutive_failures     integer     NOT NULL DEFAULT 0,
    last_error               text,
    done_through             timestamptz           -- refresh: the end of the last window infrawatch refreshed
);

-- storage_job_facts lists every storage job of the flavor with what the database says of it now. The
-- view below is the postgres flavor's (sqlc reads its columns); the timescale flavor replaces it.
--   bucket_width           refresh: the rollup's bucket
--   timescaledb_*          timescale: TimescaleDB's job (policy): its id, whether it is scheduled, its
--                          last success, how many of its runs failed in a row, since when it fails (the
--                          oldest failure after its last success), its last error
--   schedule_interval, start_offset, end_offset, compress_after: the policy's
--   watermark              refresh: buckets before it are materialized (NULL: none is)
--   oldest_data            refresh, timescale: the start of the oldest chunk of the raw table the rollup
--                          is built from (NULL: no data), for the lag of a rollup that materialized nothing
--   backlog_chunks, oldest_backlog_end: compression: the chunks past compress_after not yet compressed,
--                          and the end of the oldest of them
CREATE VIEW infrawatch.storage_job_facts AS
    SELECT ('refresh_' || split_part(r.name, '.', 2))::text AS job,
           'refresh'::text AS kind,
           r.name AS relation,
           r.bucket_width AS bucket_width,
           NULL::integer AS timescaledb_job_id,
           NULL::boolean AS timescaledb_scheduled,
           NULL::interval AS schedule_interval,
           NULL::interval AS start_offset,
           NULL::interval AS end_offset,
           NULL::interval AS compress_after,
           NULL::timestamptz AS timescaledb_last_success,
           NULL::timestamptz AS timescaledb_failing_since,
           NULL::integer AS timescaledb_consecutive_failures,
           NULL::text AS timescaledb_last_error,
           (CASE WHEN r.watermark > '-infinity' THEN r.watermark END)::timestamptz AS watermark,
           NULL::timestamptz AS oldest_data,
           NULL::integer AS backlog_chunks,
           NULL::timestamptz AS oldest_backlog_end
      FROM infrawatch.rollups r
    UNION ALL
    SELECT 'retention', 'retention', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           NULL, NULL, NULL;

-- compress_oldest_chunk (timescale flavor) compresses the oldest chunk of a hypertable that ends by
-- older_than and is not compressed yet, and returns it; NULL when there is none (and in the postgres
-- flavor, which compresses nothing). One chunk per call, so the caller bounds the work of a pass.
CREATE FUNCTION infrawatch.compress_oldest_chunk(hypertable regclass, older_than timestamptz) RETURNS text
    LANGUAGE plpgsql
    SET jit = off -- see timescale_job_facts
    AS $$
DECLARE
    chunk regclass;
BEGIN
    IF infrawatch.flavor() <> 'timescale' THEN
        RETURN NULL;
    END IF;
    SELECT format('%I.%I', c.chunk_schema, c.chunk_name)::regclass INTO chunk
      FROM timescaledb_information.chunks c
     WHERE format('%I.%I', c.hypertable_schema, c.hypertable_name)::regclass = hypertable
       AND NOT c.is_compressed AND c.range_end <= older_than
     ORDER BY c.range_end
     LIMIT 1;
    IF chunk IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM compress_chunk(chunk, if_not_compressed => true);
    RETURN chunk::text;
END
$$;

DO $$
BEGIN
    IF infrawatch.flavor() <> 'timescale' THEN
        RETURN;
    END IF;
    -- A function with its body in a string records no dependency on TimescaleDB's views, so that
    -- ALTER EXTENSION timescaledb UPDATE may replace them. bgw_job_stat is TimescaleDB's internal table of
    -- job statistics: the only place that counts consecutive failures (checked with 2.28).
    CREATE FUNCTION infrawatch.timescale_job_facts()
        RETURNS TABLE (job text, kind text, relation text, bucket_width interval, timescaledb_job_id integer,
                       timescaledb_scheduled boolean, schedule_interval interval, start_offset interval,
                       end_offset interval, compress_after interval, timescaledb_last_success timestamptz,
                       timescaledb_failing_since timestamptz, timescaledb_consecutive_failures integer,
                       timescaledb_last_error text, watermark timestamptz, oldest_data timestamptz,
                       backlog_chunks integer, oldest_backlog_end timestamptz)
        LANGUAGE sql STABLE
        -- TimescaleDB's information views cost so much to the planner that JIT compiles this query:
        -- 1.3 s of compiling for 7 ms of work.
        SET jit = off
        AS $body$
        WITH RECURSIVE chain (name, source) AS (
            SELECT r.name, r.source FROM infrawatch.rollups r
            UNION ALL
            SELECT c.name, r.source FROM chain c JOIN infrawatch.rollups r ON r.name = c.source
        ), raw AS ( -- each rollup's raw table, at the bottom of its chain
            SELECT c.name, c.source FROM chain c WHERE c.source NOT IN (SELECT name FROM infrawatch.rollups)
        ), policy AS (
            SELECT j.job_id, j.proc_name, j.scheduled, j.schedule_interval, j.config,
                   format('%I.%I', j.hypertable_schema, j.hypertable_name) AS relation, j.hypertable_name,
                   nullif(s.last_successful_finish, '-infinity') AS last_success,
                   b.consecutive_failures
              FROM timescaledb_information.jobs j
              LEFT JOIN timescaledb_information.job_stats s ON s.job_id = j.job_id
              LEFT JOIN _timescaledb_internal.bgw_job_stat b ON b.job_id = j.job_id
             WHERE j.proc_name IN ('policy_refresh_continuous_aggregate', 'policy_compression')
               AND j.hypertable_schema = 'ts'
        ), facts AS (
            SELECT p.*,
                   (SELECT min(h.start_time) FROM timescaledb_information.job_history h
                     WHERE h.job_id = p.job_id AND NOT h.succeeded
                       AND h.start_time > coalesce(p.last_success, '-infinity')) AS failing_since,
                   (SELECT e.err_message FROM timescaledb_information.job_errors e
                     WHERE e.job_id = p.job_id ORDER BY e.finish_time DESC LIMIT 1) AS last_error
              FROM policy p
        )
        SELECT 'refresh_' || split_part(r.name, '.', 2), 'refresh', r.name, r.bucket_width,
               f.job_id, f.scheduled, f.schedule_interval,
               (f.config->>'start_offset')::interval, (f.config->>'end_offset')::interval, NULL::interval,
               f.last_success, f.failing_since, f.consecutive_failures, f.last_error,
               -- The watermark is the end of the newest materialized bucket; before any, TimescaleDB
               -- answers the smallest time it has (4714 BC).
               (SELECT CASE WHEN w > '1900-01-01' THEN w END
                  FROM _timescaledb_functions.to_timestamp(
                           _timescaledb_functions.cagg_watermark((f.config->>'mat_hypertable_id')::integer)) AS w),
               (SELECT min(ch.range_start) FROM timescaledb_information.chunks ch
                 WHERE format('%I.%I', ch.hypertable_schema, ch.hypertable_name) = raw.source),
               NULL::integer, NULL::timestamptz
          FROM infrawatch.rollups r
          JOIN raw ON raw.name = r.name
          LEFT JOIN facts f ON f.proc_name = 'policy_refresh_continuous_aggregate' AND f.relation = r.name
        UNION ALL
        SELECT 'compress_' || f.hypertable_name, 'compression', f.relation, NULL::interval,
               f.job_id, f.scheduled, f.schedule_interval, NULL::interval, NULL::interval,
               (f.config->>'compress_after')::interval,
               f.last_success, f.failing_since, f.consecutive_failures, f.last_error, NULL::timestamptz,
               NULL::timestamptz, c.backlog::integer, c.oldest
          FROM facts f
          CROSS JOIN LATERAL (
              SELECT count(*) AS backlog, min(ch.range_end) AS oldest
                FROM timescaledb_information.chunks ch
               WHERE ch.hypertable_schema = 'ts' AND ch.hypertable_name = f.hypertable_name
                 AND NOT ch.is_compressed AND ch.range_end <= now() - (f.config->>'compress_after')::interval) c
         WHERE f.proc_name = 'policy_compression'
        UNION ALL
        SELECT 'retention', 'retention', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
               NULL, NULL, NULL
        $body$;

    CREATE OR REPLACE VIEW infrawatch.storage_job_facts AS SELECT * FROM infrawatch.timescale_job_facts();
END
$$;
