"""The embedded index's folder: a folder made before generations becomes generation g1 with
its points, the owner lock names the process holding it and goes when that process does,
and a process configured with another model is told so in one line."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from convmem.adapters.edge_folder import EdgeFolder
from convmem.adapters.edge_generations import ServingEdgeIndex
from convmem.adapters.vectors import EdgeVectorIndex
from convmem.errors import IndexUnavailable
from convmem.ports import MemoryScope, VectorPoint

HOLD = """
import sys, time
from convmem.adapters.edge_folder import EdgeFolder
lock = EdgeFolder(__import__("pathlib").Path(sys.argv[1])).lock()
print("held", flush=True)
sys.stdin.readline()
"""


def entries(folder: Path) -> list[str]:
    return sorted(e.name for e in folder.iterdir())


def point(user: str = "ana") -> VectorPoint:
    pid = uuid.uuid4()
    return VectorPoint(pid, [1.0, 0.0, 0.0, 0.0], {"tenant_id": "t", "user_id": user, "conversation_id": str(pid),
                                                   "message_id": str(pid), "occurred_at": 0.0})


async def test_a_folder_from_before_generations_becomes_g1_with_its_points(tmp_path: Path) -> None:
    old = EdgeVectorIndex(tmp_path, 4)  # how the index was opened before: the folder is the shard
    p = point()
    await old.upsert([p])
    await old.close()

    index = ServingEdgeIndex.open(tmp_path, "model-a", 4)
    try:
        assert index.generation == "g1"
        assert [h.id for h in await index.search([1, 0, 0, 0], MemoryScope("t", "ana"), 5)] == [p.id]
    finally:
        await index.close()
    assert entries(tmp_path) == ["CURRENT", "g1", "owner.lock"]
    assert json.loads((tmp_path / "CURRENT").read_text()) == {
        "generation": "g1", "model": "model-a", "dimension": 4, "caught_up_at": None}


async def test_another_model_is_refused_in_one_line(tmp_path: Path) -> None:
    await (ServingEdgeIndex.open(tmp_path, "model-a", 4)).close()
    with pytest.raises(IndexUnavailable) as refused:
        ServingEdgeIndex.open(tmp_path, "model-b", 8)
    assert str(refused.value) == (
        f"the vector index in {tmp_path} holds vectors of model-a (4-d) but this process embeds with model-b (8-d): "
        "run `convmem index rebuild` to re-embed every turn with model-b, or configure the embedding model the "
        "index was built with")
    assert EdgeFolder(tmp_path).holder() is None  # the refusal let go of the lock


def test_the_owner_lock_names_its_process_and_goes_with_it(tmp_path: Path) -> None:
    folder = EdgeFolder(tmp_path)
    assert folder.holder() is None
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdin=subprocess.PIPE,  # noqa: S603
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        assert folder.holder() == child.pid
        with pytest.raises(IndexUnavailable, match=rf"held by a running convmem process \(pid {child.pid}\)"):
            folder.lock()
    finally:
        child.kill()  # no clean release: the kernel drops the lock with the process
        child.wait()
    assert folder.holder() is None
    folder.lock().release()


def test_generations_are_numbered_past_the_pointer_and_every_folder(tmp_path: Path) -> None:
    folder = EdgeFolder(tmp_path)
    assert folder.next_name() == "g1"
    (tmp_path / "g4").mkdir()
    (tmp_path / "g10").mkdir()
    (tmp_path / "other").mkdir()
    assert folder.generations() == ["g4", "g10"] and folder.next_name() == "g11"
