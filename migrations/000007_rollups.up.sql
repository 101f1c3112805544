-- Rollups: metric samples in 5-minute, hourly and daily buckets, check results in hourly and daily
-- buckets, with the same relation names and columns in both storage flavors:
--
--   ts.samples_5m, ts.samples_1h, ts.samples_1d
--       (bucket, tenant_id, series_id, min, max, sum, count, last)
--       last is the value of the newest sample in the bucket.
--   ts.check_results_1h, ts.check_results_1d
--       (bucket, tenant_id, check_id, up_count, total, downtime_seconds, latency_sum_ms, latency_count,
--        latency_max_ms)
--       downtime_seconds is an estimate from the share of down results: an hourly bucket counts
--       3600 s × down results / all results of the hour, and a daily bucket adds up its hours, so an hour
--       without results counts neither as up nor as down. (Downtime from status transitions needs the
--       next result of each check, a window function that a continuous aggregate cannot hold; reports
--       get transitions from app.check_events.)
--
-- Each tier reads the one below it: samples → 5m → 1h → 1d, check_results → 1h → 1d. Every rollup is
-- complete when read, like a real-time continuous aggregate: materialized buckets up to a watermark,
-- and newer buckets aggregated on the fly.
--
-- timescale flavor: hierarchical continuous aggregates with real-time aggregation and refresh policies.
--   A late row below a watermark is picked up by the next policy run whose window covers it; the
--   windows reach back as far as ingest accepts rows (maintenance keeps them within the retention of the
--   tier below, because TimescaleDB's drop_chunks invalidates the dropped range and a refresh over it
--   would empty the rollup there).
-- postgres flavor: each rollup is a view over a table partitioned by bucket (ts.<rollup>_store) that
--   infrawatch.refresh_rollups fills, plus the buckets at or after the rollup's watermark aggregated on
--   the fly from the tier below. A statement trigger on the raw tables records the time range of every
--   insert in infrawatch.rollup_invalidations; the refresh re-aggregates exactly those buckets, so a
--   late row reaches the rollups at the next refresh, and passes what it rebuilt on to the next tier.
--
-- sqlc reads only top-level statements, so the postgres flavor's tables and views are created at top
-- level and the timescale flavor replaces them with continuous aggregates further down.
--
-- Bucket widths are written in hours, not days: adding '1 day' to a timestamptz follows the session's
-- time zone across daylight-saving changes, '24 hours' does not. Buckets start at multiples of their
-- width since the Unix epoch (UTC midnight for daily buckets), as time_bucket's do.

-- Rollups read the raw tables by time range. A BRIN index is the cheapest index there is for that (rows
-- arrive in time order; measured at a few tenths of a microsecond per row of a binary COPY) and spares
-- each refresh a scan of the whole day's partition or chunk (50 times fewer pages on 4 million rows).
CREATE INDEX samples_time_brin ON ts.samples USING brin (time) WITH (autosummarize = on);
CREATE INDEX check_results_time_brin ON ts.check_results USING brin (time) WITH (autosummarize = on);

-- rollups lists the tiers. The columns after bucket_width serve the postgres flavor only, where
-- refresh_rollups keeps them up to date: an operator can see how far each rollup is materialized.
CREATE TABLE infrawatch.rollups (
    name            text        NOT NULL PRIMARY KEY, -- the relation, e.g. 'ts.samples_5m'
    source          text        NOT NULL,             -- what it aggregates: a raw table or a finer rollup
    bucket_width    interval    NOT NULL CHECK (bucket_width > '0'::interval),
    store           regclass,                         -- the table of materialized buckets
    watermark       timestamptz NOT NULL DEFAULT '-infinity', -- buckets before it are read from store
    refreshed_at    timestamptz,                      -- the last refresh
    rows_written    bigint      NOT NULL DEFAULT 0,   -- into store by the last refresh
    backlog         boolean     NOT NULL DEFAULT false -- the last refresh left ranges queued: call again
);
INSERT INTO infrawatch.rollups (name, source, bucket_width, store) VALUES
    ('ts.samples_5m',       'ts.samples',          '5 minutes', NULL),
    ('ts.samples_1h',       'ts.samples_5m',       '1 hour',    NULL),
    ('ts.samples_1d',       'ts.samples_1h',       '24 hours',  NULL),
    ('ts.check_results_1h', 'ts.check_results',    '1 hour',    NULL),
    ('ts.check_results_1d', 'ts.check_results_1h', '24 hours',  NULL);

