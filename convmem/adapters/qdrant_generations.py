"""A Qdrant server's generations: the collection name every process uses is an alias of
`<alias>__g<n>`; a rebuild fills a new collection and switches the alias in one request,
so searches move from the old generation to the new one between two requests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from convmem.adapters.vectors import GENERATION_SEPARATOR, QdrantServerIndex, create_collection
from convmem.ports.generations import AsideIndex, Generation


class QdrantGenerations:
    def __init__(self, client: Any, alias: str) -> None:
        self._client = client
        self._alias = alias

    @property
    def target(self) -> str:
        return f"qdrant:{self._alias}"

    def _collection(self, name: str) -> str:
        return f"{self._alias}{GENERATION_SEPARATOR}{name}"

    async def _serving_collection(self) -> str | None:
        for alias in (await self._client.get_aliases()).aliases:
            if alias.alias_name == self._alias:
                return str(alias.collection_name)
        return self._alias if await self._client.collection_exists(self._alias) else None

    async def current(self) -> Generation | None:
        collection = await self._serving_collection()
        if collection is None:
            return None
        info = await self._client.get_collection(collection)
        name = collection.removeprefix(f"{self._alias}{GENERATION_SEPARATOR}") if collection != self._alias else ""
        return Generation(name, None, int(info.config.params.vectors.size))  # the model is recorded in Postgres

    async def next_name(self) -> str:
        taken = [c.name for c in (await self._client.get_collections()).collections]
        numbers = [int(n[len(self._collection("g")):]) for n in taken
                   if n.startswith(self._collection("g")) and n[len(self._collection("g")):].isdigit()]
        return f"g{max(numbers, default=0) + 1}"

    async def exists(self, name: str) -> bool:
        return bool(await self._client.collection_exists(self._collection(name)))

    async def open(self, name: str, dimension: int, fresh: bool) -> AsideIndex:
        collection = self._collection(name) if name else self._alias
        if fresh:
            if await self._client.collection_exists(collection):
                await self._client.delete_collection(collection)
            await create_collection(self._client, collection, dimension)
        return _Aside(self._client, collection, dimension)

    async def switch(self, generation: Generation, caught_up_at: datetime) -> int | None:
        """One request moves the alias. A collection made before generations carries the
        alias's own name: it is deleted first (searches fail between the two requests)."""
        from qdrant_client import models as m

        ops: list[Any] = []
        serving = await self._serving_collection()
        if serving == self._alias:
            await self._client.delete_collection(self._alias)
        elif serving is not None:
            ops.append(m.DeleteAliasOperation(delete_alias=m.DeleteAlias(alias_name=self._alias)))
        ops.append(m.CreateAliasOperation(create_alias=m.CreateAlias(
            collection_name=self._collection(generation.name), alias_name=self._alias)))
        await self._client.update_collection_aliases(ops)
        return None

    async def drop(self, name: str) -> None:
        if name and await self._client.collection_exists(self._collection(name)):
            await self._client.delete_collection(self._collection(name))

    def holder(self) -> int | None:
        return None  # a server takes writes from every process: nobody holds it

    async def close(self) -> None:
        await self._client.close()


class _Aside(QdrantServerIndex):
    async def close(self) -> None:
        """The client is the generations' to close."""
