DROP FUNCTION api.search_logs;
DROP INDEX ts.logs_message_trgm_idx;
-- pg_trgm goes only if this migration made it (in the infrawatch schema); one the database had before stays.
DO $$
BEGIN
    IF (SELECT extnamespace FROM pg_extension WHERE extname = 'pg_trgm') = 'infrawatch'::regnamespace THEN
        DROP EXTENSION pg_trgm;
    END IF;
END
$$;
