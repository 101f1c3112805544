DROP TABLE app.report_runs;
DROP TABLE app.reports;
DROP FUNCTION app.sla_seconds(tstzmultirange);
DROP FUNCTION app.check_gaps_settled_to();
DROP TABLE infrawatch.check_gaps_settled;
DROP TABLE app.check_gaps;
DROP TABLE app.slos;
