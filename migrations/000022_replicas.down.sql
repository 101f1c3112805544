DROP TABLE infrawatch.replicas;
