-- SLA: objectives over checks (app.slos), the poller gaps the numbers count as unknown
-- (app.check_gaps, settled by the scheduler role), scheduled report definitions (app.reports) and one
-- run per report and period (app.report_runs), whose unique key makes one email per period. The numbers
-- themselves are one statement (queries/slos.sql, SloCheckNumbers) over app.check_events (status
-- changes: exact downtime), app.check_gaps, app.maintenance_occurrences (000015) and the tenant's time
-- zone (app.tenants.time_zone). README § SLA and reports explains them.

-- An objective: a target availability over a check, the checks of a host, or the checks of the hosts
-- whose labels contain host_labels; a period in the tenant's time zone; optional business hours
-- ({"days": [1..7 ISO weekdays], "start": "08:00", "end": "18:00"}, local time); whether maintenance
-- windows are left out of the measured time.
CREATE TABLE app.slos (
    id                  bigint           GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id           uuid             NOT NULL REFERENCES app.tenants (id) ON DELETE CASCADE,
    name                text             NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description         text             NOT NULL DEFAULT '' CHECK (length(description) <= 1024),
    target              double precision NOT NULL CHECK (target > 0 AND target <= 100),
    check_id            bigint,
    host_id             bigint,
    host_labels         jsonb            CHECK (host_labels IS NULL OR jsonb_typeof(host_labels) = 'object'),
    period              text             NOT NULL DEFAULT 'month' CHECK (period IN ('month', 'week', 'day', 'rolling')),
    rolling_days        integer          CHECK (rolling_days BETWEEN 1 AND 366),
    business_hours      jsonb            CHECK (business_hours IS NULL OR jsonb_typeof(business_hours) = 'object'),
    exclude_maintenance boolean          NOT NULL DEFAULT true,
    created_by          text             NOT NULL DEFAULT '',
    created_at          timestamptz      NOT NULL DEFAULT now(),
    updated_at          timestamptz      NOT NULL DEFAULT now(),
    CHECK (num_nonnulls(check_id, host_id, host_labels) = 1),
    CHECK ((period = 'rolling') = (rolling_days IS NOT NULL)),
    FOREIGN KEY (tenant_id, check_id) REFERENCES app.checks (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, host_id) REFERENCES app.hosts (tenant_id, id) ON DELETE CASCADE,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, name)
);
SELECT infrawatch.isolate_by_tenant('app.slos');
GRANT SELECT, INSERT, UPDATE, DELETE ON app.slos TO infrawatch_api;

