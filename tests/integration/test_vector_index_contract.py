"""One set of assertions, run against the fake, Qdrant Edge, and qdrant-client (local mode,
the same client code that talks to a Qdrant server)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from convmem.adapters.vectors import EdgeVectorIndex, QdrantServerIndex
from convmem.ports import MemoryScope, VectorIndex, VectorPoint
from tests.fakes import FakeIndex


@pytest.fixture(params=["fake", "edge", "qdrant-client"])
async def index(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[VectorIndex]:
    if request.param == "fake":
        ix: VectorIndex = FakeIndex()
    elif request.param == "edge":
        ix = EdgeVectorIndex(tmp_path / "edge", 4)
    else:
        from qdrant_client import AsyncQdrantClient

        ix = QdrantServerIndex(AsyncQdrantClient(location=":memory:"), "contract", 4)
    yield ix
    await ix.close()


def point(tenant: str, user: str, conv: uuid.UUID, vec: list[float], day: int = 1) -> VectorPoint:
    pid = uuid.uuid4()
    return VectorPoint(pid, vec, {"tenant_id": tenant, "user_id": user, "conversation_id": str(conv),
                                  "message_id": str(pid), "occurred_at": datetime(2026, 3, day, tzinfo=UTC).timestamp()})


async def test_search_is_scoped_ranked_idempotent_and_deletable(index: VectorIndex) -> None:
    c1, c2 = uuid.uuid4(), uuid.uuid4()
    near, far = point("t", "ana", c1, [1, 0, 0, 0]), point("t", "ana", c2, [0.6, 0.8, 0, 0])
    others = [point("t", "ben", c1, [1, 0, 0, 0]), point("t2", "ana", c1, [1, 0, 0, 0])]
    await index.upsert([near, far, *others])
    await index.upsert([near])  # a redelivery overwrites, it does not add

    hits = await index.search([1, 0, 0, 0], MemoryScope("t", "ana"), 10)
    assert [h.id for h in hits] == [near.id, far.id]
    assert hits[0].score == pytest.approx(1.0, abs=1e-3) and hits[0].payload["user_id"] == "ana"

    stored = await index.vectors([near.id, uuid.uuid4()])
    assert list(stored) == [near.id] and stored[near.id] == pytest.approx([1, 0, 0, 0], abs=1e-6)

    only_c2 = await index.search([1, 0, 0, 0], MemoryScope("t", "ana", c2), 10)
    assert [h.id for h in only_c2] == [far.id]

    march_2_on = MemoryScope("t", "ana", since=datetime(2026, 3, 2, tzinfo=UTC), until=datetime(2026, 4, 1, tzinfo=UTC))
    later = point("t", "ana", c1, [1, 0, 0, 0], day=5)
    await index.upsert([later])
    assert [h.id for h in await index.search([1, 0, 0, 0], march_2_on, 10)] == [later.id]
    await index.delete([later.id])

    await index.delete([near.id])
    assert [h.id for h in await index.search([1, 0, 0, 0], MemoryScope("t", "ana"), 10)] == [far.id]

    await index.delete_scope(MemoryScope("t", "ana"))  # erasure: everything of one subject
    assert await index.search([1, 0, 0, 0], MemoryScope("t", "ana"), 10) == []
    assert len(await index.search([1, 0, 0, 0], MemoryScope("t", "ben"), 10)) == 1


def test_a_scope_without_tenant_or_user_cannot_be_built() -> None:
    with pytest.raises(ValueError):
        MemoryScope("t", "")
