-- Alerting: rules as rows, the alerts they raise with their history, silences, maintenance windows,
-- and the parent of a check (dependencies). The alerter role evaluates rules set-based, one statement
-- per kind (queries/alert_rules.sql), and writes transitions, their events and the notifications of
-- the outbox (app.notifications, 000011) in one transaction per batch of rules (internal/alerting).

-- Dependencies: while a check's parent is down, the alerts about the check are suppressed.
ALTER TABLE app.checks
    ADD COLUMN parent_id bigint,
    ADD CONSTRAINT checks_parent_fkey FOREIGN KEY (tenant_id, parent_id) REFERENCES app.checks (tenant_id, id)
        ON DELETE SET NULL (parent_id),
    ADD CONSTRAINT checks_parent_not_self CHECK (parent_id <> id);

-- A rule. settings is what the user sent, validated by its kind; eval is what the evaluation statement
-- of the kind reads, compiled from settings by internal/alerting (regular expressions translated from
-- RE2 to PostgreSQL's syntax, durations in seconds, the tier to read). Rules are claimed like checks:
-- next_eval_at is the slot, the lease keeps a slot to one alerter.
CREATE TABLE app.alert_rules (
    id                  bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id           uuid        NOT NULL REFERENCES app.tenants (id) ON DELETE CASCADE,
    name                text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind                text        NOT NULL CHECK (kind IN ('threshold', 'absent', 'check', 'log')),
    severity            text        NOT NULL DEFAULT 'warning' CHECK (severity IN ('info', 'warning', 'critical')),
    labels              jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(labels) = 'object'),
    summary             text        NOT NULL DEFAULT '' CHECK (length(summary) <= 1024),
    description         text        NOT NULL DEFAULT '' CHECK (length(description) <= 8192),
    for_seconds         integer     NOT NULL DEFAULT 0 CHECK (for_seconds BETWEEN 0 AND 604800),
    interval_seconds    integer     NOT NULL DEFAULT 60 CHECK (interval_seconds BETWEEN 10 AND 86400),
    repeat_seconds      integer     NOT NULL DEFAULT 14400 CHECK (repeat_seconds BETWEEN 0 AND 2592000), -- 0: never
    flap_changes        integer     NOT NULL DEFAULT 6 CHECK (flap_changes BETWEEN 2 AND 1000),
    flap_window_seconds integer     NOT NULL DEFAULT 3600 CHECK (flap_window_seconds BETWEEN 60 AND 604800),
    enabled             boolean     NOT NULL DEFAULT true,
    channels            bigint[]    NOT NULL DEFAULT '{}',
    escalation          jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(escalation) = 'array'),
    settings            jsonb       NOT NULL CHECK (jsonb_typeof(settings) = 'object'),
    eval                jsonb       NOT NULL CHECK (jsonb_typeof(eval) = 'object'),
    next_eval_at        timestamptz NOT NULL DEFAULT now(),
    lease_owner         text,
    lease_expires_at    timestamptz,
    last_eval_at        timestamptz,
    last_eval_lag_ms    integer,    -- how long after its slot the last evaluation ran
    created_by          uuid        REFERENCES app.users (id) ON DELETE SET NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, name)
);
-- Claiming scans the due rules; a disabled rule is claimed too while it has open alerts, to close them.
CREATE INDEX alert_rules_due_idx ON app.alert_rules (next_eval_at);
SELECT infrawatch.isolate_by_tenant('app.alert_rules');
GRANT SELECT, INSERT, UPDATE, DELETE ON app.alert_rules TO infrawatch_api;

-- An alert: one per rule and thing (the fingerprint, a hash of the rule id and the identifying labels),
-- reopened rather than duplicated when the thing breaks again. The alerter owns every column but the
-- acknowledgement's, which the API sets.
CREATE TABLE app.alerts (
    id                bigint           GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id         uuid             NOT NULL REFERENCES app.tenants (id) ON DELETE CASCADE,
    rule_id           bigint           NOT NULL,
    fingerprint       text             NOT NULL,
    state             text             NOT NULL CHECK (state IN ('pending', 'firing', 'resolved', 'inactive', 'suppressed')),
    severity          text             NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    labels            jsonb            NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(labels) = 'object'),
    series_id         bigint,          -- what the alert is about, when it is a series, a host or a check
    host_id           bigint,
    check_id          bigint,
    value             double precision, -- at the last evaluation that changed the alert
    threshold         double precision,
    comparator        text,
    summary           text             NOT NULL DEFAULT '',
    description       text             NOT NULL DEFAULT '',
    active_since      timestamptz,     -- when the condition began to hold (pending)
    started_at        timestamptz,     -- when it began firing
    resolved_at       timestamptz,
    notified          boolean          NOT NULL DEFAULT false, -- the firing message of this episode is enqueued
    last_notified_at  timestamptz,     -- the last firing or repeat message
    escalated         integer          NOT NULL DEFAULT 0,     -- escalation steps enqueued in this episode
    flapping          boolean          NOT NULL DEFAULT false,
    changes           timestamptz[]    NOT NULL DEFAULT '{}',  -- changes into and out of firing within the flap window
    silenced_by       bigint[]         NOT NULL DEFAULT '{}',
    maintenance_by    bigint[]         NOT NULL DEFAULT '{}',
    suppressed_reason text             NOT NULL DEFAULT '',
    acked_at          timestamptz,
    acked_by          text,            -- who: user email, API key or client name
    ack_comment       text             NOT NULL DEFAULT '' CHECK (length(ack_comment) <= 1024),
    created_at        timestamptz      NOT NULL DEFAULT now(),
    updated_at        timestamptz      NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, rule_id) REFERENCES app.alert_rules (tenant_id, id) ON DELETE CASCADE,
    UNIQUE (rule_id, fingerprint),
    UNIQUE (tenant_id, id)
);
CREATE INDEX alerts_open_idx ON app.alerts (rule_id) WHERE state IN ('pending', 'firing', 'suppressed') OR flapping;
CREATE INDEX alerts_tenant_id_id_idx ON app.alerts (tenant_id, id DESC);
SELECT infrawatch.isolate_by_tenant('app.alerts');
GRANT SELECT ON app.alerts TO infrawatch_api;
GRANT UPDATE (acked_at, acked_by, ack_comment, updated_at) ON app.alerts TO infrawatch_api;

