"""The documented backup and restore, done for real: pg_dump of a database, createdb and
pg_restore into a fresh one on the same cluster, `convmem index rebuild` from the restored
database into a fresh index folder, and the same search results as before the backup."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg
import pytest

from convmem.adapters.edge_generations import ServingEdgeIndex
from convmem.adapters.embedder import OnnxEmbedder
from convmem.adapters.postgres import PostgresStorage
from convmem.devstack.stack import postgres_program
from tests.ops.support import (
    CLI,
    Fresh,
    child_env,
    database_url,
    drop_database,
    embed_history,
    record_history,
    search_results,
    users,
)
from tests.services import Endpoints

pytestmark = pytest.mark.stack


async def run(*argv: str, env: dict[str, str] | None = None) -> str:
    proc = await asyncio.create_subprocess_exec(*argv, env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 150)
    assert proc.returncode == 0, f"{argv[0]} failed: {err.decode()[-2000:]}"
    return out.decode()


async def counts(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        return {t: int(await conn.fetchval(f"SELECT count(*) FROM {t}"))  # noqa: S608 - table names from this test
                for t in ("conversations", "messages", "subject_keys", "schema_migrations")}
    finally:
        await conn.close()


async def test_a_restored_dump_with_a_rebuilt_index_finds_what_the_original_found(
        endpoints: Endpoints, fresh: Fresh, tmp_path: Path, embedder: OnnxEmbedder) -> None:
    store = await PostgresStorage.connect(fresh.url, max_size=4)
    people = users(5)
    try:
        turns = await record_history(store, people, 30)
        key_id, secret = await store.keys.subject_key("acme", people[0])  # what opens Kafka's sealed copies
        index = ServingEdgeIndex.open(tmp_path / "original", embedder.name, embedder.dimension)
        await embed_history(turns, store, embedder, index)
        expected = await search_results(store, index, embedder, people)
        await index.close()
    finally:
        await store.close()

    dump = tmp_path / "convmem.dump"
    await run(postgres_program("pg_dump"), "--format=custom", f"--file={dump}", f"--dbname={fresh.url}")
    restored = f"convmem_restored_{uuid.uuid4().hex[:8]}"
    await run(postgres_program("createdb"), f"--maintenance-db={endpoints.database_url}", restored)
    restored_url = database_url(fresh.url, restored)
    try:
        await run(postgres_program("pg_restore"), "--exit-on-error", "--no-owner", f"--dbname={restored_url}",
                  str(dump))
        assert await counts(restored_url) == await counts(fresh.url)

        folder = tmp_path / "rebuilt"
        out = await run(*CLI, "index", "rebuild", env=child_env(restored_url, folder))
        assert f"{len(turns)} turn(s) embedded" in out and "now serving" in out

        restored_store = await PostgresStorage.connect(restored_url, max_size=4)
        index = ServingEdgeIndex.open(folder, embedder.name, embedder.dimension)
        try:
            assert await index.count() == len(turns)
            assert await search_results(restored_store, index, embedder, people) == expected
            assert await restored_store.keys.key_by_id(key_id) == secret
        finally:
            await index.close()
            await restored_store.close()
    finally:
        await drop_database(endpoints.database_url, restored)