-- rollup_invalidations (postgres flavor) holds time ranges whose buckets of a rollup must be
-- re-aggregated: every insert into a raw table adds its range (one row per hour it touches), and a
-- refresh that rebuilds buckets adds their range for the next tier. A refresh takes the rows that
-- start before its target and were committed when it began; rows committed while it runs wait for the
-- next refresh, their buckets showing meanwhile what was materialized without them, as late rows do.
-- Nothing is lost, and ingest never waits for a refresh.
CREATE TABLE infrawatch.rollup_invalidations (
    rollup text      NOT NULL,
    during tstzrange NOT NULL
);

-- The postgres flavor's stores and views (see the top of this file for why they are top level).
-- The dashboard reads a tier by series and bucket range; the primary key includes every other column,
-- so that read is an index-only scan (on a table vacuumed since its last refresh): 14,400 buckets of a
-- 30-day dashboard cost half as much as fetching them from the heap.
CREATE TABLE ts.samples_5m_store (
    bucket    timestamptz      NOT NULL,
    tenant_id uuid             NOT NULL,
    series_id bigint           NOT NULL,
    min       double precision NOT NULL,
    max       double precision NOT NULL,
    sum       double precision NOT NULL,
    count     bigint           NOT NULL,
    last      double precision NOT NULL,
    PRIMARY KEY (series_id, bucket) INCLUDE (tenant_id, min, max, sum, count, last)
) PARTITION BY RANGE (bucket);
CREATE TABLE ts.samples_1h_store (LIKE ts.samples_5m_store INCLUDING ALL) PARTITION BY RANGE (bucket);
CREATE TABLE ts.samples_1d_store (LIKE ts.samples_5m_store INCLUDING ALL) PARTITION BY RANGE (bucket);

CREATE TABLE ts.check_results_1h_store (
    bucket           timestamptz      NOT NULL,
    tenant_id        uuid             NOT NULL,
    check_id         bigint           NOT NULL,
    up_count         bigint           NOT NULL,
    total            bigint           NOT NULL,
    downtime_seconds double precision NOT NULL,
    latency_sum_ms   double precision,          -- NULL when no result of the bucket had a latency
    latency_count    bigint           NOT NULL,
    latency_max_ms   double precision,
    PRIMARY KEY (check_id, bucket)
) PARTITION BY RANGE (bucket);
CREATE TABLE ts.check_results_1d_store (LIKE ts.check_results_1h_store INCLUDING ALL) PARTITION BY RANGE (bucket);
-- The refresh of the next tier reads these stores by bucket range.
CREATE INDEX samples_5m_store_bucket_brin ON ts.samples_5m_store USING brin (bucket);
CREATE INDEX samples_1h_store_bucket_brin ON ts.samples_1h_store USING brin (bucket);
CREATE INDEX check_results_1h_store_bucket_brin ON ts.check_results_1h_store USING brin (bucket);

-- rollup_watermark (postgres flavor) is the watermark of a rollup, for its view. It is declared
-- IMMUTABLE, which it is not, so that the planner evaluates it, as TimescaleDB does with a continuous
-- aggregate's watermark: each arm of a view is then planned with a constant bound, and the partitions of
-- the tier below and of the raw table that hold nothing at or after the watermark are left out of the
-- plan. Read by subquery, the bound was known only when the plan ran: a 7-day dashboard of the 1-hour
-- tier was planned over every partition of the 5-minute store and of ts.samples, 12 ms of planning with
-- 30 days of data and more the longer the retention, and without an estimate of the rows below the
-- watermark. A plan kept after the watermark moved (a generic plan a client caches; the API plans each
-- statement for its own parameters) still answers completely: a watermark only moves forward, and a
-- stale one makes the view aggregate more buckets on the fly from the tier below, which keeps them for
-- days (its retention). SECURITY DEFINER: a view reads tables with its owner's rights but calls
-- functions with the caller's.
CREATE FUNCTION infrawatch.rollup_watermark(rollup text) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$ SELECT watermark FROM infrawatch.rollups WHERE name = rollup $$;

-- The aggregates below appear twice per tier, here for the not-yet-materialized buckets and in
-- infrawatch.rebuild_rollup for the materialized ones; keep the two alike (the tests compare both with
-- an independent computation).
CREATE VIEW ts.samples_5m AS
    SELECT bucket, tenant_id, series_id, min, max, sum, count, last
      FROM ts.samples_5m_store
     WHERE bucket < infrawatch.rollup_watermark('ts.samples_5m')
    UNION ALL
    SELECT date_bin('5 minutes', time, 'epoch') AS bucket, tenant_id, series_id,
           min(value) AS min, max(value) AS max, sum(value) AS sum, count(*) AS count,
           (array_agg(value ORDER BY time DESC))[1] AS last
      FROM ts.samples
     WHERE time >= infrawatch.rollup_watermark('ts.samples_5m')
     GROUP BY 1, 2, 3;

