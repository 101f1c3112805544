DROP TABLE app.ingest_usage;
ALTER TABLE app.tenants DROP COLUMN max_heavy_reads, DROP COLUMN max_streams;
