DROP TRIGGER series_count_delete ON app.series;
DROP TRIGGER series_count_insert ON app.series;
DROP FUNCTION app.count_series();
DROP TABLE app.series_counts;
