"""The storage ports of operating convmem rather than of serving it: how far behind the
pipeline is (`convmem status`) and which dead letters were replayed (`convmem dlq replay`).
No tenant's or user's content crosses them, only counts, times and positions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True, order=True)
class Position:
    """Where a record sits in Kafka; written `topic:partition:offset`."""

    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"

    @classmethod
    def parse(cls, text: str) -> Position:
        """From `topic:partition:offset` (topic names may hold dots, never colons)."""
        topic, _, rest = text.strip().partition(":")
        partition, _, offset = rest.partition(":")
        if not topic or not partition.isdigit() or not offset.isdigit():
            raise ValueError(f"not a position (topic:partition:offset): {text!r}")
        return cls(topic, int(partition), int(offset))


@dataclass(frozen=True)
class Pending:
    """Turns waiting for one stage: how many, and when the oldest of them was recorded."""

    count: int
    oldest_at: datetime | None


class Backlog(Protocol):
    """Recorded turns a later stage has not finished, optionally for one tenant."""

    async def unembedded(self, tenant_id: str | None = None) -> Pending:
        """Live turns with text that have no vector yet (embedded_at is not set)."""
        ...

    async def unreplied(self, tenant_id: str | None = None) -> Pending:
        """Live user turns that expect a reply and have no published reply yet."""
        ...


class ReplayLog(Protocol):
    """The dead letters that were replayed, each position at most once, so that replaying
    the same selection again sends nothing."""

    async def replayed(self, positions: Sequence[Position]) -> set[Position]:
        """Those of `positions` already replayed."""
        ...

    async def replay_once(self, position: Position, group: str, send: Callable[[], Awaitable[None]]) -> bool:
        """Run `send` and record the position as replayed for `group`; False, without
        running `send`, when it was replayed already. The record is kept only once `send`
        returned (a failed send can be tried again), and two replays of one position at
        once send it once."""
        ...


@dataclass(frozen=True)
class LetterFilter:
    """Which dead letters to list or replay; a criterion left empty admits all."""

    topic: str | None = None  # a consumed topic or its .dlq
    group: str | None = None  # a consumer group, with or without its prefix
    reason: str | None = None  # a part of the reason, any case
    since: datetime | None = None
    until: datetime | None = None
    positions: tuple[Position, ...] = ()
    tenant: str | None = None  # those of one tenant (and records naming none); None: every tenant's


class Pipeline(Protocol):
    """The pipeline as `convmem status` and `convmem dlq` show it, for the console: the
    answers are the JSON those commands print with --json (dead letters' text withheld)."""

    async def status(self, tenant_id: str) -> dict[str, Any]:
        """Lag and oldest pending record per consumer group, dead letters per topic, turns
        waiting per stage; at most a few seconds old."""
        ...

    async def dead_letters(self, which: LetterFilter, limit: int) -> dict[str, Any]: ...

    async def dead_letter(self, position: Position, tenant: str | None = None) -> dict[str, Any] | None:
        """The dead letter at `position`, unless it names another tenant than `tenant`."""
        ...

    async def replay(self, which: LetterFilter, dry_run: bool) -> dict[str, Any]: ...
