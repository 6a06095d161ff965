"""ReplayLog over Postgres: a dead letter's position is inserted in the same transaction
that waits for its replay to be acknowledged, so the row exists only for a replay that
was sent, and a second replayer of the same position waits on the row lock, then skips."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import asyncpg

from convmem.adapters.postgres.pool import PgPool
from convmem.ports import Position, ReplayLog


class _SendFailed(Exception):
    """Carries the send's own error past the pool, which would otherwise take a connection
    error of Kafka's for one of Postgres's."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class PgReplayLog(ReplayLog):
    def __init__(self, pool: PgPool) -> None:
        self._pool = pool

    async def replayed(self, positions: Sequence[Position]) -> set[Position]:
        if not positions:
            return set()
        rows = await self._pool.run(lambda c: c.fetch(
            """SELECT r.dlq_topic, r.dlq_partition, r.dlq_offset
               FROM unnest($1::text[], $2::int[], $3::bigint[]) AS p (topic, part, off)
               JOIN dead_letter_replays r
                 ON (r.dlq_topic, r.dlq_partition, r.dlq_offset) = (p.topic, p.part, p.off)""",
            [p.topic for p in positions], [p.partition for p in positions], [p.offset for p in positions]))
        return {Position(r["dlq_topic"], r["dlq_partition"], r["dlq_offset"]) for r in rows}

    async def replay_once(self, position: Position, group: str, send: Callable[[], Awaitable[None]]) -> bool:
        async def tx(c: asyncpg.Connection) -> bool:
            async with c.transaction():
                claimed = await c.fetchval(
                    """INSERT INTO dead_letter_replays (dlq_topic, dlq_partition, dlq_offset, consumer_group)
                       VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true""",
                    position.topic, position.partition, position.offset, group)
                if not claimed:
                    return False
                try:
                    await send()
                except Exception as exc:  # rolls the claim back: the replay can be tried again
                    raise _SendFailed(exc) from exc
                return True

        try:
            return await self._pool.run(tx)
        except _SendFailed as failed:
            raise failed.error from None
