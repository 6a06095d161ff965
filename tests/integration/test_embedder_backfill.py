"""The local embedder on a backfill: with no question waiting, its buckets run on every core;
the vectors are the ones a single run gives, in the texts' order."""

from __future__ import annotations

import math

from convmem.adapters.embedder import INTERACTIVE_TEXTS, OnnxEmbedder


def _close(a: list[float], b: list[float]) -> bool:
    return math.isclose(sum(x * y for x, y in zip(a, b, strict=True)), 1.0, abs_tol=1e-4)


async def test_a_backfill_runs_its_buckets_at_once_and_keeps_each_texts_vector() -> None:
    embedder = OnnxEmbedder(threads=1, remember=0, cores=2)
    assert embedder.backfill_runs == 2
    texts = [("short " * (i % 7 + 1)) + f"text number {i}" for i in range(300)]  # several length buckets
    alone = embedder.embed_sync(texts)
    together = await embedder.embed(texts)  # no question asked lately: a backfill
    assert len(together) == len(texts) and all(_close(a, b) for a, b in zip(alone, together, strict=True))
    # A question (a few texts) makes the next batches keep a core to spare, with the same vectors.
    await embedder.embed(["where did I park?"][:INTERACTIVE_TEXTS])
    again = await embedder.embed(texts[:100])
    assert all(_close(a, b) for a, b in zip(alone[:100], again, strict=True))
