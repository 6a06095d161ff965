"""Moving the index to another embedding model with `convmem index rebuild --model`: the new
generation records its model and dimension, a process configured with the old model refuses
to open it in one line, a running process on the old model is never switched under its
feet, and rebuilding with the old model again gives the old results back."""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from convmem.adapters.edge_folder import EdgeFolder
from convmem.adapters.edge_generations import ServingEdgeIndex
from convmem.adapters.embedder import OnnxEmbedder, OpenAIEmbedder
from convmem.adapters.postgres import PostgresStorage
from convmem.memory.retrieval import Retriever, Stages
from convmem.ports import MemoryScope
from tests.fake_embeddings import FakeEmbeddings
from tests.ops.support import CLI, TENANT, Fresh, child_env, record_history, search_results, users

pytestmark = pytest.mark.stack


@pytest.fixture
async def bow() -> AsyncIterator[FakeEmbeddings]:
    server = FakeEmbeddings(model="bow-64", dimension=64)
    await server.start()
    yield server
    await server.stop()


async def cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(*CLI, *args, env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 150)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_the_index_moves_to_another_model_and_back(fresh: Fresh, tmp_path: Path, embedder: OnnxEmbedder,
                                                         bow: FakeEmbeddings) -> None:
    store = await PostgresStorage.connect(fresh.url, max_size=4)
    people, folder = users(4), tmp_path / "vectors"
    env = child_env(fresh.url, folder)
    to_bow = {**env, "CONVMEM_EMBEDDING_BASE_URL": bow.base_url}
    try:
        turns = await record_history(store, people, 30)
        assert (await cli("index", "rebuild", env=env))[0] == 0
        serving = ServingEdgeIndex.open(folder, embedder.name, embedder.dimension)
        minilm = await search_results(store, serving, embedder, people)

        # A process on the old model serves the index: the new generation is built, not switched.
        code, out, err = await cli("index", "rebuild", "--model", "bow-64", "--dimension", "64", env=to_bow)
        assert code == 3 and "now serving" not in out
        assert (f"generation g2 holds bow-64 (64-d) vectors, but the running convmem process (pid {os.getpid()}) embeds "
                f"with {embedder.name} (384-d) and cannot take it over: stop it") in err
        assert EdgeFolder(folder).pointer().generation == "g1"  # type: ignore[union-attr]
        assert await search_results(store, serving, embedder, people) == minilm
        await serving.close()

        # Once it stopped, the same command switches (the embedding is done: it only catches up).
        code, out, err = await cli("index", "rebuild", "--model", "bow-64", "--dimension", "64", env=to_bow)
        assert code == 0, err
        assert "0 turn(s) embedded" in out and "now serving" in out and generations(folder) == ["g2"]
        pointer = EdgeFolder(folder).pointer()
        assert pointer is not None and (pointer.generation, pointer.model, pointer.dimension) == ("g2", "bow-64", 64)

        code, out, err = await cli("retention", "run", env=env)
        assert code == 3 and out == "" and len(err.strip().splitlines()) == 1
        assert (f"holds vectors of bow-64 (64-d) but this process embeds with {embedder.name} (384-d): run "
                f"`convmem index rebuild` to re-embed every turn with {embedder.name}") in err

        # The new model's vectors answer: its nearest turn is the one sharing the most words.
        model = OpenAIEmbedder(bow.base_url, "bow-64", None, 64)
        index = ServingEdgeIndex.open(folder, "bow-64", 64)
        try:
            user = people[0]
            mine = [t for t in turns if t.user_id == user]
            question = mine[0].text
            result = await Retriever(store.memory, index, model).search(
                question, MemoryScope(TENANT, user), 3, datetime.now(UTC), Stages.parse("vector", "none"))
            best = max(mine, key=lambda t: _cos(bow.vector(question), bow.vector(t.text)))
            assert result.hits[0].turn.message_id == best.message_id
        finally:
            await index.close()

        code, out, err = await cli("index", "rebuild", env=env)  # and back to the bundled model
        assert code == 0, err
        index = ServingEdgeIndex.open(folder, embedder.name, embedder.dimension)
        try:
            assert index.generation == "g3" and await search_results(store, index, embedder, people) == minilm
        finally:
            await index.close()
    finally:
        await store.close()


def generations(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir())


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (math.hypot(*a) * math.hypot(*b) or 1.0)
