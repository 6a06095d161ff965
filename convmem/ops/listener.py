"""The ops listener of processes that do not run the ingest edge: GET /metrics, /healthz and
/readyz on CONVMEM_OPS_PORT, for Prometheus and the orchestrator's probes. The same answers
as the edge's (convmem.ops.probes); nothing else is served here."""

from __future__ import annotations

import asyncio
import socket

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from convmem.ops.probes import Probes, live_answer, ready_answer
from convmem.settings import ConfigError
from convmem.telemetry import metrics


def ops_app(probes: Probes) -> Starlette:
    async def scrape(_: Request) -> Response:
        return Response(await probes.scrape(), media_type=metrics.CONTENT_TYPE)

    async def healthz(_: Request) -> JSONResponse:
        status, body = await live_answer(probes)
        return JSONResponse(body, status_code=status)

    async def readyz(_: Request) -> JSONResponse:
        status, body = await ready_answer(probes.checks)
        return JSONResponse(body, status_code=status)

    return Starlette(routes=[Route("/metrics", scrape), Route("/healthz", healthz), Route("/readyz", readyz)])


class OpsServer:
    """uvicorn serving `ops_app` on a socket bound here, so a port in use fails start-up with
    a message naming the setting (uvicorn would exit the process); `port` 0 takes a free port."""

    def __init__(self, probes: Probes, host: str, port: int) -> None:
        # log_config=None: uvicorn's own logging setup would bypass the process's JSON pipeline.
        config = uvicorn.Config(ops_app(probes), host=host, port=port, log_level="warning", log_config=None,
                                access_log=False, lifespan="off", timeout_keep_alive=5)
        self._server = uvicorn.Server(config)
        self._host, self._port = host, port
        self._socket: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self._host, self._port))
        except OSError as exc:
            sock.close()
            raise ConfigError(f"invalid configuration: CONVMEM_OPS_HOST/CONVMEM_OPS_PORT {self._host}:{self._port} "
                              f"cannot be listened on ({exc.strerror}); give each process on a host its own "
                              "port, or 0 for any free one") from exc
        self._socket = sock
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started and not self._task.done():
            await asyncio.sleep(0.02)

    @property
    def port(self) -> int:
        assert self._socket is not None
        return int(self._socket.getsockname()[1])

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
        if self._socket is not None:
            self._socket.close()
