"""Hybrid retrieval over one user's turns: full-text and vector candidates fused by
reciprocal rank fusion, with optional stages (a time window read from the question,
conversational neighbours, a context-window rerank). Each stage is a switch, so the
benchmark can measure what each one is worth. Plain functions over ports: no Kafka, no SQL."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal
from uuid import UUID

from contracts import TurnRecorded
from convmem.ports import Embedder, MemoryReader, MemoryScope, VectorIndex
from convmem.timeframe import TimeFrame, parse_timeframe

Mode = Literal["hybrid", "fts", "vector"]
STAGES = ("temporal", "neighbours", "rerank")
RRF_K = 60  # the constant from Cormack et al.; it damps the head of each list


@dataclass(frozen=True)
class Stages:
    mode: Mode = "hybrid"
    temporal: bool = True
    neighbours: bool = True
    rerank: bool = False

    @classmethod
    def parse(cls, mode: str, stages: str | None, default: Stages | None = None) -> Stages:
        """`stages` is a comma list of STAGES, "none", or None for the default set."""
        if mode not in ("hybrid", "fts", "vector"):
            raise ValueError("mode must be one of hybrid, fts, vector")
        base = default or cls()
        if stages is None:
            return replace(base, mode=mode)  # type: ignore[arg-type]
        wanted = {s.strip() for s in stages.split(",") if s.strip()} - {"none"}
        if unknown := wanted - set(STAGES):
            raise ValueError(f"unknown stage(s): {', '.join(sorted(unknown))}; known: {', '.join(STAGES)}")
        return cls(mode=mode, **{s: s in wanted for s in STAGES})  # type: ignore[arg-type]


@dataclass(frozen=True)
class SearchHit:
    turn: TurnRecorded
    score: float
    # Which retrievers found it and at what rank (1-based), e.g. {"fts": 3, "vector": 1}.
    ranks: Mapping[str, int] = field(default_factory=dict)
    similarity: float | None = None  # cosine to the question, when the vector retriever saw it
    context: list[TurnRecorded] = field(default_factory=list)  # neighbouring turns, in order


@dataclass(frozen=True)
class SearchResult:
    hits: list[SearchHit]
    timeframe: TimeFrame | None


def rrf_fusion(ranked: Mapping[str, Sequence[UUID]], k: int = RRF_K,
               item_weights: Mapping[str, Mapping[UUID, float]] | None = None) -> dict[UUID, float]:
    """Reciprocal rank fusion: each list gives an item weight/(k + rank). Ranks, not scores,
    are fused, so full-text and cosine scores never need a common scale. An item's weight
    defaults to 1; full-text hits carry their query coverage, so a turn that shares only a
    common word with the question cannot outvote the vector retriever's best hits."""
    fused: dict[UUID, float] = defaultdict(float)
    for name, ids in ranked.items():
        weights = (item_weights or {}).get(name, {})
        for rank, item in enumerate(ids, 1):
            fused[item] += weights.get(item, 1.0) / (k + rank)
    return dict(sorted(fused.items(), key=lambda kv: kv[1], reverse=True))


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