CREATE VIEW ts.samples_1h AS
    SELECT bucket, tenant_id, series_id, min, max, sum, count, last
      FROM ts.samples_1h_store
     WHERE bucket < infrawatch.rollup_watermark('ts.samples_1h')
    UNION ALL
    SELECT date_bin('1 hour', bucket, 'epoch') AS bucket, tenant_id, series_id,
           min(min) AS min, max(max) AS max, sum(sum) AS sum, sum(count)::bigint AS count,
           (array_agg(last ORDER BY bucket DESC))[1] AS last
      FROM ts.samples_5m
     WHERE bucket >= infrawatch.rollup_watermark('ts.samples_1h')
     GROUP BY 1, 2, 3;

CREATE VIEW ts.samples_1d AS
    SELECT bucket, tenant_id, series_id, min, max, sum, count, last
      FROM ts.samples_1d_store
     WHERE bucket < infrawatch.rollup_watermark('ts.samples_1d')
    UNION ALL
    SELECT date_bin('24 hours', bucket, 'epoch') AS bucket, tenant_id, series_id,
           min(min) AS min, max(max) AS max, sum(sum) AS sum, sum(count)::bigint AS count,
           (array_agg(last ORDER BY bucket DESC))[1] AS last
      FROM ts.samples_1h
     WHERE bucket >= infrawatch.rollup_watermark('ts.samples_1d')
     GROUP BY 1, 2, 3;

CREATE VIEW ts.check_results_1h AS
    SELECT bucket, tenant_id, check_id, up_count, total, downtime_seconds, latency_sum_ms, latency_count,
           latency_max_ms
      FROM ts.check_results_1h_store
     WHERE bucket < infrawatch.rollup_watermark('ts.check_results_1h')
    UNION ALL
    SELECT date_bin('1 hour', time, 'epoch') AS bucket, tenant_id, check_id,
           count(*) FILTER (WHERE status = 'up') AS up_count,
           count(*) AS total,
           3600 * (count(*) FILTER (WHERE status = 'down'))::double precision / count(*) AS downtime_seconds,
           sum(extract(epoch FROM latency) * 1000)::double precision AS latency_sum_ms,
           count(latency) AS latency_count,
           max(extract(epoch FROM latency) * 1000)::double precision AS latency_max_ms
      FROM ts.check_results
     WHERE time >= infrawatch.rollup_watermark('ts.check_results_1h')
     GROUP BY 1, 2, 3;

CREATE VIEW ts.check_results_1d AS
    SELECT bucket, tenant_id, check_id, up_count, total, downtime_seconds, latency_sum_ms, latency_count,
           latency_max_ms
      FROM ts.check_results_1d_store
     WHERE bucket < infrawatch.rollup_watermark('ts.check_results_1d')
    UNION ALL
    SELECT date_bin('24 hours', bucket, 'epoch') AS bucket, tenant_id, check_id,
           sum(up_count)::bigint AS up_count,
           sum(total)::bigint AS total,
           sum(downtime_seconds) AS downtime_seconds,
           sum(latency_sum_ms) AS latency_sum_ms,
           sum(latency_count)::bigint AS latency_count,
           max(latency_max_ms) AS latency_max_ms
      FROM ts.check_results_1h
     WHERE bucket >= infrawatch.rollup_watermark('ts.check_results_1d')
     GROUP BY 1, 2, 3;

-- log_rollup_invalidation (postgres flavor) is the statement trigger on a raw table: it records the time
-- range of the inserted rows, one range per hour they touch, for the rollup named by the trigger's
-- argument. It fires for COPY and INSERT … ON CONFLICT into the partitioned table (with only the rows
-- actually inserted), not for writes straight into a partition: write through the parent.
CREATE FUNCTION infrawatch.log_rollup_invalidation() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    INSERT INTO infrawatch.rollup_invalidations (rollup, during)
    SELECT TG_ARGV[0], tstzrange(min(time), max(time), '[]')
      FROM inserted
     GROUP BY date_bin('1 hour', time, 'epoch');
    RETURN NULL;
END
$$;

-- bucket_cover is the smallest range of whole buckets of the given width that covers during.
CREATE FUNCTION infrawatch.bucket_cover(during tstzrange, width interval) RETURNS tstzrange
    LANGUAGE sql IMMUTABLE
    AS $$
    SELECT tstzrange(date_bin(width, lower(during), 'epoch'),
                     CASE WHEN upper_inc(during) OR date_bin(width, upper(during), 'epoch') <> upper(during)
                          THEN date_bin(width, upper(during), 'epoch') + width
                          ELSE upper(during) END)
$$;

-- rebuild_rollup (postgres flavor) replaces the buckets of a rollup in [lo, hi), bounds on its bucket
-- width, with a fresh aggregate of its source, and returns the number of rows written. Finer tiers are
-- read from their stores: the refresh rebuilds a tier only below the watermark of the tier under it.
CREATE FUNCTION infrawatch.rebuild_rollup(rollup text, lo timestamptz, hi timestamptz) RETURNS bigint
    LANGUAGE plpgsql
    AS $$
