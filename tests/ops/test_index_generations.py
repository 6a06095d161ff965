"""Rebuilds that do not go through the CLI's embedded default: one tenant repaired in place
(the other tenants' points untouched), a Qdrant server's collection replaced by an alias
switch (qdrant-client's local mode runs the same client calls as against a server), and the
owner's periodic optimize of a copy."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from qdrant_client import AsyncQdrantClient

from composition.index_commands import run_rebuild
from composition.index_upkeep import EdgeUpkeep
from composition.resources import Resources
from convmem.adapters.edge_folder import EdgeFolder
from convmem.adapters.edge_generations import ServingEdgeIndex
from convmem.adapters.embedder import OnnxEmbedder
from convmem.adapters.postgres import PostgresStorage
from convmem.adapters.postgres.rebuild import PgIndexBuilds, PgTurnSource
from convmem.adapters.qdrant_generations import QdrantGenerations
from convmem.adapters.vectors import QdrantServerIndex
from convmem.errors import IndexUnavailable
from convmem.ports import MemoryScope, VectorPoint
from convmem.settings import VectorSettings, load
from services.indexer.rebuilding import Rebuild
from tests.ops.support import Fresh, embed_history, record_history, search_results, users
from tests.services import Endpoints

pytestmark = pytest.mark.stack


@pytest.fixture
async def store(fresh: Fresh) -> AsyncIterator[PostgresStorage]:
    s = await PostgresStorage.connect(fresh.url, max_size=4)
    yield s
    await s.close()


async def test_one_tenant_is_repaired_in_place_and_the_others_are_left_alone(
        endpoints: Endpoints, fresh: Fresh, store: PostgresStorage, tmp_path: Path, embedder: OnnxEmbedder) -> None:
    people, folder = users(3), tmp_path / "vectors"
    acme = await record_history(store, people, 20, tenant="acme")
    globex = await record_history(store, people, 20, seed=8, tenant="globex")
    index = ServingEdgeIndex.open(folder, embedder.name, embedder.dimension)
    await embed_history([*acme, *globex], store, embedder, index)
    expected = await search_results(store, index, embedder, people, tenant="acme")
    globex_vectors = await index.vectors([t.message_id for t in globex])

    # acme's points damaged: half of them lost, one left behind by a turn that is gone, and
    # one conversation deleted since (its turns must not stay in the index).
    lost = [t.message_id for t in acme[::2]]
    await index.delete(lost)
    stray = uuid.uuid4()
    await index.upsert([VectorPoint(stray, globex_vectors[globex[0].message_id],
                                    {"tenant_id": "acme", "user_id": people[0], "message_id": str(stray)})])
    gone = [t for t in acme if t.user_id == people[2]]
    await store.conversations.delete_conversation("acme", gone[0].conversation_id)

    settings = load(VectorSettings, kafka_bootstrap=endpoints.kafka_bootstrap, database_url=fresh.url,
                    vector_path=folder)
    with pytest.raises(IndexUnavailable, match=r"one-tenant rebuild writes into the generation it serves"):
        await run_rebuild("acme", settings=settings, quiet=True)  # this test's process serves the index
    await index.close()

    assert await run_rebuild("acme", settings=settings, quiet=True) == 0
    index = ServingEdgeIndex.open(folder, embedder.name, embedder.dimension)
    try:
        assert index.generation == "g1"  # in place
        live = [t.message_id for t in acme if t.user_id != people[2]]
        assert set(await index.vectors([*live, stray, *(t.message_id for t in gone)])) == set(live)
        assert await index.vectors([t.message_id for t in globex]) == globex_vectors
        after = await search_results(store, index, embedder, people[:2], tenant="acme")
        assert after == {k: v for k, v in expected.items() if k[1] != people[2]}
        assert await index.search([1.0] * embedder.dimension, MemoryScope("acme", people[2]), 5) == []
    finally:
        await index.close()


async def test_a_qdrant_collection_is_replaced_by_switching_its_alias(
        fresh: Fresh, store: PostgresStorage, embedder: OnnxEmbedder) -> None:
    people = users(3)
    turns = await record_history(store, people, 20)
    client = AsyncQdrantClient(location=":memory:")
    # A collection made before generations: a plain collection under the configured name.
    legacy = QdrantServerIndex(client, "turns", embedder.dimension)
    await embed_history(turns, store, embedder, legacy)
    expected = await search_results(store, legacy, embedder, people)

    generations = QdrantGenerations(client, "turns")
    builds = PgIndexBuilds(store.pool, fresh.url)
    rebuild = Rebuild(PgTurnSource(store.pool), builds, generations, embedder)
    serving = QdrantServerIndex(client, "turns", embedder.dimension, aliased=True)  # what every process uses
    for generation in ("g1", "g2"):
        report = await rebuild.run()
        assert (report.generation, report.embedded, report.switched) == (generation, len(turns), True)
        aliases = {a.alias_name: a.collection_name for a in (await client.get_aliases()).aliases}
        assert aliases == {"turns": f"turns__{generation}"}
        assert [c.name for c in (await client.get_collections()).collections] == [f"turns__{generation}"]
        assert await search_results(store, serving, embedder, people) == expected
    recorded = await builds.serving(generations.target)
    assert recorded is not None and (recorded.name, recorded.model) == ("g2", embedder.name)

    lost = [t.message_id for t in turns if t.user_id == people[0]]
    await serving.delete(lost)
    report = await rebuild.run(tenant_id="acme")  # a server takes writes from everyone: in place, no owner
    assert report.generation == "g2" and report.embedded == len(turns)
    assert set(await serving.vectors(lost)) == set(lost)
    await client.close()


async def test_the_owner_optimizes_a_copy_in_a_child_process_and_serves_that(
        endpoints: Endpoints, fresh: Fresh, store: PostgresStorage, tmp_path: Path) -> None:
    people = users(4)
    turns = await record_history(store, people, 30)
    settings = load(VectorSettings, kafka_bootstrap=endpoints.kafka_bootstrap, database_url=fresh.url,
                    vector_path=tmp_path / "vectors", index_optimize_interval_s=0.01, index_optimize_min_unindexed=0)
    res = Resources()
    await res.open_storage(fresh.url, max_size=4)
    res.open_vectors(settings)
    try:
        index = res.index
        assert isinstance(index, ServingEdgeIndex)
        await embed_history(turns, store, res.embedder, index)
        before = await search_results(store, index, res.embedder, people)
        upkeep = EdgeUpkeep(index, res, PgTurnSource(store.pool), settings)
        await asyncio.sleep(0.02)
        await upkeep.tick()  # the interval has passed: a copy is optimized by a child and taken over
        assert index.generation == "g2" and EdgeFolder(tmp_path / "vectors").generations() == ["g2"]
        _, points, _ = await index.shard.segments()
        assert points == len(turns)
        assert await search_results(store, index, res.embedder, people) == before
    finally:
        await res.close()
