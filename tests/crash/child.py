"""A convmem role as a child process of a crash test: its consumer groups are new and start
at the end of the topics, its output goes to a log file, and it can be killed outright
(SIGKILL) or asked to stop (SIGTERM, then killed after 30 s)."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from composition.roles import consumer_groups
from convmem.delivery.provisioning import start_groups_at_end


class Child:
    def __init__(self, roles: Sequence[str], run: Sequence[str], env: dict[str, str], log: Path,
                 bootstrap: str, group_prefix: str) -> None:
        # Any free port for its /metrics and probes: crash tests (and other suites on the
        # machine) run several processes side by side.
        self.roles, self.run, self.env, self.log = list(roles), list(run), {"CONVMEM_OPS_PORT": "0", **env}, log
        self.bootstrap, self.group_prefix = bootstrap, group_prefix
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        await start_groups_at_end(self.bootstrap, consumer_groups(self.roles, self.group_prefix))
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "composition.cli", "run", *self.run, env=self.env, stdout=out,
                stderr=asyncio.subprocess.STDOUT)

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout=30)
            except TimeoutError:
                await self.kill()
