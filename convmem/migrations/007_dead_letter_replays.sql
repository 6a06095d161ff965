-- Dead letters replayed by `convmem dlq replay`, one row per dead-letter position: replaying
-- the same selection again finds its positions here and sends nothing.
CREATE TABLE dead_letter_replays (
    dlq_topic       text        NOT NULL,
    dlq_partition   integer     NOT NULL,
    dlq_offset      bigint      NOT NULL,
    consumer_group  text        NOT NULL,   -- the group it was replayed for (the one that failed it)
    replayed_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dlq_topic, dlq_partition, dlq_offset)
);

-- `convmem status` counts the user turns still waiting for a reply; this keeps that count to
-- the turns that expect one instead of every message.
CREATE INDEX messages_reply_expected ON messages (recorded_at)
    WHERE reply_expected AND role = 'user' AND deleted_at IS NULL;