-- An alert's history: every change of state with the value at the time, acknowledgements, flapping.
CREATE TABLE app.alert_events (
    id         bigint           GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id  uuid             NOT NULL REFERENCES app.tenants (id) ON DELETE CASCADE,
    alert_id   bigint           NOT NULL,
    time       timestamptz      NOT NULL,
    kind       text             NOT NULL CHECK (kind IN ('state', 'ack', 'unack', 'flapping', 'settled')),
    from_state text,
    to_state   text,
    value      double precision,
    reason     text             NOT NULL DEFAULT '',
    actor      text             NOT NULL DEFAULT '',
    FOREIGN KEY (tenant_id, alert_id) REFERENCES app.alerts (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX alert_events_alert_id_id_idx ON app.alert_events (alert_id, id);
CREATE INDEX alert_events_tenant_id_id_idx ON app.alert_events (tenant_id, id);
SELECT infrawatch.isolate_by_tenant('app.alert_events');
GRANT SELECT, INSERT ON app.alert_events TO infrawatch_api;

-- Silences: alerts whose labels match every matcher between starts_at and ends_at change state but send
-- nothing. Expiring one sets ends_at, so that the history stays.
CREATE TABLE app.silences (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id  uuid        NOT NULL REFERENCES app.tenants (id) ON DELETE CASCADE,
    matchers   jsonb       NOT NULL CHECK (jsonb_typeof(matchers) = 'array' AND jsonb_array_length(matchers) > 0),
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL,
    comment    text        NOT NULL DEFAULT '' CHECK (length(comment) <= 1024),
    created_by text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at >= starts_at),
    UNIQUE (tenant_id, id)
);
CREATE INDEX silences_tenant_id_ends_at_idx ON app.silences (tenant_id, ends_at);
SELECT infrawatch.isolate_by_tenant('app.silences');
GRANT SELECT, INSERT, UPDATE, DELETE ON app.silences TO infrawatch_api;

-- Maintenance windows: hosts, checks and label matchers (any of them; none means every alert of the
-- tenant), one-off (starts_at to ends_at) or recurring (a cron spec and a duration in time_zone, from
-- starts_at until ends_at when set). matchers_sql holds the matchers compiled for SQL, as rules' eval.
-- Deleting a window marks it deleted: its past occurrences stay for the SLA reports.
CREATE TABLE app.maintenance_windows (
    id                 bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id          uuid        NOT NULL REFERENCES app.tenants (id) ON DELETE CASCADE,
    name               text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    comment            text        NOT NULL DEFAULT '' CHECK (length(comment) <= 1024),
    host_ids           bigint[]    NOT NULL DEFAULT '{}',
    check_ids          bigint[]    NOT NULL DEFAULT '{}',
    matchers           jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(matchers) = 'array'),
    matchers_sql       jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(matchers_sql) = 'array'),
    starts_at          timestamptz NOT NULL,
    ends_at            timestamptz,
    cron               text,
    duration_seconds   integer     CHECK (duration_seconds BETWEEN 60 AND 2678400),
    time_zone          text        NOT NULL DEFAULT 'UTC',
    materialized_until timestamptz, -- recurring: occurrences exist up to here
    deleted_at         timestamptz,
    created_by         text        NOT NULL DEFAULT '',
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK ((cron IS NULL) = (duration_seconds IS NULL)),
    CHECK (cron IS NOT NULL OR ends_at IS NOT NULL),
    CHECK (ends_at IS NULL OR ends_at > starts_at),
    UNIQUE (tenant_id, id)
);
CREATE INDEX maintenance_windows_recurring_idx ON app.maintenance_windows (materialized_until)
    WHERE cron IS NOT NULL AND deleted_at IS NULL;
SELECT infrawatch.isolate_by_tenant('app.maintenance_windows');
GRANT SELECT, INSERT, UPDATE, DELETE ON app.maintenance_windows TO infrawatch_api;

