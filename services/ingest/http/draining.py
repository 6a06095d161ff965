"""The edge's part of stopping a process: once draining begins (SIGTERM), open event streams
and sockets end with a last frame telling clients to reconnect, and new ones are refused
with 503, so the HTTP server has nothing left open and the process exits within its grace
period (a stream otherwise lasts as long as its client, minutes for a browser tab)."""

from __future__ import annotations

import asyncio


class Draining:
    def __init__(self) -> None:
        self._begun = asyncio.Event()

    def begin(self) -> None:
        self._begun.set()

    @property
    def begun(self) -> bool:
        return self._begun.is_set()

    async def wait(self) -> None:
        await self._begun.wait()