@dataclass
class Retriever:
    memory: MemoryReader
    index: VectorIndex
    embedder: Embedder
    default: Stages = field(default_factory=Stages)
    depth: int = 50  # candidates taken from each retriever before fusion
    rerank_depth: int = 30
    neighbour_radius: int = 1
    # How far a turn is pulled towards a stronger neighbour's score (0: not at all, 1: level).
    neighbour_weight: float = 0.5

    async def search(self, query: str, scope: MemoryScope, k: int, now: datetime,
                     stages: Stages | None = None) -> SearchResult:
        st = stages or self.default
        query = query.strip()
        if not query:
            return SearchResult([], None)
        depth = max(self.depth, k * 2)
        lists: dict[str, list[UUID]] = {}
        coverage: dict[str, dict[UUID, float]] = {}
        similarity: dict[UUID, float] = {}
        qvec: list[float] | None = None
        if st.mode in ("hybrid", "vector"):
            [qvec] = await self.embedder.embed([query])
        frame = parse_timeframe(query, now) if st.temporal else None
        scopes = {"": scope}
        # An explicit range from the caller wins; a range read from the question only adds a list.
        if frame is not None and scope.since is None and scope.until is None:
            scopes["@time"] = scope.between(frame.since, frame.until)
        for suffix, sc in scopes.items():
            if st.mode in ("hybrid", "fts"):
                found_text = await self.memory.search_text(sc, query, depth)
                lists["fts" + suffix] = [i for i, _ in found_text]
                coverage["fts" + suffix] = dict(found_text)
            if qvec is not None:
                found = await self.index.search(qvec, sc, depth)
                lists["vector" + suffix] = [h.id for h in found]
                for h in found:
                    similarity[h.id] = h.score
        fused = rrf_fusion(lists, item_weights=coverage if st.mode == "hybrid" else None)
        if not fused:
            return SearchResult([], frame)
        pool = list(fused)[: max(depth, k)]
        # Postgres is the source of truth: a turn deleted since it was indexed does not come back.
        turns = {t.message_id: t for t in await self.memory.turns_by_ids(scope, pool)}
        pool = [i for i in pool if i in turns]
        positions = {name: {item: rank for rank, item in enumerate(ids, 1)} for name, ids in lists.items()}
        ranks = {i: {name: pos[i] for name, pos in positions.items() if i in pos} for i in pool}
        scores = {i: fused[i] for i in pool}
        context: dict[UUID, list[TurnRecorded]] = {}
        if st.neighbours or st.rerank:
            near = await self.memory.neighbours(scope, [(turns[i].conversation_id, turns[i].seq) for i in pool],
                                               self.neighbour_radius)
            by_place = {(t.conversation_id, t.seq): t for t in near}
            for i in pool:
                t = turns[i]
                context[i] = [by_place[(t.conversation_id, s)] for s in
                              range(t.seq - self.neighbour_radius, t.seq + self.neighbour_radius + 1)
                              if s != t.seq and (t.conversation_id, s) in by_place]
        if st.neighbours:
            place_score = {(turns[i].conversation_id, turns[i].seq): fused[i] for i in pool}
            for i in pool:
                t = turns[i]
                best = max((place_score.get((t.conversation_id, t.seq + d), 0.0)
                            for d in range(-self.neighbour_radius, self.neighbour_radius + 1) if d), default=0.0)
                # Pulled part of the way towards a stronger neighbour, never past it: the
                # hit itself stays first and the turn that explains it comes close behind.
                scores[i] = fused[i] + self.neighbour_weight * max(0.0, best - fused[i])
        order = sorted(pool, key=lambda i: scores[i], reverse=True)
        if st.rerank and qvec is not None:
            order = await self._rerank(qvec, order, turns, context, scores)
        hits = [SearchHit(turns[i], round(scores[i], 6), ranks[i], similarity.get(i),
                          context.get(i, []) if st.neighbours else []) for i in order[:k]]
        return SearchResult(hits, frame)

    async def _rerank(self, qvec: Sequence[float], order: list[UUID], turns: Mapping[UUID, TurnRecorded],
                      context: Mapping[UUID, list[TurnRecorded]], scores: dict[UUID, float]) -> list[UUID]:
        """Re-score the head of the list by how close each turn's window (the turn with its
        neighbours) is to the question, and fuse that ranking with the first one. The window's
        vector is the mean of its turns' stored vectors: no text is embedded at query time."""
        head = order[: self.rerank_depth]
        members = {i: [turns[i].message_id, *(c.message_id for c in context.get(i, []))] for i in head}
        stored = await self.index.vectors(list({m for ms in members.values() for m in ms}))
        closeness: dict[UUID, float] = {}
        for i, ids in members.items():
            vecs = [_unit(stored[m]) for m in ids if m in stored]
            closeness[i] = _cosine(qvec, [sum(col) for col in zip(*vecs, strict=True)]) if vecs else -1.0
        by_window = sorted(head, key=closeness.__getitem__, reverse=True)
        refused = rrf_fusion({"first": head, "window": by_window})
        for i, s in refused.items():
            scores[i] = s
        return sorted(head, key=refused.__getitem__, reverse=True) + order[self.rerank_depth:]


def _unit(v: Sequence[float]) -> list[float]:
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v] if n else list(v)
