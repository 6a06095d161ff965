-- The browser console's sign-in sessions (the cookie's value is never stored, only its
-- SHA-256) and the record of what was done through it: who, what, about whom, when.
CREATE TABLE console_sessions (
    token_hash  text PRIMARY KEY,
    tenant_id   text        NOT NULL,
    subject     text        NOT NULL,
    roles       text[]      NOT NULL,
    csrf        text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);

CREATE TABLE console_actions (
    id          bigserial   PRIMARY KEY,
    tenant_id   text        NOT NULL,
    actor       text        NOT NULL,
    action      text        NOT NULL,
    subject     text,
    at          timestamptz NOT NULL DEFAULT now(),
    detail      jsonb       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX console_actions_recent ON console_actions (tenant_id, at DESC);
