DROP VIEW api.check_results_1d, api.check_results_1h, api.samples_1d, api.samples_1h, api.samples_5m;

DO $$
BEGIN
    IF infrawatch.flavor() = 'timescale' THEN
        -- Dropping a continuous aggregate drops its refresh policy and materialization hypertable.
        DROP MATERIALIZED VIEW ts.samples_1d;
        DROP MATERIALIZED VIEW ts.samples_1h;
        DROP MATERIALIZED VIEW ts.samples_5m;
        DROP MATERIALIZED VIEW ts.check_results_1d;
        DROP MATERIALIZED VIEW ts.check_results_1h;
    ELSE
        DROP TRIGGER samples_rollup_invalidation ON ts.samples;
        DROP TRIGGER check_results_rollup_invalidation ON ts.check_results;
        DROP VIEW ts.samples_1d, ts.check_results_1d;
        DROP VIEW ts.samples_1h, ts.check_results_1h;
        DROP VIEW ts.samples_5m;
        DELETE FROM infrawatch.time_partitioned
         WHERE table_name IN ('ts.samples_5m_store'::regclass, 'ts.samples_1h_store'::regclass,
                              'ts.samples_1d_store'::regclass, 'ts.check_results_1h_store'::regclass,
                              'ts.check_results_1d_store'::regclass);
        DROP TABLE ts.samples_5m_store, ts.samples_1h_store, ts.samples_1d_store,
                   ts.check_results_1h_store, ts.check_results_1d_store;
    END IF;
END
$$;

DROP FUNCTION infrawatch.rollup_watermark(text);
DROP FUNCTION infrawatch.set_refresh_start(regclass, interval);
DROP FUNCTION infrawatch.set_compress_after(regclass, interval);
DROP FUNCTION infrawatch.delete_tenant_rollups(uuid);
DROP FUNCTION infrawatch.drop_old_data(regclass, timestamptz);
DROP FUNCTION infrawatch.refresh_rollups(timestamptz, integer);
DROP FUNCTION infrawatch.rebuild_rollup(text, timestamptz, timestamptz);
DROP FUNCTION infrawatch.bucket_cover(tstzrange, interval);
DROP FUNCTION infrawatch.log_rollup_invalidation();
DROP TABLE infrawatch.rollup_invalidations;
DROP TABLE infrawatch.rollups;
DROP INDEX ts.check_results_time_brin;
DROP INDEX ts.samples_time_brin;
