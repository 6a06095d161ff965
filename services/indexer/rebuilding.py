"""Rebuilding the vector index from Postgres, the source of truth: every live turn's current
(scrubbed) text re-embedded into a generation built aside, which then replaces the serving
one in a single switch, so searches never see an empty or half-built index.

The scan goes in message-id order and records its cursor after every batch: run again after
an interruption, it continues. Bursts (units) are embedded after the turns. Turns written while it runs (recorded, scrubbed or deleted
behind the cursor) and units changed meanwhile are caught up from the time the scan began before the switch, and the
process serving the old generation, if one runs, catches up on what it wrote after that
when it takes the new generation over.

One tenant (`tenant_id`) is repaired in place instead: its turns are re-embedded into the
serving generation (each point replaced, never removed first, so its searches never come
back empty) and its points without a live turn removed. That keeps the model: moving to
another one re-embeds every tenant."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from time import perf_counter

from contracts import TurnRecorded
from convmem.errors import IndexUnavailable
from convmem.memory.units import write_units
from convmem.memory.vector_payload import turn_payload
from convmem.ports import Embedder, MemoryScope, VectorIndex, VectorPoint
from convmem.ports.generations import (
    AsideIndex,
    Generation,
    IndexBuild,
    IndexBuilds,
    PointIds,
    TurnSource,
    VectorGenerations,
)


@dataclass(frozen=True)
class RebuildReport:
    generation: str
    model: str
    embedded: int  # turns embedded by this run's scan
    caught_up: int  # turns re-embedded because they changed while it ran
    removed: int  # points without a live turn, deleted
    seconds: float
    resumed_from: int = 0  # turns a previous, interrupted run had embedded
    switched: bool = False
    taken_over_by: int | None = None  # pid of the running process that now serves it
    waiting: str | None = None  # why a finished build was not switched
    optimize_seconds: float = 0.0  # of `seconds`, building the new generation's HNSW graph


async def embed_into(index: VectorIndex, embedder: Embedder, turns: Sequence[TurnRecorded]) -> None:
    """The indexer's points: the message id, the turn's current text, its payload. One call
    to the embedder per batch, which groups the texts by length itself."""
    if turns:
        vectors = await embedder.embed([t.text for t in turns])
        await index.upsert([VectorPoint(t.message_id, v, turn_payload(t)) for t, v in zip(turns, vectors, strict=True)])


async def catch_up(source: TurnSource, index: VectorIndex, embedder: Embedder, since: datetime,
                   tenant_id: str | None = None, batch: int = 256) -> int:
    """Re-embed the turns recorded or scrubbed since `since`, remove those deleted since and
    everything of the subjects erased since: what a generation built aside missed while it
    was built. Returns the turns embedded."""
    done, cursor = 0, None
    while turns := await source.changed_since(since, cursor, tenant_id, batch):
        await embed_into(index, embedder, turns)
        done, cursor = done + len(turns), turns[-1].message_id
    changed = await source.units_changed_since(since, tenant_id)
    for i in range(0, len(changed), batch):
        await write_units(index, embedder, changed[i:i + batch])
    deleted = await source.deleted_since(since, tenant_id)
    for i in range(0, len(deleted), 1000):
        await index.delete(deleted[i:i + 1000])
    for tenant, user in await source.erased_since(since, tenant_id):
        await index.delete_scope(MemoryScope(tenant, user))
    return done


async def remove_stale(source: TurnSource, index: PointIds, delete: VectorIndex, tenant_id: str | None,
                       page: int = 1000) -> int:
    """Delete the points whose turn is gone (purged, erased) or deleted. Collected first and
    deleted after, so the listing is not changed under its offset."""
    stale, offset = [], None
    while True:
        ids, offset = await index.point_ids(tenant_id, offset, page)
        live = await source.live_ids(ids) if ids else set()
        stale += [i for i in ids if i not in live]
        if offset is None:
            break
    for i in range(0, len(stale), 1000):
        await delete.delete(stale[i:i + 1000])
    return len(stale)


@dataclass
class Rebuild:
    """One run of `convmem index rebuild`."""

    source: TurnSource
    builds: IndexBuilds
    generations: VectorGenerations
    embedder: Embedder
    batch: int = 512
    note: Callable[[str], None] = lambda _: None  # what the operator should know as it happens
    progress: Callable[[int, int], None] = lambda _done, _total: None  # (turns so far, turns in all)

    async def run(self, tenant_id: str | None = None, restart: bool = False) -> RebuildReport:
        target = self.generations.target
        if not await self.builds.claim(target):
            raise IndexUnavailable(f"another `convmem index rebuild` of {target} is running")
        try:
            return await self._run(target, tenant_id, restart)
        finally:
            await self.builds.release(target)

    async def _serving(self, target: str) -> Generation | None:
        current = await self.generations.current()
        if current is None or current.model is not None:
            return current
        recorded = await self.builds.serving(target)  # a server collection does not know its model
        model = recorded.model if recorded is not None and recorded.name == current.name else None
        return replace(current, model=model)

    async def _begin(self, target: str, current: Generation | None, tenant_id: str | None,
                     restart: bool) -> tuple[IndexBuild, bool]:
        """The unfinished build to continue, or a new one. True: continued."""
        model, dim = self.embedder.name, self.embedder.dimension
        build = await self.builds.unfinished(target)
        if build is not None:
            same = (build.model, build.dimension, build.tenant_id) == (model, dim, tenant_id)
            there = build.generation == (current.name if current else None) if tenant_id \
                else await self.generations.exists(build.generation)
            if same and there and not restart:
                self.note(f"continuing the rebuild of generation {build.generation} "
                          f"({build.embedded} turns embedded before)")
                return build, True
            if not same and not restart:
                self.note(f"starting over: the unfinished rebuild was for {build.model} ({build.dimension}-d)"
                          f"{' of tenant ' + build.tenant_id if build.tenant_id else ''}")
            if build.tenant_id is None and (current is None or build.generation != current.name):
                await self.generations.drop(build.generation)
            await self.builds.abandon(target)
        name = current.name if tenant_id and current else await self.generations.next_name()
        build = IndexBuild(name, model, dim, tenant_id, await self.source.watermark())
        await self.builds.save(target, build)
        return build, False

    def _check_tenant_repair(self, current: Generation | None, tenant_id: str) -> Generation:
        model, dim = self.embedder.name, self.embedder.dimension
        if current is None:
            raise IndexUnavailable("there is no index to repair one tenant of: rebuild every tenant (without --tenant)")
        if current.dimension != dim or current.model not in (None, model):
            raise IndexUnavailable(
                f"a one-tenant rebuild keeps the index's model ({current.model or 'unrecorded'}, "
                f"{current.dimension}-d); to move to {model} ({dim}-d) rebuild every tenant (without --tenant)")
        if (pid := self.generations.holder()) is not None:
            raise IndexUnavailable(
                f"the embedded vector index is held by a running convmem process (pid {pid}) and a one-tenant "
                "rebuild writes into the generation it serves: stop it, or rebuild every tenant (without "
                "--tenant), which builds aside while it serves")
        return current

    async def _run(self, target: str, tenant_id: str | None, restart: bool) -> RebuildReport:
        started = perf_counter()
        current = await self._serving(target)
        if tenant_id is not None:
            current = self._check_tenant_repair(current, tenant_id)
        build, resumed = await self._begin(target, current, tenant_id, restart)
        report = RebuildReport(build.generation, build.model, 0, 0, 0, 0.0,
                               resumed_from=build.embedded if resumed else 0)
        index = await self.generations.open(build.generation, build.dimension, fresh=not resumed and not tenant_id)
        try:
            if build.state == "building":
                build, report = await self._scan(target, build, index, report)
            mark = await self.source.watermark()
            caught = await catch_up(self.source, index, self.embedder, build.started_at, tenant_id)
            report = replace(report, caught_up=caught)
        finally:
            await index.close()
        generation = Generation(build.generation, build.model, build.dimension)
        if tenant_id is None:
            report = await self._switch(target, current, generation, mark, report)
            if not report.switched:
                return replace(report, seconds=perf_counter() - started)
        else:
            await self.builds.serve(target, generation)
        await self.source.mark_embedded_before(build.started_at, tenant_id)
        return replace(report, seconds=perf_counter() - started)

    async def _scan(self, target: str, build: IndexBuild, index: AsideIndex,
                    report: RebuildReport) -> tuple[IndexBuild, RebuildReport]:
        total = max(build.embedded, await self.source.count_live(build.tenant_id))
        self.progress(build.embedded, total)
        embedded = 0
        while turns := await self.source.live_after(build.cursor, build.tenant_id, self.batch):
            await embed_into(index, self.embedder, turns)
            build = replace(build, cursor=turns[-1].message_id, embedded=build.embedded + len(turns))
            await self.builds.save(target, build)
            embedded += len(turns)
            self.progress(build.embedded, max(total, build.embedded))
        cursor = None  # then the bursts: few, and quick to scan again after an interruption
        while units := await self.source.units_after(cursor, build.tenant_id, self.batch):
            await write_units(index, self.embedder, units)
            cursor = units[-1].unit_id
        removed = await remove_stale(self.source, index, index, build.tenant_id)
        optimizing = perf_counter()
        if build.tenant_id is None:
            await index.optimize()  # here, where nothing is served yet, not in a serving process
        build = replace(build, state="built")
        await self.builds.save(target, build)
        return build, replace(report, embedded=embedded, removed=removed,
                              optimize_seconds=perf_counter() - optimizing)

    async def _switch(self, target: str, current: Generation | None, generation: Generation, mark: datetime,
                      report: RebuildReport) -> RebuildReport:
        pid = self.generations.holder()
        if pid is not None and current is not None and (current.model, current.dimension) != (
                generation.model, generation.dimension):
            return replace(report, waiting=(
                f"generation {generation.name} holds {generation.model} ({generation.dimension}-d) vectors, but the "
                f"running convmem process (pid {pid}) embeds with {current.model or 'another model'} "
                f"({current.dimension}-d) and cannot take it over: stop it, run `convmem index rebuild` again "
                f"(it only catches up and switches), then start it with {generation.model} configured"))
        taken_by = await self.generations.switch(generation, mark)
        await self.builds.serve(target, generation)
        if taken_by is None:
            # Nobody took it over to catch up: whatever was written to the old generation
            # after `mark` (a server's writers, a process that stopped meanwhile) is caught up here.
            report = replace(report, caught_up=report.caught_up + await self._catch_up_serving(generation, mark))
            if current is not None and current.name != generation.name:
                await self.generations.drop(current.name)
        return replace(report, switched=True, taken_over_by=taken_by)

    async def _catch_up_serving(self, generation: Generation, mark: datetime) -> int:
        try:
            index = await self.generations.open(generation.name, generation.dimension, fresh=False)
        except IndexUnavailable:
            return 0  # a process opened it since the switch: it writes there itself
        try:
            caught = await catch_up(self.source, index, self.embedder, mark)
            # Turns purged by retention meanwhile leave no trace to catch up from: look for them.
            await remove_stale(self.source, index, index, None)
            return caught
        finally:
            await index.close()
