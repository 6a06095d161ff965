from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from convmem.adapters.postgres import PostgresStorage
from convmem.migrations import migrate
from tests.fake_graph import FakeGraph
from tests.services import Endpoints


@pytest.fixture(scope="session")
async def store(endpoints: Endpoints) -> AsyncIterator[PostgresStorage]:
    """Every storage port over the real database, one pool for the whole session."""
    await migrate(endpoints.database_url)
    s = await PostgresStorage.connect(endpoints.database_url)
    yield s
    await s.close()


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    """A stand-in for Meta's Graph API, speaking real HTTP, for one test."""
    g = FakeGraph()
    await g.start()
    yield g
    await g.stop()
