"""`convmem run all` on more than one core: the consumer groups that need no vector index
(recording turns, delivery statuses, conversation upkeep) run in a second process, so that
they use the second core instead of the event loop that answers. The embedded index keeps
its one owner: the first process, which runs the HTTP edge, embedding, the replies and
retention. Both processes consume as the same groups as a single `run all` would (a group's
partitions are consumed by one of them), so nothing about delivery changes.

The companion is started and stopped by its parent, ends with it (the kernel sends it
SIGTERM when the parent dies, even by SIGKILL) and is started again if it stops on its own."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Mapping, Sequence

import structlog

from composition.roles import consumer_groups

log = structlog.get_logger("convmem.runtime")

# Groups (without the prefix) whose handlers read and write Postgres and Kafka only.
INDEX_FREE_GROUPS = ("indexer.record-inbound", "indexer.record-replies", "indexer.statuses", "responder.upkeep")
COMPANION_ROLES = ("indexer", "responder")
_PR_SET_PDEATHSIG = 1
READY = b"convmem-companion-ready"


def split_groups(roles: Sequence[str], group_prefix: str) -> tuple[list[str], list[str]]:
    """(the parent's groups, the companion's) of these roles, named without the prefix; the
    companion's list is empty when the roles leave it nothing to do."""
    names = list(dict.fromkeys(g.removeprefix(f"{group_prefix}.") for g, _ in consumer_groups(roles, group_prefix)))
    theirs = [g for g in names if g in INDEX_FREE_GROUPS]
    return [g for g in names if g not in theirs], theirs


def processes_for(setting: int | None) -> int:
    """How many processes `run all` uses: as set (CONVMEM_RUN_ALL_PROCESSES), else one."""
    return setting if setting is not None else 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, between fork and exec
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Companion:
    """The second process of `run all`: `python -m composition.companion GROUP,...`."""

    def __init__(self, groups: Sequence[str], env: Mapping[str, str] | None = None, restart_after_s: float = 1.0) -> None:
        self.groups = list(groups)
        # Its probes and /metrics on the ops port when one is set, else on any free port:
        # beside the parent's edge, a default port would collide between two `run all`s.
        self._env = {**os.environ, "CONVMEM_OPS_PORT": os.environ.get("CONVMEM_OPS_PORT", "0"), **(env or {})}
        self._restart_after_s = restart_after_s
        self._proc: asyncio.subprocess.Process | None = None
        self._watch: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    async def start(self, ready_within_s: float = 120.0) -> None:
        """Start it and return once it consumes (it says so on its stdout), so that the
        caller's own start means the whole of `run all` is up."""
        await self._spawn()
        assert self._proc is not None and self._proc.stdout is not None
        try:
            line = await asyncio.wait_for(self._proc.stdout.readline(), ready_within_s)
        except TimeoutError:
            line = b""
        if line.strip() != READY:
            log.error("companion_not_ready", returncode=self._proc.returncode, groups=self.groups)
        self._watch = asyncio.create_task(self._watching(), name="companion-watch")

    async def _spawn(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "composition.companion", ",".join(self.groups), env=self._env,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, preexec_fn=_die_with_parent)

    async def _watching(self) -> None:
        while not self._stopping:
            assert self._proc is not None and self._proc.stdout is not None
            while await self._proc.stdout.read(65536):  # drained: a full pipe would stall it
                pass
            code = await self._proc.wait()
            if self._stopping:
                return
            log.error("companion_exited", returncode=code, groups=self.groups)
            await asyncio.sleep(self._restart_after_s)
            if not self._stopping:
                await self._spawn()

    async def stop(self, grace_s: float = 20.0) -> None:
        """SIGTERM, then SIGKILL after `grace_s` (its in-flight turns are redelivered)."""
        self._stopping = True
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), grace_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


def main(argv: list[str] | None = None) -> None:
    from composition.runtime import run_roles

    groups = [g for g in (argv or sys.argv[1:])[0].split(",") if g]

    def started() -> None:
        sys.stdout.buffer.write(READY + b"\n")
        sys.stdout.flush()

    asyncio.run(run_roles(COMPANION_ROLES, groups=groups, vectors=False, started=started))


if __name__ == "__main__":
    main()
