"""The storage ports over Postgres (asyncpg): one module per port, all sharing one pool.
PostgresStorage bundles them as a convmem.ports.Storage and owns the pool's lifetime."""

from __future__ import annotations

from dataclasses import dataclass

from convmem.adapters.postgres.aliases import PgUserAliases
from convmem.adapters.postgres.backlog import PgBacklog
from convmem.adapters.postgres.conversations import PgConversations
from convmem.adapters.postgres.deliveries import PgDeliveryLog
from convmem.adapters.postgres.embeddings import PgEmbeddingLedger
from convmem.adapters.postgres.health import PgHealth
from convmem.adapters.postgres.keys import PgSubjectKeys
from convmem.adapters.postgres.lookup import PgMessageLookup
from convmem.adapters.postgres.memory import PgMemoryReader
from convmem.adapters.postgres.policies import PgTenantPolicies
from convmem.adapters.postgres.pool import PgPool
from convmem.adapters.postgres.privacy import PgPrivacyLedger
from convmem.adapters.postgres.replays import PgReplayLog
from convmem.adapters.postgres.replies import PgReplyLedger
from convmem.adapters.postgres.retention import PgRetentionLedger
from convmem.adapters.postgres.rows import or_query
from convmem.adapters.postgres.sends import PgSendLedger
from convmem.adapters.postgres.tickets import PgStreamTickets
from convmem.adapters.postgres.turns import PgTurnLedger
from convmem.ports import Storage


@dataclass(frozen=True)
class PostgresStorage(Storage):
    """Every storage port over one pool. The pool is kept so that whoever connected can
    close it; the ports themselves are handed out one by one."""

    pool: PgPool

    @classmethod
    def over(cls, pool: PgPool) -> PostgresStorage:
        """Every port over an open pool."""
        return cls(
            turns=PgTurnLedger(pool), deliveries=PgDeliveryLog(pool), embeddings=PgEmbeddingLedger(pool),
            memory=PgMemoryReader(pool), replies=PgReplyLedger(pool), conversations=PgConversations(pool),
            lookup=PgMessageLookup(pool), keys=PgSubjectKeys(pool), privacy=PgPrivacyLedger(pool),
            policies=PgTenantPolicies(pool), retention=PgRetentionLedger(pool), health=PgHealth(pool),
            sends=PgSendLedger(pool), backlog=PgBacklog(pool), replays=PgReplayLog(pool),
            aliases=PgUserAliases(pool), tickets=PgStreamTickets(pool), pool=pool,
        )

    @classmethod
    async def connect(cls, url: str, min_size: int = 1, max_size: int = 10) -> PostgresStorage:
        """Open a pool (RetryableError when Postgres is not there) and every port over it."""
        return cls.over(await PgPool.connect(url, min_size=min_size, max_size=max_size))

    async def close(self) -> None:
        await self.pool.close()


__all__ = [
    "PgBacklog", "PgConversations", "PgDeliveryLog", "PgEmbeddingLedger", "PgHealth", "PgMemoryReader", "PgMessageLookup",
    "PgPool", "PgPrivacyLedger", "PgReplayLog", "PgReplyLedger", "PgRetentionLedger", "PgSendLedger", "PgStreamTickets", "PgSubjectKeys", "PgTenantPolicies",
    "PgTurnLedger", "PgUserAliases", "PostgresStorage", "or_query",
]
