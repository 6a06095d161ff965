-- A producer's idempotency key (external id) is scoped to its tenant and user: two users of a
-- tenant sending the same key are two messages. Per tenant only, the second one was taken for
-- a retry of the first and dropped.
CREATE UNIQUE INDEX messages_external_user ON messages (tenant_id, user_id, external_id)
    WHERE external_id IS NOT NULL;
DROP INDEX messages_external;
