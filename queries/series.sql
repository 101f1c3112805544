-- name: SeriesMatch :many
-- The current tenant's series that match every given filter (each optional: no ids, a NULL name, …
-- match all), by id, at most @max_rows of them, each row with the number that match in all.
SELECT s.id, s.name, h.name AS host, s.labels, count(*) OVER () AS matched
  FROM app.series s LEFT JOIN app.hosts h ON h.id = s.host_id
 WHERE (cardinality(@ids::bigint[]) = 0 OR s.id = ANY (@ids::bigint[]))
   AND (sqlc.narg(name)::text IS NULL OR s.name = sqlc.narg(name))
   AND (sqlc.narg(host)::text IS NULL OR h.name = sqlc.narg(host))
   AND (sqlc.narg(labels)::jsonb IS NULL OR s.labels @> sqlc.narg(labels)::jsonb)
 ORDER BY s.id
 LIMIT @max_rows;

-- name: SeriesSearch :many
-- One page of the current tenant's series after the cursor id, by exact name or name prefix, host name
-- and labels (each optional).
SELECT s.id, s.name, h.name AS host, s.labels
  FROM app.series s LEFT JOIN app.hosts h ON h.id = s.host_id
 WHERE s.id > @after_id
   AND (sqlc.narg(name)::text IS NULL OR s.name = sqlc.narg(name))
   AND (sqlc.narg(name_prefix)::text IS NULL OR starts_with(s.name, sqlc.narg(name_prefix)))
   AND (sqlc.narg(host)::text IS NULL OR h.name = sqlc.narg(host))
   AND (sqlc.narg(labels)::jsonb IS NULL OR s.labels @> sqlc.narg(labels)::jsonb)
 ORDER BY s.id
 LIMIT @max_rows;

-- name: SeriesLookup :many
-- System work (ingest): the ids of those of the given series of one tenant that exist.
WITH input AS (
    -- Set-returning functions side by side in a select list advance together (PostgreSQL 10 and later).
    SELECT unnest(@names::text[]) AS name, unnest(@labels::jsonb[]) AS labels
)
SELECT s.id, s.name, s.labels
  FROM app.series s JOIN input i ON s.name = i.name AND s.labels = i.labels
 WHERE s.tenant_id = @tenant_id::uuid;

-- name: SeriesCountLock :one
-- System work (ingest): the tenant's number of series, its row locked until the transaction ends. Ingest
-- takes it before SeriesCreate, so a tenant's new series are created one transaction at a time across
-- every process and the series limit holds. Creates the row of a tenant's first series.
INSERT INTO app.series_counts AS c (tenant_id) VALUES (@tenant_id)
ON CONFLICT (tenant_id) DO UPDATE SET series = c.series
RETURNING series;

-- name: SeriesCreate :many
-- System work (ingest), after SeriesCountLock in the same transaction: creates those of the given series
-- of one tenant that do not exist, at most @max_new of them in the order given, and returns every given
-- series that exists now, created marking the new ones.
WITH input AS (
    SELECT unnest(@names::text[]) AS name, unnest(@labels::jsonb[]) AS labels, unnest(@host_ids::bigint[]) AS host_id,
           generate_subscripts(@names::text[], 1) AS ord
), existing AS (
    SELECT s.id, s.name, s.labels
      FROM app.series s JOIN input i ON s.name = i.name AND s.labels = i.labels
     WHERE s.tenant_id = @tenant_id::uuid
), inserted AS (
    INSERT INTO app.series (tenant_id, host_id, name, labels)
    SELECT @tenant_id::uuid, nullif(i.host_id, 0), i.name, i.labels
      FROM input i
     WHERE NOT EXISTS (SELECT FROM existing e WHERE e.name = i.name AND e.labels = i.labels)
     ORDER BY i.ord
     LIMIT @max_new::bigint
    ON CONFLICT (tenant_id, name, labels) DO NOTHING
    RETURNING id, name, labels
)
SELECT id, name, labels, true AS created FROM inserted
UNION ALL
SELECT id, name, labels, false FROM existing;

-- name: SeriesList :many
-- The current tenant's series after the cursor id, optionally by name.
SELECT * FROM app.series
 WHERE id > @after_id AND (sqlc.narg(name)::text IS NULL OR name = sqlc.narg(name))
 ORDER BY id LIMIT @max_rows;

-- name: SeriesPromSelect :many
-- The current tenant's series that a PromQL selector may match, by id, at most @max_rows: by PromQL
-- name (the name with every '.' as '_'; exact names, or a LIKE pattern for a prefix) and a jsonpath
-- predicate over the labels, each optional (NULL matches all), and, when @since is given, only series
-- with a sample in [since, until]. The caller applies every matcher again exactly: what is pushed here
-- only narrows what is read.
SELECT s.id, s.name, s.labels
  FROM app.series s
 WHERE (sqlc.narg(prom_names)::text[] IS NULL OR replace(s.name, '.', '_') = ANY (sqlc.narg(prom_names)::text[]))
   AND (sqlc.narg(prom_name_like)::text IS NULL OR replace(s.name, '.', '_') LIKE sqlc.narg(prom_name_like)::text)
   AND (sqlc.narg(label_filter)::text IS NULL OR s.labels @@ sqlc.narg(label_filter)::text::jsonpath)
   AND (sqlc.narg(since)::timestamptz IS NULL
        OR EXISTS (SELECT FROM api.samples x
                    WHERE x.series_id = s.id AND x.time >= sqlc.narg(since)::timestamptz AND x.time <= @until::timestamptz))
 ORDER BY s.id
 LIMIT @max_rows;

-- name: SeriesPromNames :many
-- The PromQL names (every '.' as '_') of the current tenant's series, each once (the caller sorts them
-- bytewise), and, when @since is given, only of series with a sample in [since, until]; at most @max_rows.
SELECT DISTINCT replace(s.name, '.', '_') AS prom_name
  FROM app.series s
 WHERE sqlc.narg(since)::timestamptz IS NULL
    OR EXISTS (SELECT FROM api.samples x
                WHERE x.series_id = s.id AND x.time >= sqlc.narg(since)::timestamptz AND x.time <= @until::timestamptz)
 ORDER BY 1
 LIMIT @max_rows;

-- name: SeriesPromLabelNames :many
-- The label names of the current tenant's series (those with a non-empty value), each once (the caller
-- sorts them bytewise), and, when @since is given, only of series with a sample in [since, until]; at
-- most @max_rows.
SELECT DISTINCT l.key::text AS label_name
  FROM app.series s CROSS JOIN LATERAL jsonb_each_text(s.labels) AS l (key, value)
 WHERE l.value <> ''
   AND (sqlc.narg(since)::timestamptz IS NULL
        OR EXISTS (SELECT FROM api.samples x
                    WHERE x.series_id = s.id AND x.time >= sqlc.narg(since)::timestamptz AND x.time <= @until::timestamptz))
 ORDER BY 1
 LIMIT @max_rows;

-- name: SeriesPromLabelValues :many
-- The non-empty values of one label over the current tenant's series, each once (the caller sorts them
-- bytewise), and, when @since is given, only of series with a sample in [since, until]; at most @max_rows.
SELECT DISTINCT (s.labels ->> @label_name::text)::text AS label_value
  FROM app.series s
 WHERE s.labels ->> @label_name::text <> ''
   AND (sqlc.narg(since)::timestamptz IS NULL
        OR EXISTS (SELECT FROM api.samples x
                    WHERE x.series_id = s.id AND x.time >= sqlc.narg(since)::timestamptz AND x.time <= @until::timestamptz))
 ORDER BY 1
 LIMIT @max_rows;
