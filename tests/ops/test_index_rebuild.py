"""`convmem index rebuild` on the real stack: the embedded index deleted and rebuilt from
Postgres gives the same search results; an interrupted rebuild continues where it stopped;
the index serves its old generation until the new one is complete."""

from __future__ import annotations

import asyncio
import shutil
import signal
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from contracts import OFFLINE_MODEL, ReplyGenerated
from convmem.adapters.edge_folder import EdgeFolder
from convmem.adapters.edge_generations import ServingEdgeIndex
from convmem.adapters.embedder import OnnxEmbedder
from convmem.adapters.postgres import PostgresStorage
from tests.conftest import eventually
from tests.ops.support import (
    CLI,
    TENANT,
    Fresh,
    child_env,
    cli,
    embed_history,
    record_history,
    search_results,
    users,
)

pytestmark = pytest.mark.stack


async def test_a_deleted_embedded_index_is_rebuilt_from_postgres_with_the_same_results(
        fresh: Fresh, tmp_path: Path, embedder: OnnxEmbedder) -> None:
    store = await PostgresStorage.connect(fresh.url, max_size=4)
    people, folder = users(6), tmp_path / "vectors"
    try:
        turns = await record_history(store, people, 40)
        # An offline-mode notice is not memory: the indexer gives it no vector, nor may a rebuild.
        notice = (await store.turns.record_turn(ReplyGenerated(
            tenant_id=TENANT, user_id=people[0], conversation_id=turns[0].conversation_id, message_id=uuid.uuid4(),
            in_reply_to=turns[0].message_id, text="[offline mode: ...] You said: My sister", model=OFFLINE_MODEL,
            occurred_at=datetime.now(UTC)))).turn
        index = ServingEdgeIndex.open(folder, embedder.name, embedder.dimension)
        await embed_history([*turns, notice], store, embedder, index)
        assert await index.count() == len(turns)
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
            assert await index.count() == len(turns) and await index.vectors([notice.message_id]) == {}
            assert await search_results(store, index, embedder, people) == before
        finally:
            await index.close()
    finally:
        await store.close()


async def progress(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(
            "SELECT coalesce(max(embedded), 0) FROM index_generations WHERE state <> 'serving'"))
    finally:
        await conn.close()


async def test_an_interrupted_rebuild_continues_where_it_stopped_and_serving_goes_on_meanwhile(
        fresh: Fresh, tmp_path: Path, embedder: OnnxEmbedder) -> None:
    store = await PostgresStorage.connect(fresh.url, max_size=4)
    people, folder = users(40), tmp_path / "vectors"
    env = child_env(fresh.url, folder)
    try:
        turns = await record_history(store, people, 60)
        index = ServingEdgeIndex.open(folder, embedder.name, embedder.dimension)
        await embed_history(turns, store, embedder, index)
        asked = people[:4]
        before = await search_results(store, index, embedder, asked)
        await index.close()

        # Ctrl-C in the middle: a clean stop, the progress kept.
        first = await asyncio.create_subprocess_exec(*CLI, "index", "rebuild", "--batch", "64", env=env,
                                                     stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        await eventually(lambda: _at_least(fresh.url, 256), timeout=90)
        # Meanwhile the serving generation is whole and answers as before.
        serving = ServingEdgeIndex.open(folder, embedder.name, embedder.dimension)
        assert serving.generation == "g1" and await serving.count() == len(turns)
        assert await search_results(store, serving, embedder, asked) == before
        await serving.close()
        first.send_signal(signal.SIGINT)
        _, interrupted = await asyncio.wait_for(first.communicate(), 60)
        assert first.returncode == 130
        assert "interrupted; run it again to continue" in interrupted.decode()
        assert "Traceback" not in interrupted.decode()
        stopped_at = await progress(fresh.url)
        assert 256 <= stopped_at < len(turns)

        # kill -9 in the middle of the continuation: the progress of every finished batch is kept.
        second = await asyncio.create_subprocess_exec(*CLI, "index", "rebuild", "--batch", "64", env=env,
                                                      stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        await eventually(lambda: _at_least(fresh.url, stopped_at + 256), timeout=90)
        second.kill()
        await second.wait()
        killed_at = await progress(fresh.url)
        assert stopped_at + 256 <= killed_at < len(turns)
        assert EdgeFolder(folder).pointer().generation == "g1"  # type: ignore[union-attr]

        code, out, err = await cli("index", "rebuild", env=env)
        assert code == 0, err
        assert f"continuing the rebuild of generation g2 ({killed_at} turns embedded before)" in err
        assert f"{len(turns) - killed_at} turn(s) embedded" in out and "now serving" in out
        assert f"continued after {killed_at} turn(s)" in out
        assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == ["g2"]  # the old generation removed
        index = ServingEdgeIndex.open(folder, embedder.name, embedder.dimension)
        try:
            assert index.generation == "g2" and await index.count() == len(turns)
            assert await search_results(store, index, embedder, asked) == before
        finally:
            await index.close()
        assert await progress(fresh.url) == 0  # nothing unfinished left
    finally:
        await store.close()


async def _at_least(url: str, n: int) -> bool:
    return await progress(url) >= n


async def test_what_changes_while_a_rebuild_runs_is_in_the_generation_it_switches_to(
        fresh: Fresh, tmp_path: Path, embedder: OnnxEmbedder) -> None:
    store = await PostgresStorage.connect(fresh.url, max_size=4)
    people, folder = users(40), tmp_path / "vectors"
    try:
        turns = await record_history(store, people, 60)
        rebuild = await asyncio.create_subprocess_exec(*CLI, "index", "rebuild", "--batch", "64",
                                                       env=child_env(fresh.url, folder),
                                                       stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        await eventually(lambda: _at_least(fresh.url, len(turns) // 2), timeout=120)
        conn = await asyncpg.connect(fresh.url)
        cursor = await conn.fetchval("SELECT cursor_id FROM index_generations WHERE state <> 'serving'")
        await conn.close()
        # An erasure of a user the scan has partly read, a deleted conversation, new turns.
        erased = people[0]
        assert any(t.message_id < cursor for t in turns if t.user_id == erased)
        request = uuid.uuid4()
        await store.privacy.request_erasure(request, "acme", erased, erased, datetime.now(UTC))
        await store.privacy.erase_subject(request, "acme", erased)
        dropped = next(t for t in turns if t.user_id == people[1] and t.message_id < cursor)
        await store.conversations.delete_conversation("acme", dropped.conversation_id)
        added = await record_history(store, ["newcomer"], 4, seed=9)
        out, err = await asyncio.wait_for(rebuild.communicate(), 120)
        assert rebuild.returncode == 0, err.decode()

        index = ServingEdgeIndex.open(folder, embedder.name, embedder.dimension)
        try:
            kept = {t.message_id for t in turns if t.user_id not in (erased, people[1])} | \
                   {t.message_id for t in added}
            gone = {t.message_id for t in turns if t.user_id in (erased, people[1])}
            assert set(await index.vectors([*kept, *gone])) == kept
            assert await index.count() == len(kept)
        finally:
            await index.close()
    finally:
        await store.close()
