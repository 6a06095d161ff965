-- Who said a turn, when the history names its speakers (two-person chats imported with
-- metadata.speaker): a question naming one of them prefers that person's turns, so the
-- retriever asks which of a question's words are speakers, by first name, case-blind.
CREATE INDEX messages_speaker ON messages (tenant_id, user_id, lower(split_part(metadata ->> 'speaker', ' ', 1)))
    WHERE metadata ? 'speaker';
