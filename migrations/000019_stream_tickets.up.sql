-- Stream tickets: what a browser's EventSource, which cannot send an Authorization header, opens the live
-- stream with. POST /api/v1/stream/ticket makes one for the user of an access token; GET
-- /api/v1/stream?ticket= spends it. A ticket is short-lived (expires_at), single-use (used_at, set by the
-- one UPDATE that redeems it, so any API replica may take it and no two can), bound to its tenant and
-- user, and opens nothing but the stream. The secret is stored hashed, like every token.
CREATE TABLE app.stream_tickets (
    id                    bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id             uuid        NOT NULL REFERENCES app.tenants (id) ON DELETE CASCADE,
    user_id               uuid        NOT NULL REFERENCES app.users (id) ON DELETE CASCADE,
    secret_hash           bytea       NOT NULL UNIQUE,
    -- when the access token the ticket was made with expires: the stream ends there, as it would have
    credential_expires_at timestamptz NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    expires_at            timestamptz NOT NULL,
    used_at               timestamptz
);
-- Spent and expired tickets are deleted when their user asks for another (StreamTicketDeleteStale).
CREATE INDEX stream_tickets_user_id_idx ON app.stream_tickets (user_id);

SELECT infrawatch.isolate_by_tenant('app.stream_tickets');
-- Tickets are made and spent by system work (internal/auth); the API role only reads its tenant's.
GRANT SELECT ON app.stream_tickets TO infrawatch_api;
