DROP VIEW infrawatch.storage_job_facts;
DROP FUNCTION IF EXISTS infrawatch.timescale_job_facts();
DROP FUNCTION infrawatch.compress_oldest_chunk(regclass, timestamptz);
DROP TABLE infrawatch.storage_jobs;