-- The time ranges each window covers: one row for a one-off window, one per occurrence of a recurring
-- one, materialized ahead for a horizon that the alerter extends. "Was X in maintenance at time T" is
-- one query over the GiST index (queries/maintenance_window.sql, MaintenanceWindowsCovering).
CREATE TABLE app.maintenance_occurrences (
    tenant_id uuid      NOT NULL REFERENCES app.tenants (id) ON DELETE CASCADE,
    window_id bigint    NOT NULL,
    during    tstzrange NOT NULL CHECK (NOT isempty(during) AND NOT lower_inf(during) AND NOT upper_inf(during)),
    FOREIGN KEY (tenant_id, window_id) REFERENCES app.maintenance_windows (tenant_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX maintenance_occurrences_window_start_key ON app.maintenance_occurrences (window_id, lower(during));
CREATE INDEX maintenance_occurrences_during_idx ON app.maintenance_occurrences USING gist (during);
SELECT infrawatch.isolate_by_tenant('app.maintenance_occurrences');
GRANT SELECT, INSERT, UPDATE, DELETE ON app.maintenance_occurrences TO infrawatch_api;

-- labels_match says whether labels (a JSON object of strings) match every matcher of a compiled list
-- [{"name", "op", "value"}]: op is =, !=, =~ or !~, and a regular expression's value is already in
-- PostgreSQL's syntax, anchored (internal/alerting translates RE2). A missing label is the empty string,
-- as in Prometheus. No matcher matches everything. In app, not infrawatch: tenants ask whether a thing
-- was in maintenance (MaintenanceWindowsCovering) as infrawatch_api, which may use app only.
CREATE FUNCTION app.labels_match(labels jsonb, matchers jsonb) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT coalesce(bool_and(CASE m->>'op'
                                 WHEN '=' THEN coalesce(labels->>(m->>'name'), '') = m->>'value'
                                 WHEN '!=' THEN coalesce(labels->>(m->>'name'), '') <> m->>'value'
                                 WHEN '=~' THEN coalesce(labels->>(m->>'name'), '') ~ (m->>'value')
                                 WHEN '!~' THEN coalesce(labels->>(m->>'name'), '') !~ (m->>'value')
                             END), true)
      FROM jsonb_array_elements(matchers) AS m
$$;

-- alert_compare applies a rule's comparator; NULL when the value is.
CREATE FUNCTION infrawatch.alert_compare(v double precision, op text, t double precision) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT CASE op WHEN '>' THEN v > t WHEN '>=' THEN v >= t WHEN '<' THEN v < t WHEN '<=' THEN v <= t
                   WHEN '==' THEN v = t WHEN '!=' THEN v <> t END
$$;

-- alert_fingerprint is the stable identity of an alert: its rule and identifying labels.
CREATE FUNCTION infrawatch.alert_fingerprint(rule_id bigint, identity jsonb) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT encode(sha256(convert_to(rule_id::text || ' ' || identity::text, 'UTF8')), 'hex') $$;

-- log_severity_rank orders log severities, debug lowest.
CREATE FUNCTION infrawatch.log_severity_rank(severity text) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT array_position(ARRAY['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'], severity) $$;

-- alert_series is the series of a tenant that a compiled selector {"metric", "host", "matchers"} picks:
-- by host first when one is named (the host's few series), by name otherwise.
CREATE FUNCTION infrawatch.alert_series(tenant uuid, sel jsonb) RETURNS SETOF app.series
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
    SELECT s.*
      FROM app.hosts h JOIN app.series s ON s.host_id = h.id
     WHERE sel->>'host' IS NOT NULL AND h.tenant_id = tenant AND h.name = sel->>'host'
       AND s.tenant_id = tenant AND s.name = sel->>'metric' AND app.labels_match(s.labels, sel->'matchers')
    UNION ALL
    SELECT s.*
      FROM app.series s
     WHERE sel->>'host' IS NULL
       AND s.tenant_id = tenant AND s.name = sel->>'metric' AND app.labels_match(s.labels, sel->'matchers')
$$;

-- Events are published through publish_events. A tenant's request publishes some (an alert acknowledged
-- through the API) as infrawatch_api, which may not read the channel's secret (migration 000013): the
-- function reads it as its owner, and when a tenant is set — a tenant's transaction — publishes only events
-- of that tenant, so the API role cannot put events into another tenant's stream.
CREATE FUNCTION app.publish_events(channel text, payloads text[]) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    tenant text := nullif(current_setting('infrawatch.tenant_id', true), '');
BEGIN
    IF tenant IS NOT NULL AND EXISTS (SELECT FROM unnest(payloads) AS p
                                       WHERE (p::jsonb ->> 'tenant_id') IS DISTINCT FROM tenant) THEN
        RAISE EXCEPTION 'an event of another tenant than the current one' USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM pg_notify(infrawatch.event_channel(channel), p) FROM unnest(payloads) AS p;
END
$$;
REVOKE ALL ON FUNCTION app.publish_events(text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.publish_events(text, text[]) TO infrawatch_api;
