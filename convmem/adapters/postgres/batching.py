"""One statement for the calls that wait at the same moment. Many conversations are answered
at once; each reply marks itself published and looks itself up, and each of those was a
round trip of its own. A `Batched` call joins the statement about to be sent: the first
caller opens a batch, the callers of the same turn of the event loop join it, and callers
that come while it runs form the next one. Every caller gets its own item's result, or the
statement's error."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Batched(Generic[K, V]):
    def __init__(self, run: Callable[[Sequence[K]], Awaitable[Mapping[K, V]]], max_items: int = 500) -> None:
        self._run = run
        self._max = max_items
        self._waiting: dict[K, list[asyncio.Future[V | None]]] = {}
        self._flushing: asyncio.Task[None] | None = None

    async def __call__(self, item: K) -> V | None:
        """The result for `item` (None when the statement returned nothing for it)."""
        future: asyncio.Future[V | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(item, []).append(future)
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # the callers of this turn of the loop join
        while self._waiting:
            batch = dict(list(self._waiting.items())[: self._max])
            for item in batch:
                del self._waiting[item]
            try:
                found = await self._run(list(batch))
            except BaseException as exc:  # each caller gets the error; the next batch still runs
                for futures in batch.values():
                    for f in futures:
                        if not f.done():
                            f.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    for futures in self._waiting.values():
                        for f in futures:
                            f.cancel()
                    self._waiting.clear()
                    raise
                continue
            for item, futures in batch.items():
                for f in futures:
                    if not f.done():
                        f.set_result(found.get(item))
