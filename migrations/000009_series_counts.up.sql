-- The number of series of each tenant, kept exact by triggers on app.series, so that ingest checks the
-- series limit without counting, and atomically: ingest locks the tenant's row before it creates series
-- (queries/series.sql, SeriesCountLock), so concurrent pushes — in one process or many — create a
-- tenant's new series one transaction at a time and never pass the limit together.
CREATE TABLE app.series_counts (
    tenant_id uuid   PRIMARY KEY REFERENCES app.tenants (id) ON DELETE CASCADE,
    series    bigint NOT NULL DEFAULT 0 CHECK (series >= 0)
);
INSERT INTO app.series_counts (tenant_id, series) SELECT tenant_id, count(*) FROM app.series GROUP BY tenant_id;
SELECT infrawatch.isolate_by_tenant('app.series_counts');
GRANT SELECT ON app.series_counts TO infrawatch_api;

CREATE FUNCTION app.count_series() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO app.series_counts AS c (tenant_id, series)
        SELECT tenant_id, count(*) FROM added GROUP BY tenant_id
        ON CONFLICT (tenant_id) DO UPDATE SET series = c.series + excluded.series;
    ELSE
        UPDATE app.series_counts c SET series = c.series - r.n
          FROM (SELECT tenant_id, count(*) AS n FROM removed GROUP BY tenant_id) r
         WHERE c.tenant_id = r.tenant_id;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER series_count_insert AFTER INSERT ON app.series REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION app.count_series();
CREATE TRIGGER series_count_delete AFTER DELETE ON app.series REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION app.count_series();
