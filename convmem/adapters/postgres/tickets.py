"""StreamTickets over Postgres: one row per live ticket, keyed by its digest. Redeeming is a
DELETE ... RETURNING, so of two processes redeeming one ticket at once exactly one gets it.
Expiry is read from the database's clock, the one clock every edge process shares. Issuing
also clears tickets that expired unused (by their index, a few rows at most)."""

from __future__ import annotations

from convmem.adapters.postgres.pool import PgPool
from convmem.ports import StreamTickets, TicketGrant

_PURGE_AFTER_S = 60  # expired tickets linger this long at most (each issue clears them)


class PgStreamTickets(StreamTickets):
    def __init__(self, pool: PgPool) -> None:
        self._pool = pool

    async def issue_ticket(self, digest: bytes, grant: TicketGrant, ttl_s: float) -> None:
        await self._pool.run(lambda c: c.execute(
            """WITH purged AS (DELETE FROM stream_tickets
                               WHERE expires_at < now() - make_interval(secs => $7))
               INSERT INTO stream_tickets (digest, tenant_id, subject, roles, stream, expires_at)
               VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))""",
            digest, grant.tenant_id, grant.subject, list(grant.roles), grant.stream, float(ttl_s),
            float(_PURGE_AFTER_S)))

    async def redeem_ticket(self, digest: bytes, stream: str) -> TicketGrant | None:
        row = await self._pool.run(lambda c: c.fetchrow(
            """DELETE FROM stream_tickets WHERE digest = $1 AND stream = $2 AND expires_at > now()
               RETURNING tenant_id, subject, roles, stream""", digest, stream))
        if row is None:
            return None
        return TicketGrant(row["subject"], row["tenant_id"], tuple(row["roles"]), row["stream"])
