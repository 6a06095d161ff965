"""The embedded index's generations. Under the index's folder: one sub-folder per generation
(g1, g2, ...), a pointer file (CURRENT) naming the serving one with the embedding model its
vectors come from, and an owner lock held by the one process that serves it. A rebuild
writes a new generation nobody holds and switches the pointer atomically; the owner, if one
runs, notices and takes the new generation over (composition.index_upkeep)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from convmem.errors import IndexUnavailable

POINTER = "CURRENT"
OWNER = "owner.lock"
OPTIMIZE_REQUEST = "optimize.request"
OPTIMIZE_RESULT = "optimize.result"
# What a shard folder holds: a folder made before generations is a shard itself.
SHARD_ENTRIES = ("edge_config.json", "segments", "wal")
_NAME = re.compile(r"^g(\d+)$")


@dataclass(frozen=True)
class Pointer:
    generation: str
    model: str | None  # None: a folder made before generations recorded it
    dimension: int
    caught_up_at: datetime | None = None  # the switch's writer embedded everything written before this

    def describe(self) -> str:
        return f"{self.model or 'an unrecorded model'} ({self.dimension}-d)"


class OwnerLock:
    """An exclusive flock on the owner file, with our pid in it. The kernel drops it when
    the process dies, so a crashed owner never leaves the index locked."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = None


class EdgeFolder:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, generation: str) -> Path:
        return self.root / generation

    def generations(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted((p.name for p in self.root.iterdir() if _NAME.match(p.name) and p.is_dir()),
                      key=lambda n: int(n[1:]))

    def next_name(self) -> str:
        known = [int(n[1:]) for n in self.generations()]
        if (p := self.pointer()) is not None and (m := _NAME.match(p.generation)):
            known.append(int(m.group(1)))
        return f"g{max(known, default=0) + 1}"

    def pointer(self) -> Pointer | None:
        try:
            raw: dict[str, Any] = json.loads((self.root / POINTER).read_text())
        except FileNotFoundError:
            return None
        at = raw.get("caught_up_at")
        return Pointer(raw["generation"], raw.get("model"), int(raw["dimension"]),
                       datetime.fromisoformat(at) if at else None)

    def point_to(self, pointer: Pointer) -> None:
        """Replace the pointer atomically (write aside, fsync, rename, fsync the folder):
        a reader sees the old generation or the new one, never a torn file."""
        body = {"generation": pointer.generation, "model": pointer.model, "dimension": pointer.dimension,
                "caught_up_at": pointer.caught_up_at.isoformat() if pointer.caught_up_at else None}
        _write_atomically(self.root / POINTER, json.dumps(body))

    def lock(self) -> OwnerLock:
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / OWNER, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise IndexUnavailable(self.held_message(self.holder())) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        return OwnerLock(fd)

    def holder(self) -> int | None:
        """The pid of the process holding the owner lock, or None when none does."""
        try:
            fd = os.open(self.root / OWNER, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            return int(text) if text.isdigit() else -1
        finally:
            os.close(fd)  # also drops the shared lock when it was taken
        return None

    def held_message(self, pid: int | None) -> str:
        who = f"pid {pid}" if pid and pid > 0 else "pid unknown"
        return (f"the embedded vector index in {self.root} is held by a running convmem process ({who}); "
                "stop it, or run with CONVMEM_QDRANT_URL set to a Qdrant server")

    def adopt_legacy(self) -> None:
        """A folder that is a shard itself (made before generations) becomes generation g1.
        Call with the owner lock held: the files move within the folder (renames)."""
        if (self.root / POINTER).exists() or not (self.root / "edge_config.json").exists():
            return
        dimension = _shard_dimension(self.root / "edge_config.json")
        target = self.path("g1")
        target.mkdir(parents=True, exist_ok=True)
        for name in SHARD_ENTRIES:
            if (self.root / name).exists():
                os.rename(self.root / name, target / name)
        self.point_to(Pointer("g1", None, dimension))

    def remove(self, generation: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self.path(generation))

    # On-demand optimize of a served index: the CLI asks, the owner answers (index_upkeep).
    def request_optimize(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.root / OPTIMIZE_RESULT).unlink()
        _write_atomically(self.root / OPTIMIZE_REQUEST, str(os.getpid()))

    def take_optimize_request(self) -> bool:
        try:
            (self.root / OPTIMIZE_REQUEST).unlink()
            return True
        except FileNotFoundError:
            return False

    def answer_optimize(self, result: dict[str, Any]) -> None:
        _write_atomically(self.root / OPTIMIZE_RESULT, json.dumps(result))

    def optimize_answer(self) -> dict[str, Any] | None:
        try:
            answer: dict[str, Any] = json.loads((self.root / OPTIMIZE_RESULT).read_text())
        except FileNotFoundError:
            return None
        return answer


def _write_atomically(path: Path, text: str) -> None:
    aside = path.with_name(f".{path.name}.{os.getpid()}")
    with open(aside, "w") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.replace(aside, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _shard_dimension(config: Path) -> int:
    """The dense vector size a shard was created with (edge_config.json)."""
    vectors: dict[str, Any] = json.loads(config.read_text()).get("vectors") or {}
    params: dict[str, Any] = vectors.get("", vectors)
    return int(params["size"])