DECLARE
    written bigint;
BEGIN
    CASE rollup
    WHEN 'ts.samples_5m' THEN
        DELETE FROM ts.samples_5m_store WHERE bucket >= lo AND bucket < hi;
        INSERT INTO ts.samples_5m_store (bucket, tenant_id, series_id, min, max, sum, count, last)
        SELECT date_bin('5 minutes', time, 'epoch'), tenant_id, series_id,
               min(value), max(value), sum(value), count(*), (array_agg(value ORDER BY time DESC))[1]
          FROM ts.samples
         WHERE time >= lo AND time < hi
         GROUP BY 1, 2, 3;
    WHEN 'ts.samples_1h' THEN
        DELETE FROM ts.samples_1h_store WHERE bucket >= lo AND bucket < hi;
        INSERT INTO ts.samples_1h_store (bucket, tenant_id, series_id, min, max, sum, count, last)
        SELECT date_bin('1 hour', bucket, 'epoch'), tenant_id, series_id,
               min(min), max(max), sum(sum), sum(count)::bigint, (array_agg(last ORDER BY bucket DESC))[1]
          FROM ts.samples_5m_store
         WHERE bucket >= lo AND bucket < hi
         GROUP BY 1, 2, 3;
    WHEN 'ts.samples_1d' THEN
        DELETE FROM ts.samples_1d_store WHERE bucket >= lo AND bucket < hi;
        INSERT INTO ts.samples_1d_store (bucket, tenant_id, series_id, min, max, sum, count, last)
        SELECT date_bin('24 hours', bucket, 'epoch'), tenant_id, series_id,
               min(min), max(max), sum(sum), sum(count)::bigint, (array_agg(last ORDER BY bucket DESC))[1]
          FROM ts.samples_1h_store
         WHERE bucket >= lo AND bucket < hi
         GROUP BY 1, 2, 3;
    WHEN 'ts.check_results_1h' THEN
        DELETE FROM ts.check_results_1h_store WHERE bucket >= lo AND bucket < hi;
        INSERT INTO ts.check_results_1h_store (bucket, tenant_id, check_id, up_count, total, downtime_seconds,
                                               latency_sum_ms, latency_count, latency_max_ms)
        SELECT date_bin('1 hour', time, 'epoch'), tenant_id, check_id,
               count(*) FILTER (WHERE status = 'up'),
               count(*),
               3600 * (count(*) FILTER (WHERE status = 'down'))::double precision / count(*),
               sum(extract(epoch FROM latency) * 1000)::double precision,
               count(latency),
               max(extract(epoch FROM latency) * 1000)::double precision
          FROM ts.check_results
         WHERE time >= lo AND time < hi
         GROUP BY 1, 2, 3;
    WHEN 'ts.check_results_1d' THEN
        DELETE FROM ts.check_results_1d_store WHERE bucket >= lo AND bucket < hi;
        INSERT INTO ts.check_results_1d_store (bucket, tenant_id, check_id, up_count, total, downtime_seconds,
                                               latency_sum_ms, latency_count, latency_max_ms)
        SELECT date_bin('24 hours', bucket, 'epoch'), tenant_id, check_id,
               sum(up_count)::bigint, sum(total)::bigint, sum(downtime_seconds),
               sum(latency_sum_ms), sum(latency_count)::bigint, max(latency_max_ms)
          FROM ts.check_results_1h_store
         WHERE bucket >= lo AND bucket < hi
         GROUP BY 1, 2, 3;
    END CASE;
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END
$$;

-- refresh_rollups (postgres flavor; a no-op in the timescale flavor, where policies refresh) brings every
-- rollup up to date for the buckets that end by upto, finest tier first, and moves each watermark there.
-- Per tier it takes the invalidated ranges that start before the target, rebuilds their buckets — at
-- most max_buckets buckets' worth of time from the oldest one per call, the rest stays queued — and
-- queues the rebuilt range for the next tier. A tier never runs ahead of the tier below it, and a
-- watermark stops at the oldest range still queued, so the views stay complete while a backlog is
-- worked off (the backlog column says so: call again). Returns the tiers' rows of infrawatch.rollups.
-- Maintenance calls it every minute with upto = now() minus a small lag.
CREATE FUNCTION infrawatch.refresh_rollups(upto timestamptz, max_buckets integer DEFAULT 288)
    RETURNS SETOF infrawatch.rollups
    LANGUAGE plpgsql
    AS $$
DECLARE
    r        infrawatch.rollups;
    target   timestamptz;
    below    timestamptz;
    pending  tstzmultirange;
    todo     tstzmultirange;
    part     tstzrange;
    written  bigint;
    queued   timestamptz;
