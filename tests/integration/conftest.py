from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from convmem.migrations import migrate
from convmem.store import PostgresStore
from tests.services import Endpoints


@pytest.fixture(scope="session")
async def store(endpoints: Endpoints) -> AsyncIterator[PostgresStore]:
    await migrate(endpoints.database_url)
    s = await PostgresStore.connect(endpoints.database_url)
    yield s
    await s.close()