-- Poller gaps: spans in which a check had no result vouching for its status. A result vouches for the
-- status it found from its time until the next result, for at most twice the check's interval (one
-- missed run is no gap); time not vouched for, from the check's creation on, is a gap. The scheduler
-- settles them from the raw results (CheckGapSettle) while those exist, up to settled_to below, so the
-- numbers of any range read a few rows instead of every result; the newer tail is computed from the
-- raw results at each read, with the same rule.
CREATE TABLE app.check_gaps (
    tenant_id uuid      NOT NULL REFERENCES app.tenants (id) ON DELETE CASCADE,
    check_id  bigint    NOT NULL,
    during    tstzrange NOT NULL CHECK (NOT isempty(during) AND NOT lower_inf(during) AND NOT upper_inf(during)),
    FOREIGN KEY (tenant_id, check_id) REFERENCES app.checks (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX check_gaps_check_id_upper_idx ON app.check_gaps (check_id, upper(during));
SELECT infrawatch.isolate_by_tenant('app.check_gaps');
GRANT SELECT ON app.check_gaps TO infrawatch_api;

-- How far app.check_gaps is complete, for every check: one row, moved by the scheduler under its lock.
CREATE TABLE infrawatch.check_gaps_settled (
    settled_to timestamptz NOT NULL DEFAULT '-infinity',
    singleton  boolean     NOT NULL DEFAULT true PRIMARY KEY CHECK (singleton)
);
INSERT INTO infrawatch.check_gaps_settled DEFAULT VALUES;

-- check_gaps_settled_to says how far app.check_gaps is complete; tenants' reads (infrawatch_api, which
-- may use app only) take stored gaps below it and compute the rest from raw results. It tells nothing of
-- any tenant.
CREATE FUNCTION app.check_gaps_settled_to() RETURNS timestamptz
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$ SELECT settled_to FROM infrawatch.check_gaps_settled $$;
REVOKE ALL ON FUNCTION app.check_gaps_settled_to() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.check_gaps_settled_to() TO infrawatch_api;

-- sla_seconds is the length of a multirange in seconds: every SLA figure is one.
CREATE FUNCTION app.sla_seconds(m tstzmultirange) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT coalesce(sum(extract(epoch FROM upper(r) - lower(r))), 0)::double precision FROM unnest(m) AS r $$;

-- A scheduled report: what it covers (SLOs, checks, hosts' checks, checks of hosts by labels), its
-- period (daily, weekly, monthly in the tenant's time zone), when it goes out (a cron spec in that zone;
-- the default, 07:00 on the first day after the period, is stored when none is given), to whom, with
-- which attachments and in which language. next_run_at is when the next period is due (the scheduler
-- enqueues a run then) and next_period that period's name.
CREATE TABLE app.reports (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   uuid        NOT NULL REFERENCES app.tenants (id) ON DELETE CASCADE,
    name        text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    slo_ids     bigint[]    NOT NULL DEFAULT '{}',
    check_ids   bigint[]    NOT NULL DEFAULT '{}',
    host_ids    bigint[]    NOT NULL DEFAULT '{}',
    host_labels jsonb       CHECK (host_labels IS NULL OR jsonb_typeof(host_labels) = 'object'),
    period      text        NOT NULL CHECK (period IN ('daily', 'weekly', 'monthly')),
    schedule    text        NOT NULL CHECK (length(schedule) BETWEEN 1 AND 200),
    recipients  text[]      NOT NULL CHECK (cardinality(recipients) BETWEEN 1 AND 50),
    formats     text[]      NOT NULL DEFAULT '{}' CHECK (formats <@ ARRAY['csv', 'pdf']),
    language    text        NOT NULL DEFAULT 'en' CHECK (language IN ('en', 'pt-BR')),
    enabled     boolean     NOT NULL DEFAULT true,
    next_run_at timestamptz NOT NULL,
    next_period text        NOT NULL,
    created_by  text        NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, name)
);
CREATE INDEX reports_due_idx ON app.reports (next_run_at) WHERE enabled;
SELECT infrawatch.isolate_by_tenant('app.reports');
GRANT SELECT, INSERT, UPDATE, DELETE ON app.reports TO infrawatch_api;

-- A report's run for one period: unique per (report, period), so that replicas and crashes make one
-- email per period. The scheduler claims due runs FOR UPDATE SKIP LOCKED under a lease (state sending;
-- a dead scheduler's run is claimed again when next_attempt_at, the lease's end, passes), sends, then
-- marks it sent. A crash between the send and the mark sends once more, with the same Message-ID
-- (message_id, from the run's id and generation); a send-now of a finished period is a new generation.
CREATE TABLE app.report_runs (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       uuid        NOT NULL REFERENCES app.tenants (id) ON DELETE CASCADE,
    report_id       bigint      NOT NULL,
    period          text        NOT NULL,
    period_start    timestamptz NOT NULL,
    period_end      timestamptz NOT NULL,
    manual          boolean     NOT NULL DEFAULT false,
    state           text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sending', 'sent', 'failed')),
    generation      integer     NOT NULL DEFAULT 1,
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_owner     text,
    lease_until     timestamptz,
    last_error      text        NOT NULL DEFAULT '',
    message_id      text        NOT NULL DEFAULT '',
    recipients      integer     NOT NULL DEFAULT 0,
    sent_at         timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (period_end > period_start),
    FOREIGN KEY (tenant_id, report_id) REFERENCES app.reports (tenant_id, id) ON DELETE CASCADE,
    UNIQUE (report_id, period)
);
CREATE INDEX report_runs_due_idx ON app.report_runs (next_attempt_at) WHERE state IN ('pending', 'sending');
CREATE INDEX report_runs_report_id_id_idx ON app.report_runs (report_id, id DESC);
SELECT infrawatch.isolate_by_tenant('app.report_runs');
GRANT SELECT, INSERT, UPDATE ON app.report_runs TO infrawatch_api;
