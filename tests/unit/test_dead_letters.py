"""Dead letters without a broker: the headers that carry a record to the DLQ and back, which
group a replay is for, how a selection filters, and what `dlq show` never prints."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka.structs import ConsumerRecord

from composition.dlq import envelope, group_names, instant, key_text, replay_target
from composition.roles import ROLES, consumer_groups
from composition.status import unrecorded
from contracts import topics
from convmem.delivery import headers
from convmem.delivery.dead_letters import DeadLetter, Selection, dead_letter_topics
from convmem.ops.consumer_lag import PartitionLag
from convmem.ports import Position

KNOWN = set(consumer_groups(ROLES, ""))
FAILED = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def record(hdrs: dict[str, str], topic: str = topics.TURNS, offset: int = 7) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(topic=topic, partition=2, offset=offset, timestamp=1_700_000_000_000, timestamp_type=0,
                          key=b"conv-1", value=b"{}", checksum=None, serialized_key_size=6, serialized_value_size=2,
                          headers=tuple((k, v.encode()) for k, v in hdrs.items()))


def letter(group: str | None = "convmem.indexer.embed", reason: str = "invalid TurnRecorded: validation failed",
           failed: datetime = FAILED, offset: int = 0, topic: str = topics.TURNS) -> DeadLetter:
    hdrs = headers.dead_letter(record({}, topic), reason, group or "", now=failed)
    if group is None:
        del hdrs[headers.CONSUMER_GROUP]
    return DeadLetter(Position(topics.dead_letter_topic(topic), 0, offset), b"conv-1", b"{}", hdrs, 0)


def test_a_dead_letter_says_where_why_and_which_group_and_keeps_the_records_own_headers() -> None:
    failed = record({"correlation_id": "c-1", headers.ERROR: "stale", headers.REPLAY_FOR_GROUP: "g"})
    out = headers.dead_letter(failed, "invalid TurnRecorded", "p.indexer.embed", now=FAILED)
    assert out[headers.ERROR] == "invalid TurnRecorded" and out[headers.CONSUMER_GROUP] == "p.indexer.embed"
    assert (out[headers.ORIGINAL_TOPIC], out[headers.ORIGINAL_PARTITION], out[headers.ORIGINAL_OFFSET]) == (
        topics.TURNS, "2", "7")
    assert out[headers.ORIGINAL_TIMESTAMP] == "1700000000000" and out[headers.FAILED_AT] == FAILED.isoformat()
    assert out["correlation_id"] == "c-1" and headers.REPLAY_FOR_GROUP not in out


def test_a_replay_is_addressed_to_one_group_and_says_which_dead_letter_it_was() -> None:
    dead = headers.dead_letter(record({"correlation_id": "c-1"}), "boom", "p.responder", now=FAILED)
    replay = headers.replay(dead, "p.responder", "conv.turns.v1.dlq:0:4")
    assert replay == {"correlation_id": "c-1", headers.REPLAY_FOR_GROUP: "p.responder",
                      headers.REPLAY_OF: "conv.turns.v1.dlq:0:4"}
    replayed = record(replay)
    assert headers.addressed_to(replayed, "p.responder")
    assert not headers.addressed_to(replayed, "p.indexer.embed")
    assert not headers.addressed_to(replayed, "other.responder")  # another deployment's group of the same role
    assert headers.addressed_to(record({}), "p.indexer.embed")  # an ordinary record is everyone's
    assert headers.is_replay(replayed) and not headers.is_replay(record({"correlation_id": "c-1"}))
    # Failing again, the replay's dead letter says which dead letter it came from.
    again = headers.dead_letter(replayed, "boom", "p.responder", now=FAILED)
    assert again[headers.REPLAY_OF] == "conv.turns.v1.dlq:0:4" and headers.REPLAY_FOR_GROUP not in again


def test_a_dead_letter_read_back() -> None:
    d = letter()
    assert d.group == "convmem.indexer.embed" and d.failed_at == FAILED and d.replay_of is None
    assert d.original == Position(topics.TURNS, 2, 7) and d.original_at == datetime.fromtimestamp(1_700_000_000, UTC)
    bare = DeadLetter(Position("x.dlq", 0, 0), None, b"", {}, 1_700_000_000_000)
    assert bare.original is None and bare.group is None and bare.failed_at == datetime.fromtimestamp(1_700_000_000, UTC)


def test_a_selection_filters_by_group_time_reason_and_position() -> None:
    embed, responder = letter(offset=1), letter("convmem.responder", "exhausted 3 attempts: KeyError", offset=2)
    assert Selection().admits(embed) and Selection().admits(responder)
    assert [Selection(groups=frozenset({"convmem.responder"})).admits(d) for d in (embed, responder)] == [False, True]
    assert not Selection(since=FAILED + timedelta(seconds=1)).admits(embed)
    assert Selection(since=FAILED, until=FAILED + timedelta(seconds=1)).admits(embed)
    assert not Selection(until=FAILED).admits(embed)  # until is exclusive
    assert [Selection(reason="KEYERROR").admits(d) for d in (embed, responder)] == [False, True]
    assert [Selection(reason_pattern=re.compile(r"^invalid \w+:")).admits(d) for d in (embed, responder)] == [
        True, False]
    assert [Selection(positions=frozenset({responder.position})).admits(d) for d in (embed, responder)] == [
        False, True]


def test_a_selection_for_one_tenant_admits_its_records_and_those_naming_none() -> None:
    base = letter()
    acme, other = (replace(base, value=json.dumps({"tenant_id": t, "text": ""}).encode()) for t in ("acme", "other"))
    broken = [replace(base, value=v) for v in (b"\xff not json", b"[1, 2]", b'{"tenant_id": 7}')]
    assert [Selection(tenant="acme").admits(d) for d in (acme, other, *broken)] == [True, False, True, True, True]
    assert all(Selection().admits(d) for d in (acme, other, *broken))


def test_times_are_relative_or_iso() -> None:
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    assert instant("2h", now) == now - timedelta(hours=2)
    assert instant("30m", now) == now - timedelta(minutes=30)
    assert instant("1.5d", now) == now - timedelta(hours=36)
    assert instant("2026-11-26T09:00:00Z") == datetime(2026, 11, 26, 9, tzinfo=UTC)
    assert instant("2026-11-26T09:00:00") == datetime(2026, 11, 26, 9, tzinfo=UTC)  # UTC unless it says otherwise
    with pytest.raises(ValueError, match="not a time"):
        instant("yesterday")


def test_topics_and_groups_as_operators_name_them() -> None:
    assert dead_letter_topics([topics.INBOUND, "conv.inbound.v1.dlq", topics.TURNS]) == [
        "conv.inbound.v1.dlq", "conv.turns.v1.dlq"]
    assert set(dead_letter_topics()) == {topics.dead_letter_topic(t) for t in topics.CONSUMED_TOPICS}
    assert group_names(["indexer.embed"], "convmem") == {"indexer.embed", "convmem.indexer.embed"}
    assert Position.parse("conv.turns.v1.dlq:0:42") == Position("conv.turns.v1.dlq", 0, 42)
    assert str(Position("conv.turns.v1.dlq", 0, 42)) == "conv.turns.v1.dlq:0:42"
    for bad in ("conv.turns.v1.dlq", "conv.turns.v1.dlq:0", "x:a:1", ":0:1"):
        with pytest.raises(ValueError):
            Position.parse(bad)


def test_keys_print_as_text_or_hex() -> None:
    assert key_text(letter()) == "conv-1"
    raw = DeadLetter(Position("x.dlq", 0, 0), b"\x00\xffab", b"", {}, 0)
    assert key_text(raw) == "0x00ff6162"
    assert key_text(DeadLetter(Position("x.dlq", 0, 0), None, b"", {}, 0)) == ""


def test_a_replay_goes_to_the_group_that_failed_it_under_any_prefix() -> None:
    assert replay_target(letter("convmem.indexer.embed"), KNOWN) == "convmem.indexer.embed"
    assert replay_target(letter("convmem-test-1a2b.responder"), KNOWN) == "convmem-test-1a2b.responder"
    # Written before dead letters named their group: the prefix alone names no group.
    assert replay_target(letter("convmem"), KNOWN) is None
    assert replay_target(letter(None), KNOWN) is None
    assert replay_target(letter("convmem.indexer.record-inbound"), KNOWN) is None  # not a group of conv.turns.v1
    assert replay_target(letter("convmem.indexer.record-inbound", topic=topics.INBOUND), KNOWN) is not None


def test_show_never_prints_message_text_or_opens_sealed_fields() -> None:
    event = {"message_id": "m-1", "user_id": "ana", "text": "my card is 4111 1111 1111 1111",
             "metadata": {"speaker": "Ana"}, "sealed": {"key_id": "k-1", "nonce": "bm9uY2U=", "box": "c2VjcmV0"},
             "nested": [{"text": "also private"}]}
    shown = envelope(json.dumps(event).encode())
    assert isinstance(shown, dict)
    printed = json.dumps(shown)
    assert "4111" not in printed and "Ana" not in printed and "also private" not in printed
    assert "c2VjcmV0" not in printed and shown["sealed"]["key_id"] == "k-1"
    assert shown["message_id"] == "m-1" and shown["text"] == "<withheld: 30 characters>"
    assert envelope(b"\xff some raw bytes") == "<16 bytes, not JSON>"
    assert envelope(b'"just a string"') == "<15 bytes, JSON but not an object>"


def test_unrecorded_turns_are_the_inbound_recorders_lag() -> None:
    at = datetime(2026, 11, 26, 9, tzinfo=UTC)
    lags = [PartitionLag("p.indexer.record-inbound", topics.INBOUND, 0, 10, 0, 13, at),
            PartitionLag("p.indexer.record-inbound", topics.INBOUND, 1, None, 4, 6, at - timedelta(minutes=1)),
            PartitionLag("p.indexer.embed", topics.TURNS, 0, 0, 0, 50)]
    assert [p.lag for p in lags] == [3, 2, 50]  # never committed: the whole log is pending
    waiting = unrecorded(lags, "p")
    assert (waiting.count, waiting.oldest_at) == (5, at - timedelta(minutes=1))
    assert unrecorded(lags, "q").count == 0
