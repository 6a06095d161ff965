from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from convmem.adapters.embedder import OnnxEmbedder
from convmem.migrations import migrate
from tests.ops.support import Fresh, create_database, drop_database
from tests.services import Endpoints


@pytest.fixture
async def fresh(endpoints: Endpoints) -> AsyncIterator[Fresh]:
    """A migrated database of this test's own on the stack's cluster, dropped afterwards."""
    db = await create_database(endpoints.database_url)
    await migrate(db.url)
    yield db
    await drop_database(endpoints.database_url, db.name)


@pytest.fixture(scope="session")
def embedder() -> OnnxEmbedder:
    return OnnxEmbedder(threads=2, remember=0)
