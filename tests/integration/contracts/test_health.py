"""Health: a ping answers while the store is up; an unreachable database is retryable."""

from __future__ import annotations

import pytest

from convmem.adapters.postgres import PostgresStorage
from convmem.errors import RetryableError
from convmem.ports import Storage


async def test_a_store_that_is_up_answers_a_ping(storage: Storage) -> None:
    await storage.health.ping()


async def test_an_unreachable_database_is_retryable() -> None:
    with pytest.raises(RetryableError):  # nothing listens on port 1
        await PostgresStorage.connect("postgresql://convmem@127.0.0.1:1/convmem")
