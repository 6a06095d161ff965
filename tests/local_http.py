"""The one way the test fakes of outside services (the chat model, Meta's Graph API, an
identity provider) serve their FastAPI app in process: real HTTP on a free loopback port."""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from fastapi import FastAPI


class LocalServer:
    """Mixed into a fake that defines `app()`; `port` is known once `start()` returned."""

    server: uvicorn.Server | None = None
    task: asyncio.Task[Any] | None = None

    def app(self) -> FastAPI:
        raise NotImplementedError

    @property
    def port(self) -> int:
        assert self.server is not None and self.server.servers
        port: int = self.server.servers[0].sockets[0].getsockname()[1]
        return port

    async def start(self, port: int = 0) -> None:
        """On `port` (0: a free one; a fake restarted on its old port looks like an outage ending)."""
        self.server = uvicorn.Server(uvicorn.Config(self.app(), host="127.0.0.1", port=port, log_level="warning",
                                                    lifespan="off"))
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.task is not None:
            await self.task
