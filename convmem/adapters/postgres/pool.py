"""The one connection pool every Postgres port shares, and the one place where asyncpg's
errors become convmem's: an unavailable database is retryable, rejected input is poison."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import asyncpg
import orjson

from convmem.errors import PoisonError, RetryableError

T = TypeVar("T")

# Errors that mean "the database is not there right now", as opposed to "this input is bad".
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    # The client's own state after a connection broke mid-operation, e.g. "cannot switch to
    # state 12; another operation is in progress" while Postgres restarts (issue 20).
    asyncpg.InternalClientError,
    asyncpg.exceptions.OperatorInterventionError,  # shutdowns, crash recovery, cancelled statements
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections, disk full, out of memory
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
)


async def _reset_connection(conn: asyncpg.Connection) -> None:
    """What a connection needs on its way back to the pool. asyncpg's default runs a reset
    query (unlock, close, unlisten, reset) on every release, a round trip per query for
    state this code never leaves behind: no session settings, locks only at transaction
    level, no LISTEN, cursors only inside transactions. A transaction left open (a task
    cancelled mid-query) is still rolled back."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb in and out as Python values (orjson), not as strings, on every pooled connection.
    await conn.set_type_codec("jsonb", encoder=lambda v: orjson.dumps(v).decode(),
                              decoder=orjson.loads, schema="pg_catalog")


class PgPool:
    """An asyncpg pool whose connections translate errors on the way out."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def connect(cls, url: str, min_size: int = 1, max_size: int = 10) -> PgPool:
        try:
            pool = await asyncpg.create_pool(url, min_size=min_size, max_size=max_size,
                                             init=_init_connection, reset=_reset_connection, command_timeout=30)
        except _UNAVAILABLE as exc:
            raise RetryableError(f"postgres unavailable: {type(exc).__name__}") from exc
        return cls(pool)

    async def close(self) -> None:
        await self._pool.close()

    @asynccontextmanager
    async def conn(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection for a block that needs more than one call (a cursor, say);
        errors raised inside the block are translated too."""
        try:
            async with self._pool.acquire() as conn:
                yield conn
        except _UNAVAILABLE as exc:
            raise RetryableError(f"postgres unavailable: {type(exc).__name__}") from exc
        except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as exc:
            raise PoisonError(f"rejected by postgres: {type(exc).__name__}: {exc}") from exc

    async def run(self, fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """fn on a pooled connection: one statement, or a transaction fn opens itself."""
        async with self.conn() as conn:
            return await fn(conn)
