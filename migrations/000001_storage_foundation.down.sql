DROP SCHEMA api CASCADE;
DROP SCHEMA ts CASCADE;
DROP SCHEMA app CASCADE;
DROP SCHEMA infrawatch CASCADE;

-- The roles infrawatch_api and infrawatch_bi, and the owner's membership in infrawatch_api, are
-- cluster-wide: other databases of the same cluster may use them at this very moment, so they stay.
-- So does the TimescaleDB extension. Dropping either is the operator's decision.
