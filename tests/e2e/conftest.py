"""The operator's command line, for the end-to-end tests that drive it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from composition.cli import main
from tests.conftest import GROUP_PREFIX
from tests.services import Endpoints


class Cli:
    """`convmem ...` in this process (in a thread: it runs its own event loop), its standard
    output captured, configured as an operator's shell would be."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    async def __call__(self, *argv: str) -> tuple[int, str]:
        self.capsys.readouterr()
        code = await asyncio.to_thread(main, list(argv))
        return code, self.capsys.readouterr().out

    async def json(self, *argv: str) -> Any:
        code, out = await self(*argv, "--json")
        assert code == 0, out
        return json.loads(out)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, endpoints: Endpoints) -> Cli:
    monkeypatch.setenv("CONVMEM_KAFKA_BOOTSTRAP", endpoints.kafka_bootstrap)
    monkeypatch.setenv("CONVMEM_DATABASE_URL", endpoints.database_url)
    monkeypatch.setenv("CONVMEM_GROUP_PREFIX", GROUP_PREFIX)
    return Cli(capsys)
