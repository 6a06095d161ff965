-- Full-text search over turns. English stemming: the stemmer is harmless on other languages
-- and it lets "booked" find "booking". Generated, so no writer can forget it.
ALTER TABLE messages
    ADD COLUMN search_tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', content)) STORED;
CREATE INDEX messages_search ON messages USING gin (search_tsv);
CREATE INDEX messages_user_seq ON messages (tenant_id, user_id, conversation_id, seq);

-- Who set the title: the first message, the model, or a person (a person's title is never overwritten).
ALTER TABLE conversations
    ADD COLUMN title_source text NOT NULL DEFAULT 'first_message'
        CHECK (title_source IN ('first_message', 'model', 'user')),
    ADD COLUMN deleted_at timestamptz;
CREATE INDEX conversations_owner_created ON conversations (tenant_id, user_id, created_at DESC, id);
CREATE INDEX conversations_tenant_created ON conversations (tenant_id, created_at DESC, id);

-- Rolling summaries of long conversations: what the recent window no longer shows.
CREATE TABLE conversation_summaries (
    conversation_id uuid PRIMARY KEY REFERENCES conversations (id) ON DELETE CASCADE,
    tenant_id       text        NOT NULL,
    user_id         text        NOT NULL,
    summary         text        NOT NULL,
    through_seq     integer     NOT NULL,
    method          text        NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
