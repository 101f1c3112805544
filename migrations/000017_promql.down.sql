DROP INDEX app.series_prom_name_idx;
