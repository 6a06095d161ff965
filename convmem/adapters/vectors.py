"""Vector index adapters: Qdrant Edge embedded in the process (the default), and a Qdrant
server through qdrant-client. Both build their filter from a MemoryScope in one function,
so no search can run without tenant and user."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

from convmem.errors import IndexUnavailable, RetryableError
from convmem.ports import MemoryScope, PointKind, VectorHit, VectorPoint

T = TypeVar("T")
SCOPE_FIELDS = ("tenant_id", "user_id", "conversation_id")
# Which kind of point: a unit (burst) carries kind "unit"; a turn carries none (points written
# before units existed neither), so a turn search excludes units rather than requiring "turn".
KIND_FIELD = "kind"


def scope_terms(scope: MemoryScope) -> dict[str, str]:
    terms = {"tenant_id": scope.tenant_id, "user_id": scope.user_id}
    if scope.conversation_id is not None:
        terms["conversation_id"] = str(scope.conversation_id)
    return terms


def scope_range(scope: MemoryScope) -> dict[str, float] | None:
    """The time part of a scope, as bounds on the `occurred_at` payload (epoch seconds)."""
    bounds = {}
    if scope.since is not None:
        bounds["gte"] = scope.since.timestamp()
    if scope.until is not None:
        bounds["lt"] = scope.until.timestamp()
    return bounds or None


class EdgeVectorIndex:
    """Qdrant Edge (HNSW, payload indexes, WAL) in this process. It allows one open handle
    per shard folder, so exactly one process may own it: run the indexer and responder in
    the same process (`convmem run all`) or point both at a Qdrant server. Its calls hold
    the GIL, so they go through one worker thread and `optimize()` is never called on the
    consume path (it can stall heartbeats for seconds)."""

    def __init__(self, path: Path, dimension: int) -> None:
        import qdrant_edge as qe

        self._qe = qe
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        config = qe.EdgeConfig(vectors=qe.EdgeVectorParams(size=dimension, distance=qe.Distance.Cosine))
        try:
            if any(path.iterdir()):
                self._shard = qe.EdgeShard.load(str(path), config)
            else:
                self._shard = qe.EdgeShard.create(str(path), config)
        except Exception as exc:  # qdrant-edge raises plain Exception; its WAL lock says WouldBlock
            if "WouldBlock" in str(exc):
                raise IndexUnavailable(f"the embedded vector index in {path} is held by another process") from None
            raise
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qdrant-edge")
        # Creating an index that exists is a no-op, so shards made by older versions gain new ones.
        for name in (*SCOPE_FIELDS, KIND_FIELD):
            self._shard.update(qe.UpdateOperation.create_field_index(name, qe.PayloadSchemaType.Keyword))
        self._shard.update(qe.UpdateOperation.create_field_index("occurred_at", qe.PayloadSchemaType.Float))

    async def _call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def _filter(self, scope: MemoryScope, kind: PointKind | None = None) -> Any:
        qe = self._qe
        must = [qe.FieldCondition(key=k, match=qe.MatchValue(v)) for k, v in scope_terms(scope).items()]
        if (bounds := scope_range(scope)) is not None:
            must.append(qe.FieldCondition(key="occurred_at", range=qe.RangeFloat(**bounds)))
        units = [qe.FieldCondition(key=KIND_FIELD, match=qe.MatchValue("unit"))]
        if kind == "unit":
            return qe.Filter(must=must + units)
        return qe.Filter(must=must, must_not=units) if kind == "turn" else qe.Filter(must=must)

    async def upsert(self, points: Sequence[VectorPoint]) -> None:
        if not points:
            return
        qe = self._qe
        op = qe.UpdateOperation.upsert_points([qe.Point(str(p.id), p.vector, p.payload) for p in points])
        await self._call(self._shard.update, op)

    async def search(self, vector: Sequence[float], scope: MemoryScope, limit: int,
                     kind: PointKind = "turn") -> list[VectorHit]:
        qe = self._qe
        req = qe.QueryRequest(limit=limit, query=qe.Query.Nearest(list(vector)),
                              filter=self._filter(scope, kind), with_payload=True)
        points = await self._call(self._shard.query, req)
        return [VectorHit(UUID(str(p.id)), float(p.score), dict(p.payload or {})) for p in points]

    async def delete(self, ids: Sequence[UUID]) -> None:
        if ids:
            await self._call(self._shard.update, self._qe.UpdateOperation.delete_points([str(i) for i in ids]))

    async def vectors(self, ids: Sequence[UUID]) -> dict[UUID, list[float]]:
        if not ids:
            return {}
        records = await self._call(self._shard.retrieve, [str(i) for i in ids], False, True)
        return {UUID(str(r.id)): list(r.vector) for r in records if r.vector is not None}

    async def delete_scope(self, scope: MemoryScope) -> None:
        await self._call(self._shard.update, self._qe.UpdateOperation.delete_points_by_filter(self._filter(scope)))

    async def optimize(self) -> None:
        """Build the HNSW index over what was upserted, merge segments and drop deleted
        points. It holds the GIL throughout (15 s for 60k 384-d points on two cores): for
        rebuilds and processes that serve nothing, never a serving process's loop."""
        await self._call(self._shard.optimize)

    async def point_ids(self, tenant_id: str | None, after: str | None, limit: int) -> tuple[list[UUID], str | None]:
        qe = self._qe
        flt = None if tenant_id is None else qe.Filter(must=[qe.FieldCondition(key="tenant_id",
                                                                             match=qe.MatchValue(tenant_id))])
        records, following = await self._call(self._shard.scroll, qe.ScrollRequest(
            offset=after, limit=limit, filter=flt, with_payload=False, with_vector=False))
        return [UUID(str(r.id)) for r in records], None if following is None else str(following)

    async def segments(self) -> tuple[int, int, int]:
        """Segments, points and points covered by an HNSW index."""
        info = await self._call(self._shard.info)
        return int(info.segments_count), int(info.points_count), int(info.indexed_vectors_count)

    async def copy_to(self, target: Path) -> None:
        """A consistent copy of the shard's files, made between two operations (they all go
        through the one worker thread) after a flush."""
        def copy() -> None:
            self._shard.flush()
            shutil.copytree(self.path, target)

        await self._call(copy)

    async def count(self) -> int:
        return int(await self._call(self._shard.count, self._qe.CountRequest()))

    async def close(self) -> None:
        await self._call(self._shard.flush)
        await self._call(self._shard.close)
        self._pool.shutdown(wait=True)


