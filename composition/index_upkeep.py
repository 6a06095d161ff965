"""What a serving process does for its vector index besides serving it. An embedded index's
owner follows the pointer (a rebuild's switch: take the new generation over, then catch up
on what it wrote to the old one meanwhile) and optimizes a copy of its generation in a child
process (on request from `convmem index optimize`, or periodically), then takes that copy
over the same way. A server index is checked against the configured embedder at start."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import structlog

from composition.resources import Resources
from convmem.adapters.edge_folder import Pointer
from convmem.adapters.edge_generations import ServingEdgeIndex
from convmem.adapters.postgres import PostgresStorage
from convmem.adapters.postgres.rebuild import PgIndexBuilds, PgTurnSource
from convmem.adapters.qdrant_generations import QdrantGenerations
from convmem.adapters.vectors import QdrantServerIndex
from convmem.errors import IndexUnavailable
from convmem.settings import VectorSettings
from services.indexer.rebuilding import catch_up, remove_stale

log = structlog.get_logger("convmem.index")


async def start_upkeep(res: Resources, settings: VectorSettings) -> list[asyncio.Task[Any]]:
    """The tasks this process runs for its index (none for a server index, which is checked
    here: IndexUnavailable when it holds another model's vectors)."""
    storage = res.storage
    if not isinstance(storage, PostgresStorage):
        return []  # catching up reads Postgres
    index = res.index
    if isinstance(index, QdrantServerIndex):
        await check_server_index(index, settings, storage, res)
        return []
    if not isinstance(index, ServingEdgeIndex):
        return []
    upkeep = EdgeUpkeep(index, res, PgTurnSource(storage.pool), settings)
    return [asyncio.create_task(upkeep.run())]


async def check_server_index(index: QdrantServerIndex, settings: VectorSettings, storage: PostgresStorage,
                             res: Resources) -> None:
    generations = QdrantGenerations(index.client, settings.qdrant_collection)
    try:
        current = await generations.current()
    except Exception as exc:  # the server may come up later: the index's own calls retry then
        log.warning("vector_index_not_checked", error=type(exc).__name__)
        return
    if current is None:
        return
    builds = PgIndexBuilds(storage.pool, settings.database_url.get_secret_value())
    recorded = await builds.serving(generations.target)
    model = recorded.model if recorded is not None and recorded.name == current.name else None
    embedder = res.embedder
    if current.dimension != embedder.dimension or model not in (None, embedder.name):
        raise IndexUnavailable(
            f"the Qdrant collection {settings.qdrant_collection} holds vectors of {model or 'a model'} "
            f"({current.dimension}-d) but this process embeds with {embedder.name} ({embedder.dimension}-d): "
            f"run `convmem index rebuild` to re-embed every turn with {embedder.name}, or configure the "
            "embedding model the collection was built with")


@dataclass
class EdgeUpkeep:
    index: ServingEdgeIndex
    res: Resources
    source: PgTurnSource
    settings: VectorSettings
    _last_optimized: float = field(default_factory=time.monotonic)
    _refused: str | None = None  # a generation we cannot serve (another model), logged once

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.settings.index_watch_interval_s)
            try:
                await self.tick()
            except Exception as exc:  # upkeep must outlive a database blip or a failed child
                log.warning("vector_index_upkeep_failed", error=type(exc).__name__, detail=str(exc)[:200])

    async def tick(self) -> None:
        folder = self.index.folder
        pointer = folder.pointer()
        if pointer is not None and pointer.generation != self.index.generation:
            await self.take_over(pointer)
        if folder.take_optimize_request():
            try:
                folder.answer_optimize(await self.optimize())
            except Exception as exc:
                folder.answer_optimize({"error": f"{type(exc).__name__}: {str(exc)[:200]}"})
                raise
        elif self._optimize_due():
            _, points, indexed = await self.index.shard.segments()
            if points - indexed >= self.settings.index_optimize_min_unindexed:
                await self.optimize()
            self._last_optimized = time.monotonic()

    def _optimize_due(self) -> bool:
        every = self.settings.index_optimize_interval_s
        return every > 0 and time.monotonic() - self._last_optimized >= every

    async def take_over(self, pointer: Pointer) -> None:
        if (pointer.model, pointer.dimension) != (self.index.model, self.index.dimension):
            if self._refused != pointer.generation:
                log.error("vector_index_switch_refused", generation=pointer.generation, model=pointer.model,
                          dimension=pointer.dimension, own_model=self.index.model)
                self._refused = pointer.generation
            return
        old = self.index.generation
        await self.index.take_over(pointer.generation)
        caught = removed = 0
        if pointer.caught_up_at is not None:
            caught = await catch_up(self.source, self.index, self.res.embedder, pointer.caught_up_at)
            # Turns purged by retention since the switch's writer looked leave nothing to catch up from.
            removed = await remove_stale(self.source, self.index, self.index, None)
        log.info("vector_index_switched", generation=pointer.generation, previous=old, caught_up=caught,
                 removed=removed)

    async def optimize(self) -> dict[str, Any]:
        """Copy the serving generation (a flush and a file copy, between two index calls),
        optimize the copy in a child process, and take it over like a rebuild's switch."""
        folder = self.index.folder
        name = folder.next_name()
        mark = await self.source.watermark()
        started = time.perf_counter()
        await self.index.shard.copy_to(folder.path(name))
        copied = time.perf_counter() - started
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "convmem.adapters.edge_optimize", str(folder.path(name)),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await child.communicate()
        if child.returncode != 0:
            await asyncio.to_thread(folder.remove, name)
            raise RuntimeError(f"optimize child failed: {err.decode(errors='replace').strip()[-200:]}")
        result: dict[str, Any] = json.loads(out)
        folder.point_to(Pointer(name, self.index.model, self.index.dimension, mark))
        await self.take_over(Pointer(name, self.index.model, self.index.dimension, mark))
        result.update(generation=name, copy_seconds=round(copied, 3), pid=os.getpid())
        log.info("vector_index_optimized", generation=name, seconds=result["seconds"],
                 copy_seconds=result["copy_seconds"], segments=result["after"][0], points=result["after"][1])
        return result

