-- Stream tickets (POST /v1/stream-tickets): a browser's EventSource or WebSocket opens one
-- stream with a ticket in place of an Authorization header. Only the SHA-256 of a ticket is
-- kept; redeeming deletes the row, so a ticket opens at most one stream on any edge process.
CREATE TABLE stream_tickets (
    digest      bytea       PRIMARY KEY,
    tenant_id   text        NOT NULL,
    subject     text        NOT NULL,
    roles       text[]      NOT NULL,
    stream      text        NOT NULL,   -- conversation:<uuid> or user:<user id>
    expires_at  timestamptz NOT NULL
);
CREATE INDEX stream_tickets_expiry ON stream_tickets (expires_at);
