"""Local stand-ins for outside services (the chat model, Meta's Graph API) run as processes of
their own, so their work is not on the event loop of the system being measured."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
from collections.abc import AsyncIterator

import httpx


@contextlib.asynccontextmanager
async def local_server(module: str, *args: str) -> AsyncIterator[str]:
    """`python -m <module> --port P <args>` until the block ends; yields its base URL once
    its /stats answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", module, "--port", str(port), *args],  # noqa: S603, ASYNC220
                            stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(100):
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{base}/stats")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait()
