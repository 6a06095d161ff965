"""SendLedger over Postgres: one row per reply part, claimed by the first sender to insert
it (or to take back a part given back after a retryable refusal); every outcome is an
UPDATE guarded by the state it leaves, so a late or repeated call changes nothing."""

from __future__ import annotations

import asyncpg

from convmem.adapters.postgres.pool import PgPool
from convmem.ports import ClaimOutcome, SendLedger, SendPart
from convmem.telemetry import metrics


class PgSendLedger(SendLedger):
    def __init__(self, pool: PgPool) -> None:
        self._pool = pool

    async def claim_send(self, part: SendPart, lease_s: float) -> ClaimOutcome:
        async def q(c: asyncpg.Connection) -> ClaimOutcome:
            claimed = await c.fetchval(
                """INSERT INTO reply_sends AS s (message_id, part, parts, tenant_id, user_id, conversation_id, state,
                                                 attempts, claimed_at)
                   VALUES ($1, $2, $3, $4, $5, $6, 'sending', 1, now())
                   ON CONFLICT (message_id, part) DO UPDATE
                       SET state = 'sending', attempts = s.attempts + 1, claimed_at = now(), updated_at = now()
                       WHERE s.state = 'pending'
                   RETURNING 1""",
                part.reply_id, part.part, part.parts, part.tenant_id, part.user_id, part.conversation_id)
            if claimed:
                return "claimed"
            # Someone holds it. A claim older than the lease was never recorded: its sender
            # stopped between the request and the record, and whether Meta got it is unknown.
            await c.execute(
                """UPDATE reply_sends SET state = 'unknown', updated_at = now()
                   WHERE message_id = $1 AND part = $2 AND state = 'sending'
                     AND claimed_at < now() - make_interval(secs => $3)""",
                part.reply_id, part.part, lease_s)
            state = await c.fetchval("SELECT state FROM reply_sends WHERE message_id = $1 AND part = $2",
                                     part.reply_id, part.part)
            return "busy" if state in ("sending", "pending") else state

        return await self._pool.run(q)

    async def _settle(self, part: SendPart, to: str, sql_set: str, *args: object,
                      from_states: tuple[str, ...] = ("sending",)) -> None:
        await self._pool.run(lambda c: c.execute(
            f"""UPDATE reply_sends SET state = $3, updated_at = now(){sql_set}
                WHERE message_id = $1 AND part = $2 AND state = ANY($4::text[])""",
            part.reply_id, part.part, to, list(from_states), *args))

    async def record_sent(self, part: SendPart, wamid: str) -> None:
        # From 'unknown' too: a sender that outlived its lease still knows what it sent.
        await self._settle(part, "sent", ", wamid = $5, sent_at = now(), error = NULL, error_code = NULL", wamid,
                           from_states=("sending", "unknown"))

    async def record_failed(self, part: SendPart, code: int, error: str) -> None:
        await self._settle(part, "failed", ", error_code = $5, error = $6", code, error[:1000])

    async def record_unknown(self, part: SendPart) -> None:
        await self._settle(part, "unknown", "")

    async def release_send(self, part: SendPart, error: str) -> None:
        await self._settle(part, "pending", ", error = $5", error[:1000])

    async def record_skipped(self, part: SendPart, reason: str) -> None:
        done = await self._pool.run(lambda c: c.execute(
            """INSERT INTO reply_sends (message_id, part, parts, tenant_id, user_id, conversation_id, state, error)
               VALUES ($1, $2, $3, $4, $5, $6, 'skipped', $7) ON CONFLICT (message_id, part) DO NOTHING""",
            part.reply_id, part.part, part.parts, part.tenant_id, part.user_id, part.conversation_id, reason[:1000]))
        if done == "INSERT 0 1":  # a redelivered reply skipped again is not counted twice
            metrics.send("skipped")
