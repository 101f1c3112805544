-- Log search (GET /api/v1/logs): a trigram index for q= and a search function that can use it.
--
-- api.logs is a security_barrier view, so a condition a caller puts on it that is not leakproof, such as
-- message ILIKE '%…%', is applied above the barrier, after the rows are read: no index on the message
-- can serve it there. api.search_logs applies every condition of a search inside, with the current
-- tenant's filter, and plans each call for its own values (dynamic SQL), so the planner picks the
-- trigram index for a rare text and the (tenant_id, time) index, stopping after a page, for a common one.

-- pg_trgm is a trusted extension: the owning login may create it without being a superuser. It goes in
-- the infrawatch schema, which tenant-facing roles cannot use, unless the database has it already.
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA infrawatch;

-- The trigram index, on each partition (postgres flavor) or uncompressed chunk (timescale flavor; a
-- compressed chunk is read by its tenant segment). Built here over the logs already stored.
DO $$
BEGIN
    EXECUTE format('CREATE INDEX logs_message_trgm_idx ON ts.logs USING gin (message %I.gin_trgm_ops)',
                   (SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_trgm'));
END
$$;

-- search_logs answers the current tenant's log lines in [from_time, to_time), newest first, narrowed to
-- host_ids (NULL: any host; empty: none), severities (empty: any) and lines whose message contains the
-- text contains literally, ignoring case (NULL: any). Lines are in a total order — time, then every
-- other column — so that lines sharing a time keep their places between two calls: a page resumes
-- after skip lines of its first time, and only identical lines (which nobody can tell apart) tie.
-- SECURITY DEFINER: it reads ts.logs, which infrawatch_api cannot, and filters on the tenant itself.
CREATE FUNCTION api.search_logs(from_time timestamptz, to_time timestamptz, host_ids bigint[], severities text[],
                                contains text, skip integer, max_rows integer)
    RETURNS SETOF api.logs
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    RETURN QUERY EXECUTE
        $q$SELECT l.time, l.tenant_id, l.host_id, l.source, l.severity, l.message, l.attributes
             FROM ts.logs l
            WHERE l.tenant_id = (SELECT app.current_tenant_id())
              AND l.time >= $1 AND l.time < $2
              AND ($3 IS NULL OR l.host_id = ANY ($3))
              AND (cardinality($4) = 0 OR l.severity = ANY ($4))
              AND ($5 IS NULL OR l.message ILIKE '%' || replace(replace(replace($5, '\', '\\'), '%', '\%'), '_', '\_') || '%')
            ORDER BY l.time DESC, l.host_id, l.source, l.severity, l.message, l.attributes
           OFFSET $6 LIMIT $7$q$
        USING from_time, to_time, host_ids, severities, contains, skip, max_rows;
END
$$;
REVOKE ALL ON FUNCTION api.search_logs FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.search_logs TO infrawatch_api;
