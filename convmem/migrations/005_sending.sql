-- What the WhatsApp sender did with each part of a reply. Meta has no idempotency key, so a
-- part is claimed here ('sending') before the request and its outcome recorded after; a claim
-- left behind by a sender that stopped mid-request becomes 'unknown' and is never sent again.
CREATE TABLE reply_sends (
    message_id      uuid        NOT NULL,   -- the reply (ReplyGenerated.message_id)
    part            smallint    NOT NULL,   -- replies longer than the channel's limit go in parts
    parts           smallint    NOT NULL,
    tenant_id       text        NOT NULL,
    user_id         text        NOT NULL,
    conversation_id uuid        NOT NULL,
    state           text        NOT NULL
        CHECK (state IN ('sending', 'pending', 'sent', 'failed', 'unknown', 'skipped')),
    attempts        integer     NOT NULL DEFAULT 0,
    wamid           text,                   -- the channel's id of the sent message
    error_code      integer,
    error           text,
    claimed_at      timestamptz,
    sent_at         timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, part)
);
CREATE INDEX reply_sends_subject ON reply_sends (tenant_id, user_id);

-- Every data key served to a downstream consumer (GET /v1/keys/{key_id}): which, to whom, when.
CREATE TABLE key_disclosures (
    key_id     uuid        NOT NULL,
    tenant_id  text        NOT NULL,
    served_to  text        NOT NULL,
    served_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX key_disclosures_key ON key_disclosures (key_id, served_at);
