"""Edits and revokes in Postgres: kept once in message_amendments, applied to their turn in the
transaction that keeps them, or, when the turn is not recorded yet, in the one that records it.

Both transactions take the same advisory lock on the amended message's id first, so an
amendment and its message arriving at once cannot miss each other (each would otherwise not
see the other's uncommitted row)."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from contracts import MessageAmended

# Media turns read "[image] caption": an edit replaces the caption, the marker stays.
_CAPTIONED = ("image", "video", "document")


async def lock(conn: asyncpg.Connection, message_id: UUID) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 19))", str(message_id))


async def keep(conn: asyncpg.Connection, amendment: MessageAmended) -> None:
    await conn.execute(
        """INSERT INTO message_amendments (id, message_id, tenant_id, user_id, kind, external_id, content, occurred_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING""",
        amendment.amendment_id, amendment.message_id, amendment.tenant_id, amendment.user_id, amendment.kind,
        amendment.external_id, amendment.text, amendment.occurred_at)


async def apply_waiting(conn: asyncpg.Connection, message_id: UUID, tenant_id: str, user_id: str) -> bool:
    """Apply the amendments of a recorded turn not applied yet, oldest first; True when the
    turn is revoked (now or before). Only its author's amendments count."""
    waiting = await conn.fetch(
        """SELECT id, kind, external_id, content, occurred_at FROM message_amendments
            WHERE message_id = $1 AND applied_at IS NULL AND tenant_id = $2 AND user_id = $3
            ORDER BY occurred_at, external_id""", message_id, tenant_id, user_id)
    for a in waiting:
        if a["kind"] == "revoked":
            # As a conversation delete does: out of every read, the vector dropped by the caller,
            # the row itself purged by retention later.
            await conn.execute(
                """UPDATE messages SET deleted_at = coalesce(deleted_at, now()), reply_expected = false,
                       metadata = metadata || jsonb_build_object('revoked', jsonb_build_object(
                           'external_id', $2::text, 'occurred_at', $3::timestamptz))
                   WHERE id = $1""", message_id, a["external_id"], a["occurred_at"])
            continue
        # The latest edit wins, whatever order they arrive in; a revoked turn stays revoked.
        await conn.execute(
            """UPDATE messages SET
                   content = CASE WHEN content_type = ANY($5::text[]) THEN '[' || content_type || '] ' || $2
                                  ELSE $2 END,
                   metadata = CASE WHEN metadata ? 'media'
                                   THEN jsonb_set(metadata, '{media,caption}', to_jsonb($2::text)) ELSE metadata END
                              || jsonb_build_object('edited', jsonb_build_object(
                                     'external_id', $3::text, 'occurred_at', $4::timestamptz,
                                     'count', coalesce((metadata -> 'edited' ->> 'count')::int, 0) + 1)),
                   embedded_at = NULL, pii_scrubbed = false, pii_scrubbed_at = NULL
               WHERE id = $1 AND deleted_at IS NULL
                 AND coalesce((metadata -> 'edited' ->> 'occurred_at')::timestamptz, '-infinity') <= $4""",
            message_id, a["content"], a["external_id"], a["occurred_at"], list(_CAPTIONED))
    if waiting:
        await conn.execute("UPDATE message_amendments SET applied_at = now() WHERE id = ANY($1::uuid[])",
                           [a["id"] for a in waiting])
    return bool(await conn.fetchval("SELECT deleted_at IS NOT NULL FROM messages WHERE id = $1", message_id))
