"""The embedded index as a serving process holds it (ServingEdgeIndex: the pointer's
generation, swapped for a new one when a rebuild switches the pointer) and as a rebuild
writes it (EdgeGenerations: generations built aside, the pointer switched atomically)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from uuid import UUID

from convmem.adapters.edge_folder import EdgeFolder, OwnerLock, Pointer
from convmem.adapters.vectors import EdgeVectorIndex
from convmem.errors import IndexUnavailable
from convmem.ports import MemoryScope, PointKind, VectorHit, VectorPoint
from convmem.ports.generations import AsideIndex, Generation


def mismatch_message(root: Path, pointer: Pointer, model: str, dimension: int) -> str:
    return (f"the vector index in {root} holds vectors of {pointer.describe()} but this process embeds "
            f"with {model} ({dimension}-d): run `convmem index rebuild` to re-embed every turn with {model}, "
            "or configure the embedding model the index was built with")


class ServingEdgeIndex:
    """The VectorIndex of the process that owns the embedded index (it holds the owner lock
    for its lifetime). Every call goes to the generation open now; `take_over` swaps in
    another one between two calls."""

    def __init__(self, folder: EdgeFolder, lock: OwnerLock, pointer: Pointer, index: EdgeVectorIndex,
                 model: str) -> None:
        self.folder = folder
        self.model = model
        self.dimension = pointer.dimension
        self._lock = lock
        self._generation = pointer.generation
        self._index = index

    @classmethod
    def open(cls, root: Path, model: str, dimension: int) -> ServingEdgeIndex:
        """Lock the folder, resolve the pointer (a new folder gets g1, a folder made before
        generations becomes g1) and open that generation. IndexUnavailable when another
        process holds it or it holds another model's vectors."""
        folder = EdgeFolder(root)
        lock = folder.lock()
        try:
            folder.adopt_legacy()
            pointer = folder.pointer()
            if pointer is None or (pointer.model is None and pointer.dimension == dimension):
                pointer = Pointer(pointer.generation if pointer else folder.next_name(), model, dimension,
                                  pointer.caught_up_at if pointer else None)
                folder.point_to(pointer)
            if (pointer.model, pointer.dimension) != (model, dimension):
                raise IndexUnavailable(mismatch_message(root, pointer, model, dimension))
            return cls(folder, lock, pointer, EdgeVectorIndex(folder.path(pointer.generation), dimension), model)
        except BaseException:
            lock.release()
            raise

    @property
    def generation(self) -> str:
        return self._generation

    @property
    def shard(self) -> EdgeVectorIndex:
        return self._index

    async def take_over(self, generation: str) -> None:
        """Serve `generation` from the next call on; the one served until now is closed
        (after the calls already queued on it) and removed."""
        fresh = await asyncio.to_thread(EdgeVectorIndex, self.folder.path(generation), self.dimension)
        old, old_name = self._index, self._generation
        self._index, self._generation = fresh, generation
        await old.close()
        await asyncio.to_thread(self.folder.remove, old_name)

    async def upsert(self, points: Sequence[VectorPoint]) -> None:
        await self._index.upsert(points)

    async def search(self, vector: Sequence[float], scope: MemoryScope, limit: int,
                     kind: PointKind = "turn") -> list[VectorHit]:
        return await self._index.search(vector, scope, limit, kind)

    async def delete(self, ids: Sequence[UUID]) -> None:
        await self._index.delete(ids)

    async def vectors(self, ids: Sequence[UUID]) -> dict[UUID, list[float]]:
        return await self._index.vectors(ids)

    async def delete_scope(self, scope: MemoryScope) -> None:
        await self._index.delete_scope(scope)

    async def count(self) -> int:
        return await self._index.count()

    async def point_ids(self, tenant_id: str | None, after: str | None, limit: int) -> tuple[list[UUID], str | None]:
        return await self._index.point_ids(tenant_id, after, limit)

    async def close(self) -> None:
        try:
            await self._index.close()
        finally:
            self._lock.release()


class _OwnedShard(EdgeVectorIndex):
    """The serving generation opened for writing by a process that serves nothing (a
    one-tenant rebuild, an optimize): it holds the owner lock until closed."""

    def __init__(self, path: Path, dimension: int, lock: OwnerLock) -> None:
        super().__init__(path, dimension)
        self._lock = lock

    async def close(self) -> None:
        try:
            await super().close()
        finally:
            self._lock.release()


class EdgeGenerations:
    """VectorGenerations over an embedded index's folder."""

    def __init__(self, root: Path) -> None:
        self.folder = EdgeFolder(root)

    @property
    def target(self) -> str:
        return str(self.folder.root.resolve())

    async def current(self) -> Generation | None:
        if self.folder.holder() is None:  # nobody serves it: a folder from before generations can move
            try:
                lock = self.folder.lock()
            except IndexUnavailable:
                pass  # a process started meanwhile: it moves the folder itself
            else:
                try:
                    self.folder.adopt_legacy()
                finally:
                    lock.release()
        pointer = self.folder.pointer()
        return None if pointer is None else Generation(pointer.generation, pointer.model, pointer.dimension)

    async def next_name(self) -> str:
        return self.folder.next_name()

    async def exists(self, name: str) -> bool:
        return (self.folder.path(name) / "edge_config.json").exists()

    async def open(self, name: str, dimension: int, fresh: bool) -> AsideIndex:
        pointer = self.folder.pointer()
        if pointer is not None and pointer.generation == name:
            if fresh:
                raise ValueError(f"refusing to empty the serving generation {name}")
            lock = self.folder.lock()
            try:
                return await asyncio.to_thread(_OwnedShard, self.folder.path(name), dimension, lock)
            except BaseException:
                lock.release()
                raise
        if fresh:
            await asyncio.to_thread(self.folder.remove, name)
        return await asyncio.to_thread(EdgeVectorIndex, self.folder.path(name), dimension)

    async def switch(self, generation: Generation, caught_up_at: datetime) -> int | None:
        self.folder.point_to(Pointer(generation.name, generation.model, generation.dimension, caught_up_at))
        return self.folder.holder()

    async def drop(self, name: str) -> None:
        pointer = self.folder.pointer()
        if pointer is not None and pointer.generation == name:
            raise ValueError(f"refusing to remove the serving generation {name}")
        try:
            lock = self.folder.lock()
        except IndexUnavailable:
            return  # a process serves the index: it removes the generations it leaves behind
        try:
            await asyncio.to_thread(self.folder.remove, name)
        finally:
            lock.release()

    def holder(self) -> int | None:
        return self.folder.holder()
