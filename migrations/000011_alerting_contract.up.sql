-- The contract between alerting and notification delivery: the channels a tenant sends to, and the
-- outbox of notifications the alert engine enqueues in the transaction of each alert transition and the
-- notifiers deliver. Delivery details (000014) and alert rules and alerts (000015) build on these.

-- A place a tenant's notifications go: an email list, a Slack or Teams webhook, a Telegram chat, …
-- settings hold what may be shown; secrets (tokens, webhook URLs that embed a secret, passwords) are kept
-- sealed (AES-256-GCM with a deployment key) and never answered by the API.
CREATE TABLE app.channels (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id  uuid        NOT NULL REFERENCES app.tenants (id) ON DELETE CASCADE,
    name       text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind       text        NOT NULL CHECK (kind IN ('email', 'slack', 'telegram', 'webhook', 'teams', 'discord',
                                                    'pagerduty')),
    settings   jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(settings) = 'object'),
    secrets    bytea,      -- sealed JSON object of the secret settings; NULL when the kind has none
    enabled    boolean     NOT NULL DEFAULT true,
    created_by uuid        REFERENCES app.users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, name)
);
SELECT infrawatch.isolate_by_tenant('app.channels');
GRANT SELECT, INSERT, UPDATE, DELETE ON app.channels TO infrawatch_api;

-- The outbox. One row per (alert transition or repeat, channel), written in the transaction that changes
-- the alert; a notifier claims pending rows with a lease (FOR UPDATE SKIP LOCKED), sends, and records the
-- outcome. The row's id is the idempotency key every send carries, so a resend after a crash is
-- recognisable. payload holds everything a message needs, so delivery never reads the alert again.
CREATE TABLE app.notifications (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       uuid        NOT NULL REFERENCES app.tenants (id) ON DELETE CASCADE,
    alert_id        bigint,     -- NULL for a channel's test message
    channel_id      bigint      NOT NULL,
    kind            text        NOT NULL CHECK (kind IN ('firing', 'resolved', 'repeat', 'flapping', 'escalation',
                                                         'test')),
    payload         jsonb       NOT NULL CHECK (jsonb_typeof(payload) = 'object'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    state           text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sending', 'sent', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz,
    last_error      text        NOT NULL DEFAULT '',
    sent_at         timestamptz,
    FOREIGN KEY (tenant_id, channel_id) REFERENCES app.channels (tenant_id, id) ON DELETE CASCADE
);
-- Claiming: the due rows of the states a notifier works on.
CREATE INDEX notifications_due_idx ON app.notifications (next_attempt_at) WHERE state IN ('pending', 'sending');
CREATE INDEX notifications_tenant_id_id_idx ON app.notifications (tenant_id, id DESC);
CREATE INDEX notifications_alert_id_idx ON app.notifications (alert_id) WHERE alert_id IS NOT NULL;
SELECT infrawatch.isolate_by_tenant('app.notifications');
GRANT SELECT ON app.notifications TO infrawatch_api;
