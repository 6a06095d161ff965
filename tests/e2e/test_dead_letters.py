"""Dead letters on the real stack, through the command line: a record the system
dead-lettered is listed, shown and replayed to the group that failed it, once however often
the replay is asked for; the topic's other groups never handle the replay."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord
from prometheus_client import REGISTRY

from composition.runtime import Runtime
from contracts import MessageReceived, TurnRecorded, topics
from tests.conftest import GROUP_PREFIX, Tap, eventually, unique
from tests.e2e.conftest import Cli
from tests.services import Endpoints

pytestmark = pytest.mark.stack


@pytest.fixture
async def db(endpoints: Endpoints) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(endpoints.database_url)
    yield conn
    await conn.close()


def header(record: ConsumerRecord, name: str) -> str | None:
    return next((v.decode() for k, v in record.headers if k == name), None)


def position(record: ConsumerRecord) -> str:
    return f"{record.topic}:{record.partition}:{record.offset}"


async def test_a_dead_letter_is_listed_shown_and_replayed_once_for_its_group(
        runtime: Runtime, tap: Tap, producer: AIOKafkaProducer, cli: Cli, db: asyncpg.Connection) -> None:
    recorder = f"{GROUP_PREFIX}.indexer.record-inbound"
    ana, conv = unique("ana"), uuid.uuid4()
    # A stray conversation row owned by someone else (a bad import, say): ana's message to
    # that conversation is refused for good and dead-lettered by the recorder.
    await db.execute("INSERT INTO conversations (id, tenant_id, user_id, channel) VALUES ($1, 'default', $2, 'http')",
                     conv, unique("bob"))
    said = MessageReceived(tenant_id="default", user_id=ana, conversation_id=conv, message_id=uuid.uuid4(),
                           text="my secret plans for friday", occurred_at=datetime.now(UTC), reply_expected=False)
    await producer.send_and_wait(topics.INBOUND, said.model_dump_json().encode(), key=said.key,
                                 headers=[("correlation_id", b"c-42")])
    dlq = topics.dead_letter_topic(topics.INBOUND)
    [dead] = await eventually(lambda: [r for r in tap.on(dlq) if r.key == said.key])
    assert header(dead, "x-consumer-group") == recorder
    where = position(dead)

    # list: found by topic (either name), group (full or short), time and reason; not by others.
    for argv in (["--topic", topics.INBOUND, "--group", recorder], ["--topic", dlq, "--group", "indexer.record-inbound"],
                 ["--since", "10m", "--reason", "BELONGS TO ANOTHER USER"], ["--reason-regex", r"conversation \S+ belongs"]):
        listed = await cli.json("dlq", "list", *argv)
        [mine] = [d for d in listed["dead_letters"] if d["position"] == where]
        assert mine["group"] == recorder and mine["key"] == str(conv) and mine["replayed"] is False
    for argv in (["--group", f"{GROUP_PREFIX}.indexer.embed"], ["--until", "10m"], ["--reason", "no such reason"],
                 ["--topic", topics.TURNS]):
        listed = await cli.json("dlq", "list", *argv)
        assert where not in [d["position"] for d in listed["dead_letters"]]
    code, table = await cli("dlq", "list", "--topic", topics.INBOUND, "--group", recorder)
    assert code == 0 and table.startswith("POSITION") and where in table

    # show: the headers and the event's fields, never the message text.
    shown = await cli.json("dlq", "show", where)
    assert shown["headers"]["x-consumer-group"] == recorder and shown["headers"]["correlation_id"] == "c-42"
    assert shown["event"]["message_id"] == str(said.message_id) and shown["original"].startswith(topics.INBOUND)
    assert "secret plans" not in json.dumps(shown)
    code, out = await cli("dlq", "show", f"{dlq}:0:999999999")
    assert code == 1 and "no dead letter" in out

    async def rows() -> int:
        return int(await db.fetchval("SELECT count(*) FROM messages WHERE id = $1", said.message_id))

    # The cause is repaired; a dry run reports the replay and changes nothing.
    await db.execute("DELETE FROM conversations WHERE id = $1", conv)
    dry = await cli.json("dlq", "replay", where, "--dry-run")
    assert (dry["dry_run"], dry["replayed"], dry["already_replayed"]) == (True, 1, 0)
    await asyncio.sleep(1.0)
    assert await rows() == 0
    assert [d["replayed"] for d in (await cli.json("dlq", "list", "--group", recorder))["dead_letters"]
            if d["position"] == where] == [False]

    done = await cli.json("dlq", "replay", where)
    assert (done["replayed"], done["already_replayed"], done["not_replayable"]) == (1, 0, 0)
    [entry] = done["records"]
    assert entry["group"] == recorder and entry["to"].startswith(topics.INBOUND + ":")
    await eventually(rows)
    again = await cli.json("dlq", "replay", where)
    assert (again["replayed"], again["already_replayed"]) == (0, 1)
    code, out = await cli("dlq", "replay", where)
    assert code == 0 and "replayed 0, already replayed 1" in out

    def announced() -> list[TurnRecorded]:
        turns = (TurnRecorded.model_validate_json(r.value) for r in tap.on(topics.TURNS) if r.key == said.key)
        return [t for t in turns if t.message_id == said.message_id]

    await eventually(announced)
    await asyncio.sleep(2.0)  # time for a second recording, were there one
    assert await rows() == 1 and len(announced()) == 1
    assert [d["replayed"] for d in (await cli.json("dlq", "list", "--group", recorder))["dead_letters"]
            if d["position"] == where] == [True]


def skipped_by(group: str) -> float:
    """Records of conv.turns.v1 this process's `group` acknowledged as replays for another group."""
    value = REGISTRY.get_sample_value("convmem_events_total",
                                      {"group": group, "topic": topics.TURNS, "outcome": "skipped"})
    return value or 0.0


