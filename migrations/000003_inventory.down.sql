DROP TABLE app.series;
DROP TABLE app.checks;
DROP TABLE app.hosts;
