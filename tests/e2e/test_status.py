"""`convmem status` on the real stack: its figures move with the system. Lag grows while a
deployment's recorder is stopped and falls once it runs; a dead letter grows its topic;
turns recorded and never announced wait to be embedded and answered until they are."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from composition.roles import ROLES, consumer_groups
from composition.runtime import Runtime
from contracts import MessageReceived, topics
from convmem.adapters.postgres import PostgresStorage
from convmem.delivery.provisioning import start_groups_at_end
from convmem.settings import IndexerSettings, load
from tests.conftest import GROUP_PREFIX, eventually, unique
from tests.e2e.conftest import Cli
from tests.services import Endpoints

pytestmark = pytest.mark.stack


def group(status: dict[str, Any], name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [g for g in status["consumer_groups"] if g["group"] == name]
    assert len(found) == 1, name
    return found[0]


def said(tenant: str, user: str, text: str, reply_expected: bool = False) -> MessageReceived:
    return MessageReceived(tenant_id=tenant, user_id=user, conversation_id=uuid.uuid4(), message_id=uuid.uuid4(),
                           text=text, occurred_at=datetime.now(UTC), reply_expected=reply_expected)


async def test_lag_and_unrecorded_turns_grow_while_a_recorder_is_stopped_and_fall_when_it_runs(
        runtime: Runtime, producer: AIOKafkaProducer, cli: Cli, endpoints: Endpoints, tmp_path: Path) -> None:
    # Another deployment's consumer groups, positioned at the end of the topics: its workers
    # are stopped, so what arrives from now on waits for them.
    prefix = f"{GROUP_PREFIX}-stopped"
    await start_groups_at_end(endpoints.kafka_bootstrap, consumer_groups(ROLES, prefix))
    recorder = f"{prefix}.indexer.record-inbound"
    before = await cli.json("status", "--prefix", prefix)
    assert group(before, recorder)["lag"] == 0 and before["backlog"]["unrecorded"]["count"] == 0
    assert all(p["committed"] is not None for p in group(before, recorder)["partitions"])

    tenant = unique("t")
    for i in range(3):
        event = said(tenant, unique("u"), f"waiting {i}")
        await producer.send_and_wait(topics.INBOUND, event.model_dump_json().encode(), key=event.key)
    await asyncio.sleep(0.5)
    stopped = await cli.json("status", "--prefix", prefix)
    assert group(stopped, recorder)["lag"] == 3
    # Every group of the deployment is there, the ones behind the lagging one too.
    assert {(g["group"], g["topic"]) for g in stopped["consumer_groups"]} == set(consumer_groups(ROLES, prefix))
    unrecorded = stopped["backlog"]["unrecorded"]
    assert unrecorded["count"] == 3 and unrecorded["oldest_age_s"] >= 0.5 and recorder in unrecorded["source"]
    pending = [p for p in group(stopped, recorder)["partitions"] if p["lag"]]
    assert pending and all(p["oldest_pending_at"] is not None and p["end"] - p["committed"] == p["lag"] for p in pending)
    # Nothing consumes as this deployment's groups (its sender too, as with no WhatsApp token).
    sender = f"{prefix}.sender"
    assert (group(stopped, recorder)["members"], group(stopped, recorder)["running"]) == (0, False)
    assert group(stopped, sender)["running"] is False

    # The table, from the installed entry point.
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "composition.cli", "status", "--prefix", prefix, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "CONVMEM_KAFKA_BOOTSTRAP": endpoints.kafka_bootstrap,
             "CONVMEM_DATABASE_URL": endpoints.database_url})
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    [row] = [line.split() for line in out.decode().splitlines() if line.startswith(recorder + " ")]
    assert row[1:] == [topics.INBOUND, "not", "running", "3", "records", "waiting"]
    [row] = [line.split() for line in out.decode().splitlines() if line.startswith(sender + " ")]
    assert row[2:4] == ["not", "running"]
    assert any(line.split()[:2] == ["unrecorded", "3"] for line in out.decode().splitlines())

    # The stopped deployment's recorder starts, catches up, and the lag is gone.
    worker = Runtime(["indexer"], indexer=load(
        IndexerSettings, kafka_bootstrap=endpoints.kafka_bootstrap, database_url=endpoints.database_url,
        group_prefix=prefix, vector_path=tmp_path / "vectors", log_level="WARNING"))
    with cli.capsys.disabled():  # the worker binds its logs to standard error: the real one, not this capture
        await worker.start()
    try:
        async def caught_up() -> bool:
            status = await cli.json("status", "--prefix", prefix)
            return bool(group(status, recorder)["lag"] == 0 and status["backlog"]["unrecorded"]["count"] == 0
                        and group(status, recorder)["running"] is True)

        await eventually(caught_up, timeout=60, interval=0.5)
    finally:
        await worker.stop()


async def test_a_dead_letter_grows_its_topic(runtime: Runtime, producer: AIOKafkaProducer, cli: Cli) -> None:
    dlq = topics.dead_letter_topic(topics.INBOUND)
    before = (await cli.json("status"))["dead_letters"][dlq]
    await producer.send_and_wait(topics.INBOUND, b"{not json", key=uuid.uuid4().bytes)

    async def grown() -> bool:
        return bool((await cli.json("status"))["dead_letters"][dlq] == before + 1)

    await eventually(grown, interval=0.5)


async def test_turns_wait_to_be_embedded_and_answered_until_they_are(
        runtime: Runtime, producer: AIOKafkaProducer, cli: Cli, endpoints: Endpoints) -> None:
    # Recorded and never announced, as by a recorder that stopped between the two: nothing
    # embeds or answers them until their TurnRecorded goes out.
    tenant = unique("t")
    storage = await PostgresStorage.connect(endpoints.database_url)
    try:
        asked = (await storage.turns.record_turn(said(tenant, unique("ana"), "what is due today?", True))).turn
        told = (await storage.turns.record_turn(said(tenant, unique("bo"), "noted, thanks"))).turn
    finally:
        await storage.close()
    await asyncio.sleep(0.2)
    waiting = (await cli.json("status", "--tenant", tenant))["backlog"]
    assert (waiting["unembedded"]["count"], waiting["unreplied"]["count"]) == (2, 1)
    assert waiting["unreplied"]["oldest_at"] == asked.recorded_at.isoformat()
    assert waiting["unembedded"]["oldest_age_s"] >= 0.2

    for turn in (asked, told):
        await producer.send_and_wait(topics.TURNS, turn.model_dump_json().encode(), key=turn.key)

    async def done() -> bool:
        backlog = (await cli.json("status", "--tenant", tenant))["backlog"]
        return bool(backlog["unembedded"]["count"] == 0 and backlog["unreplied"]["count"] == 0)

    await eventually(done, timeout=60, interval=0.5)
