-- The vector index's generations as rebuilds leave them: per index (an embedded folder or a
-- server collection alias) at most one serving generation, with the embedding model its
-- vectors come from, and at most one unfinished rebuild, which `convmem index rebuild` run
-- again continues from `cursor_id` instead of starting over.
CREATE TABLE index_generations (
    target      text        NOT NULL,
    generation  text        NOT NULL,
    model       text        NOT NULL,
    dimension   integer     NOT NULL,
    state       text        NOT NULL CHECK (state IN ('building', 'built', 'serving')),
    tenant_id   text,                     -- a one-tenant repair of the serving generation
    started_at  timestamptz NOT NULL DEFAULT now(),
    cursor_id   uuid,                     -- the last message id embedded (the scan goes in id order)
    embedded    bigint      NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX index_generations_serving ON index_generations (target) WHERE state = 'serving';
CREATE UNIQUE INDEX index_generations_unfinished ON index_generations (target) WHERE state <> 'serving';
-- Turns written while a rebuild runs are caught up by when they were recorded or scrubbed.
CREATE INDEX messages_recorded ON messages (recorded_at);
CREATE INDEX messages_scrubbed ON messages (pii_scrubbed_at) WHERE pii_scrubbed;
CREATE INDEX messages_deleted ON messages (deleted_at) WHERE deleted_at IS NOT NULL;
