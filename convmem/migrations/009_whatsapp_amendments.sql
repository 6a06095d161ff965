-- Edits and revokes of earlier messages (WhatsApp). Each is kept once (its id is derived from
-- the channel's id of the amendment) as the record of what changed and when; one that arrives
-- before the message it amends waits here (applied_at NULL) and is applied when the message
-- is recorded. No old wording is kept: an edit replaces it, a revoke takes the turn out.
CREATE TABLE message_amendments (
    id            uuid PRIMARY KEY,
    message_id    uuid        NOT NULL,
    tenant_id     text        NOT NULL,
    user_id       text        NOT NULL,
    kind          text        NOT NULL CHECK (kind IN ('edited', 'revoked')),
    external_id   text        NOT NULL,
    content       text        NOT NULL DEFAULT '',
    occurred_at   timestamptz NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    applied_at    timestamptz
);
CREATE INDEX message_amendments_waiting ON message_amendments (message_id) WHERE applied_at IS NULL;
CREATE INDEX message_amendments_owner ON message_amendments (tenant_id, user_id);

-- Other ids a WhatsApp user is known by after changing number or business-scoped id (a
-- `system` message): each alias names the convmem user id their history is kept under.
CREATE TABLE user_aliases (
    tenant_id   text        NOT NULL,
    alias       text        NOT NULL,
    user_id     text        NOT NULL,
    changed_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, alias)
);
CREATE INDEX user_aliases_user ON user_aliases (tenant_id, user_id);
