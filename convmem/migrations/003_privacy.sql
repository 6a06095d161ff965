-- Per-subject data keys: message text travels through Kafka sealed with its user's key, so
-- destroying the key on erasure makes every copy in the event log unreadable (crypto-shredding).
CREATE TABLE subject_keys (
    key_id       uuid PRIMARY KEY,
    tenant_id    text        NOT NULL,
    user_id      text        NOT NULL,
    secret       bytea,                 -- NULL once destroyed
    created_at   timestamptz NOT NULL DEFAULT now(),
    destroyed_at timestamptz
);
CREATE UNIQUE INDEX subject_keys_live ON subject_keys (tenant_id, user_id) WHERE destroyed_at IS NULL;

-- Erasure requests (GDPR art. 17) and their outcome; no message content is kept here.
CREATE TABLE erasure_requests (
    request_id    uuid PRIMARY KEY,
    tenant_id     text        NOT NULL,
    user_id       text        NOT NULL,
    requested_by  text        NOT NULL,
    status        text        NOT NULL DEFAULT 'requested' CHECK (status IN ('requested', 'completed')),
    requested_at  timestamptz NOT NULL DEFAULT now(),
    completed_at  timestamptz,
    counts        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    announced_at  timestamptz
);
CREATE INDEX erasure_requests_subject ON erasure_requests (tenant_id, user_id, requested_at DESC);

-- Interaction summary per user, maintained in the transaction that records each turn.
CREATE TABLE user_summaries (
    tenant_id        text        NOT NULL,
    user_id          text        NOT NULL,
    conversations    integer     NOT NULL DEFAULT 0,
    messages         integer     NOT NULL DEFAULT 0,
    user_messages    integer     NOT NULL DEFAULT 0,
    first_at         timestamptz,
    last_at          timestamptz,
    languages        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    intents          jsonb       NOT NULL DEFAULT '{}'::jsonb,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id)
);

-- Privacy and retention policy per tenant; absent rows use the retention worker's defaults.
CREATE TABLE tenant_policies (
    tenant_id              text PRIMARY KEY,
    pii_mode               text    CHECK (pii_mode IN ('immediate', 'delayed', 'off')),
    pii_delay_hours        integer CHECK (pii_delay_hours >= 0),
    phone_region           text    CHECK (phone_region ~ '^[A-Z]{2}$'),
    message_retention_days integer CHECK (message_retention_days >= 1),
    summary_retention_days integer CHECK (summary_retention_days >= 1),
    updated_at             timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE messages ADD COLUMN pii_kinds jsonb;
CREATE INDEX messages_pii_pending ON messages (recorded_at) WHERE pii_scrubbed_at IS NULL AND deleted_at IS NULL;
