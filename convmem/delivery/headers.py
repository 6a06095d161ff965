"""The headers that carry a record through the dead-letter topics and back, in one place:
what the delivery policy writes on a dead letter, what a replay writes on the record it
republishes, and which consumer group a replayed record is meant for.

A dead letter keeps the original record's own headers beside ours, so a replay can restore
them; ours are the reserved names below, never carried over from the record that failed
(a record dead-lettered twice must say where and why it failed the second time)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

ERROR = "x-error"
ORIGINAL_TOPIC = "x-original-topic"
ORIGINAL_PARTITION = "x-original-partition"
ORIGINAL_OFFSET = "x-original-offset"
ORIGINAL_TIMESTAMP = "x-original-timestamp"  # milliseconds since the epoch, as Kafka keeps it
CONSUMER_GROUP = "x-consumer-group"  # the full name of the group that failed the record
FAILED_AT = "x-failed-at"
# On a replayed record: the one group that should handle it (every other group of the topic
# acknowledges and skips it), and the dead letter it came from ("topic:partition:offset").
REPLAY_FOR_GROUP = "x-replay-for-group"
REPLAY_OF = "x-replay-of"

_DEAD_LETTER = (ERROR, ORIGINAL_TOPIC, ORIGINAL_PARTITION, ORIGINAL_OFFSET, ORIGINAL_TIMESTAMP, CONSUMER_GROUP,
                FAILED_AT)
# Never copied from one record onto the next: each dead letter and each replay writes its own.
# x-replay-of is copied onto a dead letter on purpose: a replay that fails again says so.
RESERVED = frozenset((*_DEAD_LETTER, REPLAY_FOR_GROUP))


def as_text(headers: Iterable[tuple[str, bytes | None]] | None) -> dict[str, str]:
    """Kafka's (name, bytes) pairs as text; a repeated name keeps its last value."""
    return {name: (value or b"").decode("utf-8", "replace") for name, value in headers or ()}


def dead_letter(record: Any, reason: str, group: str, now: datetime | None = None) -> dict[str, str]:
    """The headers of `record`'s dead letter: why, where from, which group, when; its own
    headers carried along (x-replay-of among them when it was a replay)."""
    own = {k: v for k, v in as_text(record.headers).items() if k not in RESERVED}
    return own | {
        ERROR: reason,
        ORIGINAL_TOPIC: record.topic,
        ORIGINAL_PARTITION: str(record.partition),
        ORIGINAL_OFFSET: str(record.offset),
        ORIGINAL_TIMESTAMP: str(record.timestamp),
        CONSUMER_GROUP: group,
        FAILED_AT: (now or datetime.now(UTC)).isoformat(),
    }


def replay(dead_letter_headers: Mapping[str, str], group: str, position: str) -> dict[str, str]:
    """The headers of a dead letter's replay: the original record's own, addressed to `group`."""
    own = {k: v for k, v in dead_letter_headers.items() if k not in RESERVED and k != REPLAY_OF}
    return own | {REPLAY_FOR_GROUP: group, REPLAY_OF: position}


def addressed_to(record: Any, group: str) -> bool:
    """Whether this consumer group should handle the record: every record is, except a
    replay meant for another group of the same topic (that one failed it; this one did not)."""
    for name, value in record.headers or ():
        if name == REPLAY_FOR_GROUP:
            return bool((value or b"").decode("utf-8", "replace") == group)
    return True


def is_replay(record: Any) -> bool:
    """Whether the record is a dead letter sent back for one group (not a new event)."""
    return any(name == REPLAY_FOR_GROUP for name, _ in record.headers or ())
