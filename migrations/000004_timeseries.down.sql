DROP VIEW api.logs;
DROP VIEW api.check_results;
DROP VIEW api.samples;
DELETE FROM infrawatch.time_partitioned
 WHERE table_name IN ('ts.samples'::regclass, 'ts.check_results'::regclass, 'ts.logs'::regclass);
DROP TABLE ts.logs;
DROP TABLE ts.check_results;
DROP TABLE ts.samples;
