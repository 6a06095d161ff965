-- Bursts as units: people write a fact over several short messages in a row ("Baked banana
-- bread today", "lol", "it came out so good"), so a question may match the burst and none of
-- its lines. A unit is consecutive turns of one speaker (metadata.speaker, else the role) at
-- most five minutes apart, at most eight of them; full text and vectors search it beside the
-- turns and a hit counts for its members (convmem.memory.retrieval, the `units` stage).
--
-- Units are derived from messages by triggers, so every writer of turns keeps them in step:
-- the recorder grows a unit as a burst grows (in its own transaction: a redelivered turn
-- inserts nothing, so it grows nothing); a member scrubbed, deleted, purged, erased or
-- revoked rewrites the unit's text from its live members. Every change bumps `version` and
-- clears `embedded_at`: the unit's vector is then out of date, and the indexer re-embeds it
-- or, once its text is empty, deletes its point and the row (services/indexer/units.py).
CREATE TABLE message_units (
    id              uuid        PRIMARY KEY,  -- the vector point's id, derived from the first member's
    tenant_id       text        NOT NULL,
    user_id         text        NOT NULL,
    conversation_id uuid        NOT NULL,
    first_seq       integer     NOT NULL,
    last_seq        integer     NOT NULL,
    speaker         text        NOT NULL,
    occurred_at     timestamptz NOT NULL,     -- the first member's time: time filters go by it
    last_at         timestamptz NOT NULL,
    members         uuid[]      NOT NULL,
    -- The live members' text, one per line; empty while the unit has fewer than two, so a
    -- lone turn is searched as a turn only and costs no second vector.
    content         text        NOT NULL DEFAULT '',
    search_tsv      tsvector GENERATED ALWAYS AS (to_tsvector('english', content)) STORED,
    version         integer     NOT NULL DEFAULT 1,
    changed_at      timestamptz NOT NULL DEFAULT now(),  -- what a rebuild built aside catches up by
    embedded_at     timestamptz
);
CREATE UNIQUE INDEX message_units_place ON message_units (conversation_id, last_seq);
CREATE INDEX message_units_first ON message_units (conversation_id, first_seq);
CREATE INDEX message_units_owner ON message_units (tenant_id, user_id, occurred_at);
CREATE INDEX message_units_search ON message_units USING gin (search_tsv) WHERE content <> '';
CREATE INDEX message_units_stale ON message_units (conversation_id) WHERE embedded_at IS NULL;
CREATE INDEX message_units_changed ON message_units (changed_at);

CREATE FUNCTION convmem_unit_text(conv uuid, lo integer, hi integer) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN count(*) >= 2 THEN string_agg(content, E'\n' ORDER BY seq) ELSE '' END
    FROM messages WHERE conversation_id = conv AND seq BETWEEN lo AND hi AND deleted_at IS NULL
$$;

-- One turn joins the unit its previous turn ends (same speaker, at most 300 s apart, fewer
-- than eight members) or starts its own.
CREATE FUNCTION convmem_unit_add(m messages) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    who text := coalesce(m.metadata ->> 'speaker', m.role);
    unit message_units%ROWTYPE;
BEGIN
    -- An offline-mode notice is not memory (rows.offline_notice): it belongs to no unit.
    IF m.role = 'assistant' AND m.model IS NOT DISTINCT FROM 'offline' THEN
        RETURN;
    END IF;
    SELECT * INTO unit FROM message_units WHERE conversation_id = m.conversation_id AND last_seq = m.seq - 1;
    IF FOUND AND unit.speaker = who AND cardinality(unit.members) < 8
            AND abs(extract(epoch FROM m.occurred_at - unit.last_at)) <= 300 THEN
        UPDATE message_units SET last_seq = m.seq, last_at = m.occurred_at, members = members || m.id,
               content = convmem_unit_text(conversation_id, first_seq, m.seq),
               version = version + 1, changed_at = now(), embedded_at = NULL
         WHERE id = unit.id;
    ELSE
        -- A lone turn's unit has no text and so no vector: nothing to embed yet.
        INSERT INTO message_units (id, tenant_id, user_id, conversation_id, first_seq, last_seq, speaker,
                                   occurred_at, last_at, members, embedded_at)
        VALUES (md5('unit:' || m.id::text)::uuid, m.tenant_id, m.user_id, m.conversation_id, m.seq, m.seq, who,
                m.occurred_at, m.occurred_at, ARRAY[m.id], now())
        ON CONFLICT DO NOTHING;
    END IF;
END $$;

CREATE FUNCTION convmem_units_grow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM convmem_unit_add(NEW);
    RETURN NULL;
END $$;

-- A member changed or went: the unit's text is rewritten from its live members and its
-- vector marked out of date.
CREATE FUNCTION convmem_units_refresh() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN  -- a lone turn's unit has no vector: it simply goes with it
        DELETE FROM message_units u WHERE u.conversation_id = OLD.conversation_id AND u.first_seq = OLD.seq
                                      AND cardinality(u.members) = 1;
    END IF;
    UPDATE message_units u SET content = convmem_unit_text(u.conversation_id, u.first_seq, u.last_seq),
           version = u.version + 1, changed_at = now(), embedded_at = NULL
     WHERE u.conversation_id = OLD.conversation_id AND OLD.seq BETWEEN u.first_seq AND u.last_seq
       AND cardinality(u.members) >= 2;
    RETURN NULL;
END $$;

CREATE TRIGGER messages_units_grow AFTER INSERT ON messages
    FOR EACH ROW EXECUTE FUNCTION convmem_units_grow();
CREATE TRIGGER messages_units_update AFTER UPDATE OF content, deleted_at ON messages
    FOR EACH ROW WHEN (OLD.content IS DISTINCT FROM NEW.content OR OLD.deleted_at IS DISTINCT FROM NEW.deleted_at)
    EXECUTE FUNCTION convmem_units_refresh();
CREATE TRIGGER messages_units_delete AFTER DELETE ON messages
    FOR EACH ROW EXECUTE FUNCTION convmem_units_refresh();

-- Turns stored before this migration form their units as if they had just arrived, in order.
DO $$
DECLARE m messages%ROWTYPE;
BEGIN
    FOR m IN SELECT * FROM messages ORDER BY conversation_id, seq LOOP
        PERFORM convmem_unit_add(m);
    END LOOP;
END $$;