GENERATION_SEPARATOR = "__"  # a generation's collection: <alias>__g<n>


async def create_collection(client: Any, name: str, dimension: int) -> None:
    """A collection with the payload indexes every search filters on."""
    from qdrant_client import models as m

    await client.create_collection(name, vectors_config=m.VectorParams(size=dimension, distance=m.Distance.COSINE))
    for field in SCOPE_FIELDS:
        await client.create_payload_index(
            name, field, m.KeywordIndexParams(type=m.KeywordIndexType.KEYWORD, is_tenant=field == "tenant_id"))
    await client.create_payload_index(name, "occurred_at", m.PayloadSchemaType.FLOAT)
    await client.create_payload_index(name, KIND_FIELD, m.PayloadSchemaType.KEYWORD)


class QdrantServerIndex:
    """A Qdrant server (or qdrant-client's local mode, which the contract tests use)."""

    def __init__(self, client: Any, collection: str, dimension: int, aliased: bool = False) -> None:
        self._client = client
        self._collection = collection
        self._dimension = dimension
        # The serving index is an alias, so that a rebuild can build a collection aside and
        # switch the alias to it (convmem.adapters.qdrant_generations): a new one starts as
        # the alias of its first generation.
        self._aliased = aliased
        self._ready = False

    @classmethod
    def for_url(cls, url: str, api_key: str | None, collection: str, dimension: int) -> QdrantServerIndex:
        from qdrant_client import AsyncQdrantClient

        return cls(AsyncQdrantClient(url=url, api_key=api_key, timeout=10), collection, dimension, aliased=True)

    @property
    def client(self) -> Any:
        return self._client

    async def _ensure(self) -> None:
        if self._ready:
            return
        from qdrant_client import models as m

        try:
            if not await self._client.collection_exists(self._collection):
                first = f"{self._collection}{GENERATION_SEPARATOR}g1" if self._aliased else self._collection
                await create_collection(self._client, first, self._dimension)
                if self._aliased:
                    await self._client.update_collection_aliases([m.CreateAliasOperation(
                        create_alias=m.CreateAlias(collection_name=first, alias_name=self._collection))])
        except Exception as exc:
            raise RetryableError(f"qdrant unavailable: {type(exc).__name__}") from exc
        self._ready = True

    def _filter(self, scope: MemoryScope, kind: PointKind | None = None) -> Any:
        from qdrant_client import models as m

        must: list[Any] = [m.FieldCondition(key=k, match=m.MatchValue(value=v)) for k, v in scope_terms(scope).items()]
        if (bounds := scope_range(scope)) is not None:
            must.append(m.FieldCondition(key="occurred_at", range=m.Range(**bounds)))
        units: list[Any] = [m.FieldCondition(key=KIND_FIELD, match=m.MatchValue(value="unit"))]
        if kind == "unit":
            return m.Filter(must=must + units)
        return m.Filter(must=must, must_not=units) if kind == "turn" else m.Filter(must=must)

    async def upsert(self, points: Sequence[VectorPoint]) -> None:
        from qdrant_client import models as m

        await self._ensure()
        try:
            await self._client.upsert(self._collection, wait=True, points=[
                m.PointStruct(id=str(p.id), vector=p.vector, payload=p.payload) for p in points])
        except Exception as exc:
            raise RetryableError(f"qdrant upsert failed: {type(exc).__name__}") from exc

    async def search(self, vector: Sequence[float], scope: MemoryScope, limit: int,
                     kind: PointKind = "turn") -> list[VectorHit]:
        await self._ensure()
        try:
            res = await self._client.query_points(self._collection, query=list(vector), limit=limit,
                                                  query_filter=self._filter(scope, kind), with_payload=True)
        except Exception as exc:
            raise RetryableError(f"qdrant search failed: {type(exc).__name__}") from exc
        return [VectorHit(UUID(str(p.id)), float(p.score), dict(p.payload or {})) for p in res.points]

    async def vectors(self, ids: Sequence[UUID]) -> dict[UUID, list[float]]:
        if not ids:
            return {}
        await self._ensure()
        try:
            records = await self._client.retrieve(self._collection, [str(i) for i in ids], with_payload=False,
                                                  with_vectors=True)
        except Exception as exc:
            raise RetryableError(f"qdrant retrieve failed: {type(exc).__name__}") from exc
        return {UUID(str(r.id)): list(r.vector) for r in records if isinstance(r.vector, list)}

    async def delete(self, ids: Sequence[UUID]) -> None:
        from qdrant_client import models as m

        if not ids:
            return
        await self._ensure()
        await self._client.delete(self._collection, points_selector=m.PointIdsList(points=[str(i) for i in ids]))

    async def delete_scope(self, scope: MemoryScope) -> None:
        from qdrant_client import models as m

        await self._ensure()
        try:
            await self._client.delete(self._collection, points_selector=m.FilterSelector(filter=self._filter(scope)))
        except Exception as exc:
            raise RetryableError(f"qdrant delete failed: {type(exc).__name__}") from exc

    async def count(self) -> int:
        """Points in the collection (Qdrant's estimate: exact counts scan the collection)."""
        await self._ensure()
        try:
            return int((await self._client.count(self._collection, exact=False)).count)
        except Exception as exc:
            raise RetryableError(f"qdrant count failed: {type(exc).__name__}") from exc

    async def point_ids(self, tenant_id: str | None, after: str | None, limit: int) -> tuple[list[UUID], str | None]:
        from qdrant_client import models as m

        await self._ensure()
        flt = None if tenant_id is None else m.Filter(must=[m.FieldCondition(key="tenant_id",
                                                                           match=m.MatchValue(value=tenant_id))])
        records, following = await self._client.scroll(self._collection, scroll_filter=flt, limit=limit,
                                                        offset=after, with_payload=False, with_vectors=False)
        return [UUID(str(r.id)) for r in records], None if following is None else str(following)

    async def optimize(self) -> None:
        """Nothing to do: a Qdrant server optimizes its segments in the background."""

    async def close(self) -> None:
        await self._client.close()
