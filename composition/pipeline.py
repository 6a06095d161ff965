"""The console's view of the pipeline (convmem.ports.Pipeline), built from what `convmem
status` and `convmem dlq` do: the same reads, the same JSON. The status is read in the
background at most every few seconds and the latest snapshot served, so a page never waits
for the broker's admin round trips (and many open pages cost one read)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from composition.dlq import find_letters, group_names, letter_detail, replay_selection
from composition.status import read_status
from convmem.delivery.dead_letters import Selection
from convmem.ports import Backlog, LetterFilter, Pipeline, Position, ReplayLog

log = structlog.get_logger("convmem.console")
FRESH_S = 5.0  # a snapshot younger than this is served as it is
FIRST_WAIT_S = 8.0  # the first page waits this long for the first snapshot


def selection(which: LetterFilter, prefix: str) -> tuple[list[str], Selection]:
    topics = [which.topic] if which.topic else []
    groups = group_names([which.group], prefix) if which.group else frozenset()
    return topics, Selection(groups=groups, since=which.since, until=which.until, reason=which.reason or None,
                             positions=frozenset(which.positions), tenant=which.tenant)


@dataclass
class KafkaPipeline(Pipeline):
    bootstrap: str
    prefix: str
    backlog: Backlog
    replays: ReplayLog
    _snapshots: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)
    _reading: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    async def status(self, tenant_id: str) -> dict[str, Any]:
        held = self._snapshots.get(tenant_id)
        if held is None or time.monotonic() - held[0] > FRESH_S:
            task = self._reading.get(tenant_id)
            if task is None or task.done():
                task = self._reading[tenant_id] = asyncio.create_task(self._read(tenant_id))
            if held is None:
                await asyncio.wait({task}, timeout=FIRST_WAIT_S)
        held = self._snapshots.get(tenant_id)
        if held is None:
            return {"checked_at": None, "group_prefix": self.prefix, "tenant": tenant_id,
                    "error": "the broker did not answer in time", "consumer_groups": [],
                    "dead_letters": {}, "backlog": {}}
        return held[1]

    async def _read(self, tenant_id: str) -> None:
        try:
            read = await read_status(self.bootstrap, self.backlog, self.prefix, tenant_id)
        except Exception as exc:  # the page shows the last snapshot (or says none came)
            log.warning("console_status_failed", error=type(exc).__name__)
            return
        self._snapshots[tenant_id] = (time.monotonic(), read.as_json(datetime.now(UTC), self.prefix, tenant_id))

    async def dead_letters(self, which: LetterFilter, limit: int) -> dict[str, Any]:
        topics, sel = selection(which, self.prefix)
        matched, _, rows = await find_letters(self.bootstrap, self.replays, topics, sel, limit)
        return {"matched": matched, "shown": len(rows), "dead_letters": list(reversed(rows))}

    async def dead_letter(self, position: Position, tenant: str | None = None) -> dict[str, Any] | None:
        return await letter_detail(self.bootstrap, self.replays, position, tenant)

    async def replay(self, which: LetterFilter, dry_run: bool) -> dict[str, Any]:
        topics, sel = selection(which, self.prefix)
        return (await replay_selection(self.bootstrap, self.replays, topics, sel, dry_run)).as_json()

    async def close(self) -> None:
        for task in self._reading.values():
            task.cancel()
