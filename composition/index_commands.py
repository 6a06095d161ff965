"""`convmem index rebuild` and `convmem index optimize`: the adapters the rebuild runs over
(Postgres, the configured embedder, the embedded folder or the Qdrant server), a progress
bar, and one line of outcome."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

from composition.resources import Resources, edge_root
from convmem.adapters.edge_folder import EdgeFolder
from convmem.adapters.edge_generations import EdgeGenerations
from convmem.adapters.postgres import PostgresStorage
from convmem.adapters.postgres.rebuild import PgIndexBuilds, PgTurnSource
from convmem.adapters.qdrant_generations import QdrantGenerations
from convmem.adapters.vectors import EdgeVectorIndex
from convmem.errors import IndexUnavailable
from convmem.migrations import migrate
from convmem.ports.generations import VectorGenerations
from convmem.settings import ConfigError, VectorSettings, load
from services.indexer.rebuilding import Rebuild, RebuildReport

WAITING = 3  # exit code: built, not switched (a running process embeds with another model)


def rebuild_settings(model: str | None, dimension: int | None) -> VectorSettings:
    overrides: dict[str, Any] = {}
    if model is not None:
        overrides["embedding_model"] = model
    if dimension is not None:
        overrides["embedding_dim"] = dimension
    settings = load(VectorSettings, **overrides)
    if (model or dimension) and settings.embedding_base_url is None:
        raise ConfigError("--model and --dimension choose a model behind CONVMEM_EMBEDDING_BASE_URL (an "
                          "OpenAI-compatible /embeddings endpoint), which is not set; the bundled local model "
                          "needs neither")
    return settings


def generations_for(settings: VectorSettings) -> VectorGenerations:
    if settings.qdrant_url is None:
        return EdgeGenerations(edge_root(settings))
    from qdrant_client import AsyncQdrantClient

    key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
    return QdrantGenerations(AsyncQdrantClient(url=str(settings.qdrant_url), api_key=key, timeout=60),
                             settings.qdrant_collection)


async def run_rebuild(tenant: str | None = None, model: str | None = None, dimension: int | None = None,
                      restart: bool = False, batch: int = 512, settings: VectorSettings | None = None,
                      quiet: bool = False) -> int:
    from tqdm import tqdm

    settings = settings or rebuild_settings(model, dimension)
    url = settings.database_url.get_secret_value()
    await migrate(url)
    res = Resources()
    await res.open_storage(url, max_size=4)
    generations = generations_for(settings)
    # This process serves nothing: the model may use every core (and remembers nothing).
    embedder = res.open_embedder(settings, remember=0, threads=settings.embedding_threads or os.cpu_count())
    storage = res.storage
    assert isinstance(storage, PostgresStorage)
    pool = storage.pool
    bar = tqdm(unit="turn", desc="rebuild", file=sys.stderr, disable=quiet, dynamic_ncols=True)

    def progress(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
        if bar.n == 0 and done:
            bar.initial = done  # turns an earlier run embedded do not count towards this run's rate
        bar.update(done - bar.n)

    rebuild = Rebuild(PgTurnSource(pool), PgIndexBuilds(pool, url), generations, embedder, batch=batch,
                      note=lambda text: bar.write(f"convmem index rebuild: {text}", file=sys.stderr),
                      progress=progress)
    try:
        report = await rebuild.run(tenant, restart)
    except asyncio.CancelledError:
        bar.close()
        print("convmem index rebuild: interrupted; run it again to continue where it stopped", file=sys.stderr)
        raise
    finally:
        bar.close()
        close = getattr(generations, "close", None)
        if close is not None:
            await close()
        await res.close()
    print(describe(report, tenant))
    if report.waiting:
        print(f"convmem index rebuild: {report.waiting}", file=sys.stderr)
        return WAITING
    return 0


def describe(report: RebuildReport, tenant: str | None) -> str:
    rate = report.embedded / report.seconds if report.seconds else 0.0
    what = f"tenant {tenant} in generation {report.generation}" if tenant else f"generation {report.generation}"
    line = (f"rebuilt {what} ({report.model}): {report.embedded} turn(s) embedded in {report.seconds:.1f} s "
            f"({rate:.0f} turns/s; {report.optimize_seconds:.1f} s of it optimizing), {report.caught_up} caught up, "
            f"{report.removed} stale point(s) removed")
    if report.resumed_from:
        line += f"; continued after {report.resumed_from} turn(s) embedded before"
    if report.switched:
        line += "; now serving" + (f" (the running process, pid {report.taken_over_by}, takes it over)"
                                   if report.taken_over_by else "")
    return line


async def run_optimize(settings: VectorSettings | None = None, wait_s: float = 900.0) -> int:
    """Optimize the embedded index: here when no process serves it, else by asking the
    process that does (it optimizes a copy in a child process and takes it over)."""
    settings = settings or load(VectorSettings)
    if settings.qdrant_url is not None:
        print("a Qdrant server optimizes its collections itself: nothing to do")
        return 0
    generations = EdgeGenerations(edge_root(settings))
    current = await generations.current()
    if current is None:
        print("there is no embedded vector index yet: nothing to optimize")
        return 0
    folder = generations.folder
    if folder.holder() is None:
        try:
            shard = await generations.open(current.name, current.dimension, fresh=False)
        except IndexUnavailable:
            pass  # a process started meanwhile: ask it
        else:
            try:
                assert isinstance(shard, EdgeVectorIndex)
                before = await shard.segments()
                started = time.perf_counter()
                await shard.optimize()
                after = await shard.segments()
            finally:
                await shard.close()
            print(_optimized(current.name, before, after, time.perf_counter() - started))
            return 0
    return await _ask_owner(folder, wait_s)


async def _ask_owner(folder: EdgeFolder, wait_s: float) -> int:
    pid = folder.holder()
    folder.request_optimize()
    deadline = time.monotonic() + wait_s
    while (answer := folder.optimize_answer()) is None:
        if time.monotonic() > deadline:
            print(f"convmem index optimize: the running convmem process (pid {pid}) did not answer within "
                  f"{wait_s:.0f} s", file=sys.stderr)
            return 1
        await asyncio.sleep(0.2)
    if "error" in answer:
        print(f"convmem index optimize: the running process (pid {pid}) failed: {answer['error']}", file=sys.stderr)
        return 1
    print(_optimized(answer["generation"], tuple(answer["before"]), tuple(answer["after"]), answer["seconds"])
          + f"; by the running process (pid {answer['pid']}), on a copy it now serves")
    return 0


def _optimized(generation: str, before: tuple[int, ...], after: tuple[int, ...], seconds: float) -> str:
    return (f"optimized generation {generation} in {seconds:.1f} s: {before[0]} -> {after[0]} segment(s), "
            f"{before[1]} -> {after[1]} point(s), {before[2]} -> {after[2]} in an HNSW graph")