BEGIN
    IF infrawatch.flavor() <> 'postgres' THEN
        RETURN;
    END IF;
    IF max_buckets < 1 THEN
        RAISE EXCEPTION 'refresh_rollups: max_buckets must be at least 1';
    END IF;
    FOR r IN SELECT * FROM infrawatch.rollups ORDER BY bucket_width, name FOR UPDATE LOOP
        target := date_bin(r.bucket_width, upto, 'epoch');
        SELECT s.watermark INTO below FROM infrawatch.rollups s WHERE s.name = r.source;
        IF FOUND THEN
            target := least(target, date_bin(r.bucket_width, below, 'epoch'));
        END IF;

        WITH taken AS (
            DELETE FROM infrawatch.rollup_invalidations i
             WHERE i.rollup = r.name AND lower(i.during) < target
            RETURNING i.during
        )
        SELECT range_agg(infrawatch.bucket_cover(t.during, r.bucket_width)) INTO pending FROM taken t;

        written := 0;
        IF pending IS NOT NULL THEN
            todo := pending * tstzmultirange(tstzrange(lower(pending),
                                                       least(target, lower(pending) + max_buckets * r.bucket_width)));
            INSERT INTO infrawatch.rollup_invalidations (rollup, during)
            SELECT r.name, rest FROM unnest(pending - todo) AS rest;
            FOR part IN SELECT unnest(todo) LOOP
                PERFORM infrawatch.ensure_partitions(r.store, lower(part), upper(part));
                written := written + infrawatch.rebuild_rollup(r.name, lower(part), upper(part));
                INSERT INTO infrawatch.rollup_invalidations (rollup, during)
                SELECT c.name, part FROM infrawatch.rollups c WHERE c.source = r.name;
            END LOOP;
        END IF;

        SELECT min(lower(i.during)) INTO queued FROM infrawatch.rollup_invalidations i WHERE i.rollup = r.name;
        UPDATE infrawatch.rollups u
           SET watermark = greatest(u.watermark,
                                    least(target, coalesce(date_bin(r.bucket_width, queued, 'epoch'), target))),
               refreshed_at = now(),
               rows_written = written,
               backlog = coalesce(queued < target, false)
         WHERE u.name = r.name
        RETURNING u.* INTO r;
        RETURN NEXT r;
    END LOOP;
END
$$;

-- drop_old_data removes the data of a raw table or rollup older than older_than, in whole chunks or
-- partitions: what is kept reaches back at least to older_than and less than one chunk further. Returns
-- how many chunks or partitions it dropped. In the postgres flavor a rollup's partitions are its store's,
-- and ranges still queued for re-aggregation from the dropped data are cut off: re-aggregating rows that
-- no longer exist would empty the buckets built from them.
CREATE FUNCTION infrawatch.drop_old_data(relation regclass, older_than timestamptz) RETURNS integer
    LANGUAGE plpgsql
    AS $$
DECLARE
    target  regclass;
    p       record;
    dropped integer := 0;
    cut     timestamptz;