async def test_a_replay_is_handled_by_the_group_it_is_for_and_no_other(
        runtime: Runtime, tap: Tap, producer: AIOKafkaProducer, cli: Cli) -> None:
    key = str(uuid.uuid4()).encode()
    poison = b'{"not": "a turn", "n": 1}'
    await producer.send_and_wait(topics.TURNS, poison, key=key)
    dlq = topics.dead_letter_topic(topics.TURNS)
    groups = {f"{GROUP_PREFIX}.{g}" for g in ("indexer.embed", "retention.pii", "responder", "responder.upkeep")}

    def dead(value: bytes) -> list[ConsumerRecord]:
        return [r for r in tap.on(dlq) if r.key == key and r.value == value]

    first = await eventually(lambda: dead(poison) if len(dead(poison)) == len(groups) else None)
    assert {header(r, "x-consumer-group") for r in first} == groups  # each group that failed it, by name
    [embed] = [r for r in first if header(r, "x-consumer-group") == f"{GROUP_PREFIX}.indexer.embed"]

    skipped = {g: skipped_by(g) for g in groups}
    # Replay what the embedder failed, selected by group and reason rather than by position.
    done = await cli.json("dlq", "replay", "--topic", topics.TURNS, "--group", "indexer.embed", "--since", "10m",
                          "--reason", "invalid TurnRecorded")
    assert position(embed) in [r["position"] for r in done["records"] if r["outcome"] == "replayed"]
    assert all(r["group"] == f"{GROUP_PREFIX}.indexer.embed" for r in done["records"])
    # A later record of the same conversation (same partition, behind the replay) tells when
    # every group has passed the replay: by then only the embedder may have failed it again.
    later = b'{"not": "a turn", "n": 2}'
    await producer.send_and_wait(topics.TURNS, later, key=key)
    await eventually(lambda: len(dead(later)) == len(groups))
    replays = [r for r in dead(poison) if header(r, "x-replay-of") is not None]
    assert [(header(r, "x-consumer-group"), header(r, "x-replay-of")) for r in replays] == [
        (f"{GROUP_PREFIX}.indexer.embed", position(embed))]
    # The other groups acknowledged it as not theirs, and said so in their metrics.
    now = {g: skipped_by(g) - skipped[g] for g in groups}
    assert now == {g: (0 if g.endswith(".indexer.embed") else 1) for g in groups}

    listed = await cli.json("dlq", "list", "--topic", topics.TURNS, "--group", "indexer.embed", "--since", "10m")
    assert position(embed) in [d["replay_of"] for d in listed["dead_letters"]]
