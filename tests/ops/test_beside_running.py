"""One-off commands while `convmem run all` serves the embedded index (a child process
here, as an operator would run it): `retention run` and a second worker refuse in one line
naming the process; `export` works, never opening the index; `index rebuild` builds a new
generation aside and the running process takes it over; `index optimize` is done by the
running process on a copy. Searches through its API answer the same throughout."""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from composition.roles import ROLES
from convmem.adapters.postgres import PostgresStorage
from tests.conftest import JWT_SECRET, eventually, token
from tests.crash.child import Child
from tests.ops.support import QUERIES, TENANT, Fresh, child_env, cli, record_history, users
from tests.services import Endpoints

pytestmark = pytest.mark.stack


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def searches(api: httpx.AsyncClient, people: list[str]) -> dict[tuple[str, str], list[str]]:
    found = {}
    for user in people:
        for q in QUERIES:
            resp = await api.get("/v1/search", params={"q": q, "k": 5}, headers=token(user, TENANT))
            assert resp.status_code == 200, resp.text
            found[(user, q)] = [h["message_id"] for h in resp.json()["hits"]]
    return found


def generations(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir())


async def test_one_off_commands_beside_a_running_process(endpoints: Endpoints, fresh: Fresh, tmp_path: Path) -> None:
    store = await PostgresStorage.connect(fresh.url, max_size=4)
    people, folder = users(4), tmp_path / "vectors"
    try:
        await record_history(store, people, 30)
    finally:
        await store.close()
    port, prefix = free_port(), f"beside-{uuid.uuid4().hex[:8]}"
    env = child_env(fresh.url, folder, CONVMEM_JWT_SECRET=JWT_SECRET, CONVMEM_GROUP_PREFIX=prefix,
                    CONVMEM_INDEX_WATCH_INTERVAL_S="0.3", CONVMEM_SWEEP_INTERVAL_S="86400")
    code, _, err = await cli("index", "rebuild", env=env)  # the first index, built while nothing runs
    assert code == 0, err

    worker = Child(ROLES, ["all", "--port", str(port)], {**env, "CONVMEM_LOG_LEVEL": "INFO"}, tmp_path / "worker.log",
                   endpoints.kafka_bootstrap, prefix)
    await worker.start()
    assert worker.proc is not None
    pid = worker.proc.pid
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as api:
            await eventually(lambda: _ready(api, worker), timeout=90, interval=0.3)
            before = await searches(api, people)
            assert any(before.values())

            code, out, err = await cli("retention", "run", env=env)
            assert code == 3 and out == ""
            assert err.strip() == (f"convmem retention: the embedded vector index in {folder} is held by a running "
                                   f"convmem process (pid {pid}); stop it, or run with CONVMEM_QDRANT_URL set to a "
                                   "Qdrant server")
            code, _, err = await cli("run", "indexer", env=env)
            assert code == 3 and f"held by a running convmem process (pid {pid})" in err
            assert "Traceback" not in err and len(err.strip().splitlines()) == 1

            code, out, err = await cli("export", "--tenant", TENANT, "--user", people[0], env=env)
            assert code == 0, err
            exported: dict[str, Any] = json.loads(out)
            assert len(exported["messages"]) == 30

            code, out, err = await cli("index", "rebuild", env=env)
            assert code == 0, err
            assert f"now serving (the running process, pid {pid}, takes it over)" in out
            await eventually(lambda: generations(folder) == ["g2"], timeout=30)
            assert '"event": "vector_index_switched"' in worker.log.read_text()
            assert await searches(api, people) == before

            # What it records now lands in the generation it serves now.
            said = await api.post("/v1/messages", headers=token("backend", TENANT, ("service",)), json={
                "user_id": people[0], "text": "My grandmother Ingrid turns ninety in Tallinn next week",
                "role": "user", "reply_expected": False})
            assert said.status_code == 202, said.text
            new_id = said.json()["message_id"]
            hits = await eventually(lambda: _found(api, people[0], "grandmother's birthday", new_id), timeout=60)
            assert hits

            code, out, err = await cli("index", "optimize", env=env)
            assert code == 0, err
            assert f"by the running process (pid {pid}), on a copy it now serves" in out
            await eventually(lambda: generations(folder) == ["g3"], timeout=30)
            after = await searches(api, people)
            assert after == await searches(api, people)
            assert {k: v for k, v in after.items() if k[0] != people[0]} == \
                   {k: v for k, v in before.items() if k[0] != people[0]}
            assert await _found(api, people[0], "grandmother's birthday", new_id)
    finally:
        await worker.stop()
    assert "Traceback" not in worker.log.read_text()


async def _ready(api: httpx.AsyncClient, worker: Child) -> bool:
    assert worker.proc is not None
    if worker.proc.returncode is not None:
        raise AssertionError(f"worker exited with {worker.proc.returncode}: {worker.log.read_text()[-2000:]}")
    try:
        return (await api.get("/readyz", timeout=2)).status_code == 200
    except httpx.HTTPError:
        return False


async def _found(api: httpx.AsyncClient, user: str, q: str, message_id: str) -> bool:
    resp = await api.get("/v1/search", params={"q": q, "k": 5, "mode": "vector"}, headers=token(user, TENANT))
    return message_id in [h["message_id"] for h in resp.json()["hits"]]
