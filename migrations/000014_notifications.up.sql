-- Delivery of notifications (the outbox of 000011): grouping settings of channels, leases and grouping
-- of the outbox rows, the record of every attempt, and the checks' secrets moved out of their settings so
-- that they can be kept sealed (AES-256-GCM under the deployment's key, internal/secrets).

-- How a channel groups the notifications of one alert rule (Alertmanager's group_wait and
-- group_interval): the first of a rule's notifications waits group_wait for others to go out with it;
-- after a message went, later ones wait until group_interval has passed since it.
ALTER TABLE app.channels
    ADD COLUMN group_wait_seconds     integer NOT NULL DEFAULT 30 CHECK (group_wait_seconds BETWEEN 0 AND 3600),
    ADD COLUMN group_interval_seconds integer NOT NULL DEFAULT 300 CHECK (group_interval_seconds BETWEEN 0 AND 86400);

-- rule_id is the alert rule of a notification, read from its payload (alerting writes rule.id there):
-- notifications of one rule and channel are sent together. NULL (a test message, a payload without a
-- rule) never groups.
CREATE FUNCTION app.notification_rule_id(payload jsonb) RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN jsonb_typeof(payload #> '{rule,id}') = 'number'
                     AND (payload #>> '{rule,id}')::numeric BETWEEN 1 AND 9223372036854775807
                THEN (payload #>> '{rule,id}')::numeric::bigint END
$$;
ALTER TABLE app.notifications
    ADD COLUMN rule_id bigint GENERATED ALWAYS AS (app.notification_rule_id(payload)) STORED,
    -- The notifier that holds the lease of a row in state sending; only it may record the outcome.
    ADD COLUMN lease_owner     text,
    -- When the latest attempt began: a rule's next message on the channel waits group_interval after it.
    ADD COLUMN last_attempt_at timestamptz,
    ADD UNIQUE (tenant_id, id);
-- The pending rows of a group, and the group's latest attempt.
CREATE INDEX notifications_group_idx ON app.notifications (channel_id, rule_id, last_attempt_at)
    WHERE rule_id IS NOT NULL;
-- The delivery log by channel.
CREATE INDEX notifications_channel_id_id_idx ON app.notifications (channel_id, id DESC);

-- When a notification of a rule is written, it is scheduled with its group: with the group's rows that
-- wait already (so they go out as one message), or else group_wait from now — but never sooner than
-- group_interval after the group's last message. Alerting inserts with the default next_attempt_at;
-- this keeps grouping a matter of delivery alone.
CREATE FUNCTION app.schedule_notification() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    rule             bigint := app.notification_rule_id(NEW.payload); -- NEW.rule_id is not computed yet
    wait_seconds     integer;
    interval_seconds integer;
    waiting          timestamptz;
    last_attempt     timestamptz;
BEGIN
    IF rule IS NULL OR NEW.kind = 'test' THEN
        RETURN NEW;
    END IF;
    SELECT c.group_wait_seconds, c.group_interval_seconds INTO wait_seconds, interval_seconds
      FROM app.channels c WHERE c.tenant_id = NEW.tenant_id AND c.id = NEW.channel_id;
    IF NOT FOUND THEN
        RETURN NEW; -- the foreign key refuses the row
    END IF;
    SELECT min(n.next_attempt_at) INTO waiting
      FROM app.notifications n
     WHERE n.channel_id = NEW.channel_id AND n.rule_id = rule AND n.state = 'pending' AND n.attempts = 0;
    IF waiting IS NOT NULL THEN
        NEW.next_attempt_at := waiting;
        RETURN NEW;
    END IF;
    SELECT max(n.last_attempt_at) INTO last_attempt
      FROM app.notifications n
     WHERE n.channel_id = NEW.channel_id AND n.rule_id = rule AND n.last_attempt_at IS NOT NULL;
    NEW.next_attempt_at := greatest(NEW.next_attempt_at + make_interval(secs => wait_seconds),
                                    last_attempt + make_interval(secs => interval_seconds));
    RETURN NEW;
END
$$;
CREATE TRIGGER notifications_schedule BEFORE INSERT ON app.notifications
    FOR EACH ROW EXECUTE FUNCTION app.schedule_notification();

-- Every attempt to send a notification: what the provider answered and how long it took. A message that
-- carries several notifications (a group) records one attempt for each of them.
CREATE TABLE app.notification_attempts (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       uuid        NOT NULL REFERENCES app.tenants (id) ON DELETE CASCADE,
    notification_id bigint      NOT NULL,
    attempt         integer     NOT NULL CHECK (attempt >= 1),
    started_at      timestamptz NOT NULL,
    duration_ms     integer     NOT NULL CHECK (duration_ms >= 0),
    -- sent; retry (a retryable failure: timeout, connection, 5xx, 429); failed (refused, or given up)
    outcome         text        NOT NULL CHECK (outcome IN ('sent', 'retry', 'failed')),
    status_code     integer,    -- the provider's HTTP status or SMTP reply code; NULL without an answer
    error           text        NOT NULL DEFAULT '' CHECK (length(error) <= 2048),
    -- The idempotency key the message carried: the lowest notification id of the message.
    message_key     bigint      NOT NULL,
    FOREIGN KEY (tenant_id, notification_id) REFERENCES app.notifications (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX notification_attempts_notification_id_idx ON app.notification_attempts (notification_id, attempt);
CREATE INDEX notification_attempts_tenant_id_idx ON app.notification_attempts (tenant_id);
SELECT infrawatch.isolate_by_tenant('app.notification_attempts');
GRANT SELECT ON app.notification_attempts TO infrawatch_api;

-- Checks' secrets leave their settings. A check's settings keep the mask ******** where a secret is
-- stored (the API answers settings as they are, and the names of HTTP headers stay visible); the
-- secrets themselves are a sealed JSON object in secrets. A migration cannot seal (it has no key), so
-- the secrets stored so far move to secrets_staging, in the clear, and every `infrawatch serve` seals
-- what it finds there before it starts its workers (also `infrawatch secrets rotate`); after that no
-- secret is left in the clear.
ALTER TABLE app.checks
    ADD COLUMN secrets         bytea, -- sealed JSON object of the secret settings; NULL when there are none
    ADD COLUMN secrets_staging jsonb CHECK (jsonb_typeof(secrets_staging) = 'object'); -- waiting to be sealed

-- SNMP: community, auth_password, priv_password. HTTP: body, and every value of headers. Empty values
-- hide nothing and stay in the settings.
WITH moved AS (
    SELECT c.id,
           jsonb_object_agg(s.key, s.value) AS secret,
           jsonb_object_agg(s.key, '"********"'::jsonb) AS masked
      FROM app.checks c, jsonb_each(c.settings) s
     WHERE ((c.kind = 'snmp' AND s.key IN ('community', 'auth_password', 'priv_password'))
            OR (c.kind = 'http' AND s.key = 'body'))
       AND s.value NOT IN ('""'::jsonb, 'null'::jsonb)
     GROUP BY c.id
)
UPDATE app.checks c
   SET secrets_staging = m.secret, settings = c.settings || m.masked
  FROM moved m
 WHERE c.id = m.id;

WITH headers AS (
    SELECT c.id,
           jsonb_object_agg(h.key, h.value) AS secret,
           jsonb_object_agg(h.key, '"********"'::jsonb) AS masked
      FROM app.checks c, jsonb_each(c.settings -> 'headers') h
     WHERE c.kind = 'http' AND jsonb_typeof(c.settings -> 'headers') = 'object'
       AND h.value NOT IN ('""'::jsonb, 'null'::jsonb)
     GROUP BY c.id
)
UPDATE app.checks c
   SET secrets_staging = coalesce(c.secrets_staging, '{}') || jsonb_build_object('headers', h.secret),
       settings = jsonb_set(c.settings, '{headers}', (c.settings -> 'headers') || h.masked)
  FROM headers h
 WHERE c.id = h.id;