BEGIN
    IF infrawatch.flavor() = 'timescale' THEN
        SELECT count(*) INTO dropped FROM drop_chunks(relation, older_than => older_than);
        RETURN dropped;
    END IF;
    target := coalesce((SELECT r.store FROM infrawatch.rollups r WHERE to_regclass(r.name) = relation), relation);
    IF NOT EXISTS (SELECT FROM infrawatch.time_partitioned WHERE table_name = target) THEN
        RAISE EXCEPTION 'drop_old_data: % is neither a time-partitioned table nor a rollup', relation;
    END IF;
    FOR p IN
        SELECT c.oid::regclass AS part,
               split_part(pg_get_expr(c.relpartbound, c.oid), '''', 4)::timestamptz AS upper_bound
          FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = target
           AND pg_get_expr(c.relpartbound, c.oid) ~ '^FOR VALUES FROM \(''[^'']+''\) TO \(''[^'']+''\)$'
         ORDER BY 2
    LOOP
        EXIT WHEN p.upper_bound > older_than;
        EXECUTE format('DROP TABLE %s', p.part);
        dropped := dropped + 1;
        cut := p.upper_bound;
    END LOOP;
    IF cut IS NOT NULL THEN
        UPDATE infrawatch.rollup_invalidations i
           SET during = i.during * tstzrange(cut, NULL)
          FROM infrawatch.rollups r
         WHERE to_regclass(r.source) = relation AND i.rollup = r.name AND lower(i.during) < cut;
        DELETE FROM infrawatch.rollup_invalidations WHERE isempty(during);
    END IF;
    RETURN dropped;
END
$$;

-- delete_tenant_rollups deletes a tenant's rows from every rollup and returns how many; tenant deletion
-- calls it next to the deletes from the raw tables.
CREATE FUNCTION infrawatch.delete_tenant_rollups(tenant uuid) RETURNS bigint
    LANGUAGE plpgsql
    AS $$
DECLARE
    tables  text[];
    rel     text;
    n       bigint;
    deleted bigint := 0;
BEGIN
    IF infrawatch.flavor() = 'timescale' THEN
        tables := ARRAY(SELECT format('%I.%I', a.materialization_hypertable_schema, a.materialization_hypertable_name)
                          FROM timescaledb_information.continuous_aggregates a
                          JOIN infrawatch.rollups r ON to_regclass(r.name) = format('%I.%I', a.view_schema, a.view_name)::regclass);
    ELSE
        tables := ARRAY(SELECT r.store::text FROM infrawatch.rollups r);
    END IF;
    FOREACH rel IN ARRAY tables LOOP
        EXECUTE format('DELETE FROM %s WHERE tenant_id = $1', rel) USING tenant;
        GET DIAGNOSTICS n = ROW_COUNT;
        deleted := deleted + n;
    END LOOP;
    RETURN deleted;
END
$$;

-- set_compress_after (timescale flavor; false elsewhere) moves a hypertable's compression policy to
-- compress chunks older than compress_after, and says whether it had to.
CREATE FUNCTION infrawatch.set_compress_after(hypertable regclass, compress_after interval) RETURNS boolean
    LANGUAGE plpgsql
    AS $$
DECLARE
    job integer;
    cfg jsonb;
BEGIN
    IF infrawatch.flavor() <> 'timescale' THEN
        RETURN false;
    END IF;
    SELECT j.job_id, j.config INTO job, cfg
      FROM timescaledb_information.jobs j
     WHERE j.proc_name = 'policy_compression'
       AND format('%I.%I', j.hypertable_schema, j.hypertable_name)::regclass = hypertable;
    IF job IS NULL THEN
        RAISE EXCEPTION 'set_compress_after: % has no compression policy', hypertable;
    END IF;
    IF (cfg->>'compress_after')::interval = compress_after THEN
        RETURN false;
    END IF;
    PERFORM alter_job(job, config => jsonb_set(cfg, '{compress_after}', to_jsonb(compress_after)));
    RETURN true;
END
$$;

-- set_refresh_start (timescale flavor; false elsewhere) moves the start of a continuous aggregate's
-- refresh window to start_offset before now, and says whether it had to.
CREATE FUNCTION infrawatch.set_refresh_start(rollup regclass, start_offset interval) RETURNS boolean
    LANGUAGE plpgsql
    AS $$
DECLARE
    job integer;
    cfg jsonb;
BEGIN
    IF infrawatch.flavor() <> 'timescale' THEN
        RETURN false;
    END IF;
    SELECT j.job_id, j.config INTO job, cfg
      FROM timescaledb_information.jobs j
     WHERE j.proc_name = 'policy_refresh_continuous_aggregate'
       AND format('%I.%I', j.hypertable_schema, j.hypertable_name)::regclass = rollup;
    IF job IS NULL THEN
        RAISE EXCEPTION 'set_refresh_start: % has no refresh policy', rollup;
    END IF;
    IF (cfg->>'start_offset')::interval = start_offset THEN
        RETURN false;
    END IF;
    PERFORM alter_job(job, config => jsonb_set(cfg, '{start_offset}', to_jsonb(start_offset)));
    RETURN true;
END
$$;

DO $$
BEGIN
    IF infrawatch.flavor() = 'postgres' THEN
        UPDATE infrawatch.rollups SET store = (name || '_store')::regclass;
        -- Store partitions are as wide as the rollup's retention is coarse; refresh_rollups makes the ones
        -- it needs, maintenance makes them ahead and drops them behind.
        INSERT INTO infrawatch.time_partitioned (table_name, chunk_interval) VALUES
            ('ts.samples_5m_store',       '24 hours'),
            ('ts.samples_1h_store',       '168 hours'),
            ('ts.samples_1d_store',       '720 hours'),
            ('ts.check_results_1h_store', '168 hours'),
            ('ts.check_results_1d_store', '720 hours');
        PERFORM infrawatch.ensure_partitions(store, now() - interval '24 hours', now() + interval '168 hours')
           FROM infrawatch.rollups;

        CREATE TRIGGER samples_rollup_invalidation
            AFTER INSERT ON ts.samples REFERENCING NEW TABLE AS inserted
            FOR EACH STATEMENT EXECUTE FUNCTION infrawatch.log_rollup_invalidation('ts.samples_5m');
        CREATE TRIGGER check_results_rollup_invalidation
            AFTER INSERT ON ts.check_results REFERENCING NEW TABLE AS inserted
            FOR EACH STATEMENT EXECUTE FUNCTION infrawatch.log_rollup_invalidation('ts.check_results_1h');

        -- Rows stored before this migration are rolled up by the first refreshes, a day at a time.
        INSERT INTO infrawatch.rollup_invalidations (rollup, during)
        SELECT 'ts.samples_5m', tstzrange(min(time), max(time), '[]')
          FROM ts.samples GROUP BY date_bin('24 hours', time, 'epoch');
        INSERT INTO infrawatch.rollup_invalidations (rollup, during)
        SELECT 'ts.check_results_1h', tstzrange(min(time), max(time), '[]')
          FROM ts.check_results GROUP BY date_bin('24 hours', time, 'epoch');
        RETURN;
    END IF;

    -- timescale flavor: continuous aggregates instead of the postgres flavor's stores and views.
    DROP VIEW ts.samples_1d, ts.check_results_1d;
    DROP VIEW ts.samples_1h, ts.check_results_1h;
    DROP VIEW ts.samples_5m;
    DROP TABLE ts.samples_5m_store, ts.samples_1h_store, ts.samples_1d_store,
               ts.check_results_1h_store, ts.check_results_1d_store;

    -- WITH NO DATA: migrations run in a transaction, where TimescaleDB refuses to materialize. Until the
    -- first policy run, real-time aggregation answers from the raw rows.
    CREATE MATERIALIZED VIEW ts.samples_5m
        WITH (timescaledb.continuous, timescaledb.materialized_only = false, timescaledb.create_group_indexes = false) AS
        SELECT time_bucket('5 minutes', time) AS bucket, tenant_id, series_id,
               min(value) AS min, max(value) AS max, sum(value) AS sum, count(*) AS count,
               last(value, time) AS last
          FROM ts.samples
         GROUP BY 1, 2, 3
        WITH NO DATA;
    CREATE MATERIALIZED VIEW ts.samples_1h
        WITH (timescaledb.continuous, timescaledb.materialized_only = false, timescaledb.create_group_indexes = false) AS
        SELECT time_bucket('1 hour', bucket) AS bucket, tenant_id, series_id,
               min(min) AS min, max(max) AS max, sum(sum) AS sum, sum(count)::bigint AS count,
               last(last, bucket) AS last
          FROM ts.samples_5m
         GROUP BY 1, 2, 3
        WITH NO DATA;
    CREATE MATERIALIZED VIEW ts.samples_1d
        WITH (timescaledb.continuous, timescaledb.materialized_only = false, timescaledb.create_group_indexes = false) AS
        SELECT time_bucket('24 hours', bucket) AS bucket, tenant_id, series_id,
               min(min) AS min, max(max) AS max, sum(sum) AS sum, sum(count)::bigint AS count,
               last(last, bucket) AS last
          FROM ts.samples_1h
         GROUP BY 1, 2, 3
        WITH NO DATA;
    CREATE MATERIALIZED VIEW ts.check_results_1h
        WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
        SELECT time_bucket('1 hour', time) AS bucket, tenant_id, check_id,
               count(*) FILTER (WHERE status = 'up') AS up_count,
               count(*) AS total,
               3600 * (count(*) FILTER (WHERE status = 'down'))::double precision / count(*) AS downtime_seconds,
               sum(extract(epoch FROM latency) * 1000)::double precision AS latency_sum_ms,
               count(latency) AS latency_count,
               max(extract(epoch FROM latency) * 1000)::double precision AS latency_max_ms
          FROM ts.check_results
         GROUP BY 1, 2, 3
        WITH NO DATA;
    CREATE MATERIALIZED VIEW ts.check_results_1d
        WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
        SELECT time_bucket('24 hours', bucket) AS bucket, tenant_id, check_id,
               sum(up_count)::bigint AS up_count,
               sum(total)::bigint AS total,
               sum(downtime_seconds) AS downtime_seconds,
               sum(latency_sum_ms) AS latency_sum_ms,
               sum(latency_count)::bigint AS latency_count,
               max(latency_max_ms) AS latency_max_ms
          FROM ts.check_results_1h
         GROUP BY 1, 2, 3
        WITH NO DATA;

    -- TimescaleDB's own indexes on the group columns, (series_id, bucket DESC) and (tenant_id, bucket
    -- DESC), are left out (create_group_indexes = false) for the ones the rollups are read by: the
    -- dashboard's by series and bucket range, covering like the postgres flavor's primary keys (an
    -- index-only scan), and tenant deletion's by tenant.
    CREATE INDEX samples_5m_series_bucket ON ts.samples_5m (series_id, bucket) INCLUDE (tenant_id, min, max, sum, count, last);
    CREATE INDEX samples_1h_series_bucket ON ts.samples_1h (series_id, bucket) INCLUDE (tenant_id, min, max, sum, count, last);
    CREATE INDEX samples_1d_series_bucket ON ts.samples_1d (series_id, bucket) INCLUDE (tenant_id, min, max, sum, count, last);
    CREATE INDEX samples_5m_tenant_bucket ON ts.samples_5m (tenant_id, bucket);
    CREATE INDEX samples_1h_tenant_bucket ON ts.samples_1h (tenant_id, bucket);
    CREATE INDEX samples_1d_tenant_bucket ON ts.samples_1d (tenant_id, bucket);

    -- Chunks as wide as the postgres flavor's store partitions: retention drops whole chunks.
    PERFORM set_chunk_time_interval('ts.samples_5m', interval '24 hours');
    PERFORM set_chunk_time_interval('ts.samples_1h', interval '168 hours');
    PERFORM set_chunk_time_interval('ts.samples_1d', interval '720 hours');
    PERFORM set_chunk_time_interval('ts.check_results_1h', interval '168 hours');
    PERFORM set_chunk_time_interval('ts.check_results_1d', interval '720 hours');

    -- Refresh policies. start_offset: late rows are accepted as far back as the raw retention
    -- (30 days by default), so each window reaches that far (a coarser tier a day more per level, to
    -- pick up what the tier below rebuilt); maintenance keeps each within the retention of the tier it
    -- reads. end_offset: the newest buckets are left to real-time aggregation until they are complete
    -- and, for a coarser tier, until the tier below has materialized them (its end_offset plus its
    -- schedule), so a bucket is materialized about once. schedule_interval: about a bucket's width for
    -- the fine tiers, hourly for the daily ones; the real-time part never reads more than that.
    PERFORM add_continuous_aggregate_policy('ts.samples_5m', start_offset => interval '30 days',
        end_offset => interval '5 minutes', schedule_interval => interval '5 minutes');
    PERFORM add_continuous_aggregate_policy('ts.samples_1h', start_offset => interval '31 days',
        end_offset => interval '1 hour', schedule_interval => interval '30 minutes');
    PERFORM add_continuous_aggregate_policy('ts.samples_1d', start_offset => interval '32 days',
        end_offset => interval '3 hours', schedule_interval => interval '1 hour');
    PERFORM add_continuous_aggregate_policy('ts.check_results_1h', start_offset => interval '30 days',
        end_offset => interval '1 hour', schedule_interval => interval '30 minutes');
    PERFORM add_continuous_aggregate_policy('ts.check_results_1d', start_offset => interval '31 days',
        end_offset => interval '3 hours', schedule_interval => interval '1 hour');
END
$$;

-- Tenant-facing views, like api.samples: security_barrier keeps the tenant filter ahead of any function
-- in a caller's WHERE clause. The rollups behind them grant nothing to tenant-facing roles. The casts
-- tell sqlc the types it cannot infer from a division; latency_avg_ms, NULL when no result of the bucket
-- had a latency, has an override in sqlc.yaml instead.
CREATE VIEW api.samples_5m WITH (security_barrier) AS
    SELECT bucket, tenant_id, series_id, min, max, (sum / count)::double precision AS avg, sum, count, last
      FROM ts.samples_5m
     WHERE tenant_id = (SELECT app.current_tenant_id());

CREATE VIEW api.samples_1h WITH (security_barrier) AS
    SELECT bucket, tenant_id, series_id, min, max, (sum / count)::double precision AS avg, sum, count, last
      FROM ts.samples_1h
     WHERE tenant_id = (SELECT app.current_tenant_id());

CREATE VIEW api.samples_1d WITH (security_barrier) AS
    SELECT bucket, tenant_id, series_id, min, max, (sum / count)::double precision AS avg, sum, count, last
      FROM ts.samples_1d
     WHERE tenant_id = (SELECT app.current_tenant_id());

CREATE VIEW api.check_results_1h WITH (security_barrier) AS
    SELECT bucket, tenant_id, check_id, up_count, total,
           (up_count::double precision / total)::double precision AS availability, downtime_seconds,
           latency_sum_ms / nullif(latency_count, 0) AS latency_avg_ms, latency_max_ms
      FROM ts.check_results_1h
     WHERE tenant_id = (SELECT app.current_tenant_id());

CREATE VIEW api.check_results_1d WITH (security_barrier) AS
    SELECT bucket, tenant_id, check_id, up_count, total,
           (up_count::double precision / total)::double precision AS availability, downtime_seconds,
           latency_sum_ms / nullif(latency_count, 0) AS latency_avg_ms, latency_max_ms
      FROM ts.check_results_1d
     WHERE tenant_id = (SELECT app.current_tenant_id());

GRANT SELECT ON api.samples_5m, api.samples_1h, api.samples_1d, api.check_results_1h, api.check_results_1d
    TO infrawatch_api;
