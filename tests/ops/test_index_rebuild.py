"""`convmem index rebuild` on the real stack: the embedded index deleted and rebuilt from
Postgres gives the same search results; an interrupted rebuild continues where it stopped;
the index serves its old generation until the new one is complete."""

from __future__ import annotations

import asyncio
import shutil
import signal
from pathlib import Path

import asyncpg
import pytest

from convmem.adapters.edge_folder import EdgeFolder
from convmem.adapters.edge_generations import ServingEdgeIndex
from convmem.adapters.embedder import OnnxEmbedder
from convmem.adapters.postgres import PostgresStorage
from tests.conftest import eventually
from tests.ops.support import CLI, Fresh, child_env, embed_history, record_history, search_results, users

pytestmark = pytest.mark.stack


async def cli(*args: str, env: dict[str, str], timeout: float = 150) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(*CLI, *args, env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_a_deleted_embedded_index_is_rebuilt_from_postgres_with_the_same_results(
        fresh: Fresh, tmp_path: Path, embedder: OnnxEmbedder) -> None:
    store = await PostgresStorage.connect(fresh.url, max_size=4)
    people, folder = users(6), tmp_path / "vectors"
    try:
        turns = await record_history(store, people, 40)
        index = ServingEdgeIndex.open(folder, embedder.name, embedder.dimension)
        await embed_history(turns, store, embedder, index)
        before = await search_results(store, index, embedder, people)
        await index.close()
        shutil.rmtree(folder)

        code, out, err = await cli("index", "rebuild", env=child_env(fresh.url, folder))
        assert code == 0, err
        assert f"{len(turns)} turn(s) embedded" in out and "now serving" in out
        assert "Traceback" not in err

        pointer = EdgeFolder(folder).pointer()
        assert pointer is not None and (pointer.model, pointer.dimension) == (embedder.name, embedder.dimension)
        index = ServingEdgeIndex.open(folder, embedder.name, embedder.dimension)
        try:
            assert await index.count() == len(turns)
            assert await search_results(store, index, embedder, people) == before
        finally:
            await index.close()
    finally:
        await store.close()
