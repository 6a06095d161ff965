"""Ports for rebuilding the vector index from Postgres: the live turns to embed, the build's
progress, and the index's generations (one serves searches while the next is built aside,
then a switch makes the next one serve)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol
from uuid import UUID

from contracts import TurnRecorded
from convmem.ports.compute import VectorIndex
from convmem.ports.records import Unit

BuildState = Literal["building", "built"]


@dataclass(frozen=True)
class Generation:
    """One generation of the index: its name (a folder or a collection) and the embedding
    model whose vectors it holds."""

    name: str
    model: str | None  # None: the backend does not know (a collection made before generations)
    dimension: int


@dataclass(frozen=True)
class IndexBuild:
    """An unfinished rebuild. `cursor` is the last message id embedded (the scan goes in id
    order); `started_at` is the source's watermark when the scan began, the point from which
    turns written meanwhile are caught up before the switch (its watermark). `tenant_id` set: a one-tenant
    repair in place of the serving generation."""

    generation: str
    model: str
    dimension: int
    tenant_id: str | None
    started_at: datetime
    cursor: UUID | None = None
    embedded: int = 0
    state: BuildState = "building"


class TurnSource(Protocol):
    """Live turns as the index should hold them: the current (scrubbed) text of turns not
    deleted, with text, and not offline-mode notices, read from the source of truth."""

    async def watermark(self) -> datetime:
        """A time before which every write to turns has committed: the start of the oldest
        transaction still running, or now. A turn recorded, scrubbed or deleted at or after
        it may be missed by a scan that starts now."""
        ...
    async def count_live(self, tenant_id: str | None) -> int: ...
    async def live_after(self, cursor: UUID | None, tenant_id: str | None, limit: int) -> list[TurnRecorded]:
        """Live turns with an id above `cursor`, in id order."""
        ...
    async def changed_since(self, since: datetime, cursor: UUID | None, tenant_id: str | None,
                            limit: int) -> list[TurnRecorded]:
        """Live turns recorded or scrubbed since `since`, in id order from `cursor`."""
        ...
    async def deleted_since(self, since: datetime, tenant_id: str | None) -> list[UUID]:
        """Turns deleted since `since` whose rows are still kept (a deleted conversation's)."""
        ...
    async def erased_since(self, since: datetime, tenant_id: str | None) -> list[tuple[str, str]]:
        """(tenant, user) of every subject erased since `since`: their rows are gone, so
        only their scope can find what is left of them in an index."""
        ...
    async def live_ids(self, ids: Sequence[UUID]) -> set[UUID]:
        """Which of these point ids have a live turn, or a unit with text."""
        ...
    async def units_after(self, cursor: UUID | None, tenant_id: str | None, limit: int) -> list[Unit]:
        """Units with text and an id above `cursor`, in id order."""
        ...
    async def units_changed_since(self, since: datetime, tenant_id: str | None) -> list[Unit]:
        """Units changed since `since` (grown, rewritten, emptied: an empty one's point goes)."""
        ...
    async def mark_embedded_before(self, before: datetime, tenant_id: str | None) -> int:
        """Live turns recorded before `before` and not marked embedded are now (those with
        nothing to embed too, as the indexer marks them)."""
        ...


class IndexBuilds(Protocol):
    """Each index's serving generation (with its model) and its unfinished rebuild, kept
    where they survive the rebuilding process."""

    async def claim(self, target: str) -> bool:
        """Whether this process may rebuild `target` (no other rebuild of it is running);
        held until `release`."""
        ...
    async def release(self, target: str) -> None: ...
    async def unfinished(self, target: str) -> IndexBuild | None: ...
    async def save(self, target: str, build: IndexBuild) -> None: ...
    async def abandon(self, target: str) -> None: ...
    async def serve(self, target: str, generation: Generation) -> None:
        """Record `generation` as the serving one; the unfinished build is done."""
        ...
    async def serving(self, target: str) -> Generation | None: ...


class PointIds(Protocol):
    async def point_ids(self, tenant_id: str | None, after: str | None, limit: int) -> tuple[list[UUID], str | None]:
        """One page of the point ids stored (of one tenant, when given) and the offset of the next."""
        ...


class AsideIndex(VectorIndex, PointIds, Protocol):
    """A generation opened by a rebuild: written, listed, optimized, closed."""

    async def optimize(self) -> None: ...


class VectorGenerations(Protocol):
    """The generations of one index and the pointer that names the serving one."""

    @property
    def target(self) -> str:
        """What the index is, for progress records and messages."""
        ...
    async def current(self) -> Generation | None: ...
    async def next_name(self) -> str: ...
    async def exists(self, name: str) -> bool: ...
    async def open(self, name: str, dimension: int, fresh: bool) -> AsideIndex:
        """A generation for writing; `fresh` empties it first. Raises IndexUnavailable when
        another process holds it."""
        ...
    async def switch(self, generation: Generation, caught_up_at: datetime) -> int | None:
        """Make `generation` the serving one. Returns the pid of a running process that will
        take it over (and catch up on what it wrote since `caught_up_at`), or None when no
        process holds the index."""
        ...
    async def drop(self, name: str) -> None:
        """Remove a generation no one serves (a superseded or abandoned one)."""
        ...
    def holder(self) -> int | None:
        """The pid of a running process that serves this index in a way that forbids writing
        to the serving generation from outside (an embedded index's owner), or None."""
        ...
