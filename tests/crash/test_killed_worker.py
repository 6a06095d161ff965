"""Nothing lost, nothing doubled, tested by killing a real process: `convmem run all` runs as
a subprocess against the real Kafka and Postgres, is killed with SIGKILL while dozens of
turns are in flight with a slow model, and is started again. Every accepted message must
end with exactly one turn row, exactly one distinct reply, published and recorded once.

This directory runs before tests/e2e (pytest collects alphabetically), while no in-process
runtime of the suite is consuming: otherwise that runtime would answer these turns too and
the test could not tell recovery from help."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import asyncpg
import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import GroupCoordinatorNotAvailableError

from composition.roles import ROLES
from contracts import ReplyGenerated, topics
from tests.conftest import APP_SECRET, GROUP_PREFIX, JWT_SECRET, VERIFY_TOKEN, Tap, eventually, token
from tests.crash.child import Child
from tests.fake_llm import FakeLLM
from tests.services import Endpoints

pytestmark = pytest.mark.stack

CONVERSATIONS = 30
TURNS_EACH = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
async def slow_model() -> AsyncIterator[FakeLLM]:
    llm = FakeLLM(latency_s=1.0)
    await llm.start()
    yield llm
    await llm.stop()


async def suite_runtime_is_consuming(bootstrap: str) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        try:
            [response] = await admin.describe_consumer_groups([f"{GROUP_PREFIX}.responder"])
        except GroupCoordinatorNotAvailableError:
            return False  # a new broker has no group coordinator until a group first commits
        # (error code, group id, state, protocol type, protocol, members) per group
        return any(members for *_, members in response.groups)
    finally:
        await admin.close()


class Worker(Child):
    """`convmem run all` as a child process, with its own consumer groups and HTTP port."""

    def __init__(self, endpoints: Endpoints, model: FakeLLM, state: Path) -> None:
        self.port = free_port()
        prefix = f"crash-{uuid.uuid4().hex[:8]}"
        env = {
            **os.environ, "CONVMEM_KAFKA_BOOTSTRAP": endpoints.kafka_bootstrap,
            "CONVMEM_DATABASE_URL": endpoints.database_url, "CONVMEM_GROUP_PREFIX": prefix,
            "CONVMEM_LLM_BASE_URL": model.base_url, "CONVMEM_LLM_MODEL": "fake-gpt",
            "CONVMEM_VECTOR_PATH": str(state / "vectors"), "CONVMEM_JWT_SECRET": JWT_SECRET,
            "CONVMEM_WHATSAPP_APP_SECRET": APP_SECRET, "CONVMEM_WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
            "CONVMEM_SWEEP_INTERVAL_S": "86400", "CONVMEM_LOG_LEVEL": "WARNING",
        }
        super().__init__(ROLES, ["all", "--port", str(self.port)], env, state / "worker.log",
                         endpoints.kafka_bootstrap, prefix)

    async def start(self) -> None:
        await super().start()

        async def ready() -> bool:
            assert self.proc is not None
            if self.proc.returncode is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                async with httpx.AsyncClient() as client:
                    return (await client.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2)).status_code == 200
            except httpx.HTTPError:
                return False

        await eventually(ready, timeout=90, interval=0.3)


async def answered(db: asyncpg.Connection, ids: Sequence[uuid.UUID]) -> bool:
    """Every turn has a published reply and that reply is recorded as a turn."""
    done = await db.fetchval(
        """SELECT count(*) FROM replies r JOIN messages m ON m.in_reply_to = r.in_reply_to
           WHERE r.in_reply_to = ANY($1::uuid[]) AND r.published_at IS NOT NULL""", list(ids))
    return int(done) >= len(ids)


async def test_a_worker_killed_mid_flight_loses_and_doubles_nothing(
        endpoints: Endpoints, slow_model: FakeLLM, tap: Tap, tmp_path: Path) -> None:
    if await suite_runtime_is_consuming(endpoints.kafka_bootstrap):
        pytest.fail("the suite's in-process runtime is consuming: run tests/crash before tests/e2e")
    worker = Worker(endpoints, slow_model, tmp_path)
    db = await asyncpg.connect(endpoints.database_url)
    try:
        await worker.start()
        user = f"crash-{uuid.uuid4().hex[:8]}"
        accepted: list[uuid.UUID] = []
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{worker.port}", timeout=20) as api:
            async def conversation(i: int) -> None:
                conv: str | None = None
                for turn in range(TURNS_EACH):
                    body = {"user_id": user, "text": f"conversation {i}, turn {turn}: how are you?",
                            "external_id": f"{user}-{i}-{turn}", **({"conversation_id": conv} if conv else {})}
                    resp = await api.post("/v1/messages", json=body, headers=token(user))
                    assert resp.status_code == 202, resp.text
                    conv = resp.json()["conversation_id"]
                    accepted.append(uuid.UUID(resp.json()["message_id"]))

            await asyncio.gather(*(conversation(i) for i in range(CONVERSATIONS)))
        # Kill it while the model holds many answers in flight and few are out yet.
        await eventually(lambda: slow_model.in_flight >= 10, timeout=60, interval=0.05)
        await worker.kill()
        answered_before_kill = await db.fetchval(
            "SELECT count(*) FROM replies WHERE in_reply_to = ANY($1::uuid[]) AND published_at IS NOT NULL", accepted)
        assert answered_before_kill < len(accepted)  # the kill interrupted real work

        await worker.start()
        await eventually(lambda: answered(db, accepted), timeout=120, interval=0.5)

        turns = await db.fetch("SELECT id, count(*) OVER (PARTITION BY id) AS n FROM messages WHERE id = ANY($1::uuid[])",
                               accepted)
        assert len(turns) == len(accepted) and all(r["n"] == 1 for r in turns)  # one row per accepted message
        replies = await db.fetch("SELECT in_reply_to, published_at FROM replies WHERE in_reply_to = ANY($1::uuid[])",
                                 accepted)
        assert len(replies) == len(accepted) and all(r["published_at"] is not None for r in replies)
        recorded = await db.fetch("""SELECT in_reply_to, count(*) AS n FROM messages
                                     WHERE in_reply_to = ANY($1::uuid[]) GROUP BY in_reply_to""", accepted)
        assert len(recorded) == len(accepted) and all(r["n"] == 1 for r in recorded)  # each reply stored once

        # On the topic, copies of one reply (a re-publish after the crash) are allowed by
        # design; they must be the same reply: one distinct message id per turn.
        published: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
        for record in tap.on(topics.REPLIES):
            reply = ReplyGenerated.model_validate_json(record.value)
            if reply.in_reply_to in set(accepted):
                published[reply.in_reply_to].add(reply.message_id)
        assert set(published) == set(accepted) and all(len(ids) == 1 for ids in published.values())
    finally:
        await worker.stop()
        await db.close()
