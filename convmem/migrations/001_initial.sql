-- Conversations and their turns: the source of truth. The vector index is rebuilt from here.
CREATE TABLE conversations (
    id                uuid PRIMARY KEY,
    tenant_id         text        NOT NULL,
    user_id           text        NOT NULL,
    channel           text        NOT NULL,
    title             text,
    conversation_type text        NOT NULL DEFAULT 'general',
    status            text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived', 'deleted')),
    message_count     integer     NOT NULL DEFAULT 0,
    metadata          jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    last_message_at   timestamptz
);
CREATE INDEX conversations_owner_recent ON conversations (tenant_id, user_id, last_message_at DESC);

CREATE TABLE messages (
    id                 uuid PRIMARY KEY,
    tenant_id          text        NOT NULL,
    user_id            text        NOT NULL,
    conversation_id    uuid        NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq                integer     NOT NULL,
    role               text        NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
    channel            text        NOT NULL,
    content_type       text        NOT NULL DEFAULT 'text',
    content            text        NOT NULL,
    external_id        text,
    in_reply_to        uuid,
    reply_expected     boolean     NOT NULL DEFAULT false,
    occurred_at        timestamptz NOT NULL,
    recorded_at        timestamptz NOT NULL DEFAULT now(),
    metadata           jsonb       NOT NULL DEFAULT '{}'::jsonb,
    -- what the seeds ask to keep about each turn
    tools_used         text[],
    success            boolean,
    error_message      text,
    prompt_tokens      integer,
    completion_tokens  integer,
    latency_ms         integer,
    model              text,
    sources            uuid[],
    intent             text,
    intent_confidence  real,
    language           text,
    pii_scrubbed       boolean     NOT NULL DEFAULT false,
    pii_scrubbed_at    timestamptz,
    -- pipeline bookkeeping: when the TurnRecorded event went out, when the vector landed
    turn_published_at  timestamptz,
    embedded_at        timestamptz,
    deleted_at         timestamptz,
    UNIQUE (conversation_id, seq)
);
CREATE UNIQUE INDEX messages_external ON messages (tenant_id, external_id) WHERE external_id IS NOT NULL;
CREATE INDEX messages_owner_time ON messages (tenant_id, user_id, occurred_at DESC);
CREATE INDEX messages_occurred ON messages (occurred_at);
CREATE INDEX messages_not_embedded ON messages (recorded_at) WHERE embedded_at IS NULL AND deleted_at IS NULL;

-- One reply per user turn: the responder claims the turn here before publishing.
CREATE TABLE replies (
    in_reply_to   uuid PRIMARY KEY,
    tenant_id     text        NOT NULL,
    message_id    uuid        NOT NULL UNIQUE,
    event         jsonb       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);

-- Delivery states reported by a channel; Meta sends them at least once and out of order.
CREATE TABLE delivery_statuses (
    tenant_id     text        NOT NULL,
    external_id   text        NOT NULL,
    status        text        NOT NULL,
    occurred_at   timestamptz NOT NULL,
    errors        jsonb       NOT NULL DEFAULT '[]'::jsonb,
    PRIMARY KEY (tenant_id, external_id, status)
);
