"""Hybrid retrieval over one user's turns: full-text and vector candidates fused into one
ranking, then refined by optional stages. Each stage is a switch, so the benchmark can
measure what each one is worth. Plain functions over ports: no Kafka, no SQL.

Stages (see README, Memory):
- confidence: fuse by each retriever's confidence instead of by rank alone (convmem.memory.fusion);
- context: a turn is read with the turn before it, the question it may answer;
- neighbours: the turns around a strong hit enter the ranking and travel with it;
- speakers: a person the question names is taken out of the query and their turns preferred;
- sessions: a turn gains from the other hits of its session;
- temporal: a time in the question ("in May", "last week") becomes a window, and a question
  about the present ("where do I live now?") prefers the newest statements;
- rerank: the head re-scored by the question's cosine to each hit's window of turns;
- rewrite: with a chat model, both retrievers also search with the model's restatement;
- units: bursts (consecutive turns of one speaker) searched as one text by both retrievers,
  each unit hit counting for its members;
- expand: pseudo-relevance feedback (convmem.memory.expansion): the head of the first ranking
  lends its words to full text and its vectors to the question's."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from contracts import TurnRecorded, is_offline_notice
from convmem.memory import priors
from convmem.memory.expansion import feedback_terms, rocchio
from convmem.memory.fusion import rrf_fusion, standout
from convmem.memory.rewriting import rewrite
from convmem.memory.speakers import named_speakers, without_names
from convmem.memory.stages import STAGES, Mode, Stages
from convmem.memory.timeframe import DateReading, TimeFrame, parse_timeframe, within_history
from convmem.memory.units import unit_members
from convmem.ports import ChatModel, Embedder, MemoryReader, MemoryScope, Speaker, VectorIndex

__all__ = ["STAGES", "Mode", "Retriever", "SearchHit", "SearchResult", "Stages", "rrf_fusion"]


@dataclass(frozen=True)
class SearchHit:
    turn: TurnRecorded
    score: float
    # Which retrievers found it and at what rank (1-based), e.g. {"fts": 3, "vector": 1}; a
    # turn that entered beside a hit has none.
    ranks: Mapping[str, int] = field(default_factory=dict)
    similarity: float | None = None  # cosine to the question, when the vector retriever saw it
    context: list[TurnRecorded] = field(default_factory=list)  # neighbouring turns, in order


@dataclass(frozen=True)
class SearchResult:
    hits: list[SearchHit]
    timeframe: TimeFrame | None
    speakers: list[str] = field(default_factory=list)  # people the question named


@dataclass
class Retriever:
    memory: MemoryReader
    index: VectorIndex
    embedder: Embedder
    default: Stages = field(default_factory=Stages)
    rewriter: ChatModel | None = None  # the chat model that restates questions (rewrite stage)
    dates: DateReading = field(default_factory=DateReading)  # how the tenant's users write dates
    depth: int = 50  # candidates taken from each retriever before fusion
    rerank_depth: int = 30
    neighbour_radius: int = 1
    # How far a turn is pulled towards a stronger neighbour's score (0: not at all, 1: level):
    # the turn after a hit is likelier its answer than the turn before is its question.
    after_weight: float = 0.8
    before_weight: float = 0.5
    context_weight: float = 0.5  # what the previous turn's words count for, against a turn's own
    speaker_others: float = 0.7  # score kept by turns of people the question did not name
    session_weight: float = 0.3
    recency_weight: float = 0.3
    # A vector hit votes fully once its cosine stands this share of the way from the median
    # candidate to a perfect match (the confidence stage).
    standout_margin: float = 0.25
    # A unit hit votes fully for the member its retriever ranks best (or its first), and this
    # share for each other member: "lol" in the burst that holds the fact is rarely evidence.
    unit_member_weight: float = 0.5
    feedback_depth: int = 3  # the head of the first ranking that the expand stage learns from
    feedback_terms: int = 6
    feedback_weight: float = 0.5  # a vote from an expanded search, against one from the question

    async def search(self, query: str, scope: MemoryScope, k: int, now: datetime,
                     stages: Stages | None = None) -> SearchResult:
        st = stages or self.default
        query = query.strip()
        if not query:
            return SearchResult([], None)
        depth = max(self.depth, k * 2)
        # The question's vector is computed while its speakers are looked up: most questions
        # name nobody, and then it is the vector needed.
        vector = asyncio.ensure_future(self.embedder.embed([query])) if st.mode != "fts" else None
        # The question's time is read once, off the event loop (dateparser may take milliseconds).
        reading = asyncio.ensure_future(asyncio.to_thread(parse_timeframe, query, now, self.dates)) \
            if st.temporal else None
        try:
            speakers = await named_speakers(self.memory, scope, query) if st.speakers else []
            frame = await reading if reading is not None else None
        except BaseException:
            for pending in (vector, reading):
                if pending is not None:
                    pending.cancel()
            raise
        if frame is not None and not frame.anchored and (last := await self.memory.last_said_at(scope)) is not None:
            frame = within_history(frame, last)
        named = [s.name for s in speakers]
        text = (without_names(query, [s.called or s.name for s in speakers]) or query) if named else query
        if vector is not None and text != query:
            vector.cancel()
            vector = asyncio.ensure_future(self.embedder.embed([text]))
        scopes = {"": scope}
        # An explicit range from the caller wins; a range read from the question only adds a list.
        if frame is not None and scope.since is None and scope.until is None:
            scopes["@time"] = scope.between(frame.since, frame.until)
        restated = asyncio.ensure_future(rewrite(self.rewriter, text)) \
            if st.rewrite and self.rewriter is not None else None
        lists, confidence, similarity = await self._retrieve(text, vector, scopes, depth, st)
        if restated is not None and (again := await restated) is not None:
            more = asyncio.ensure_future(self.embedder.embed([again])) if st.mode != "fts" else None
            extra_lists, extra_confidence, extra_similarity = await self._retrieve(
                again, more, {"+rewrite": scopes[""]}, depth, st)
            lists |= extra_lists
            confidence |= extra_confidence
            for i, cosine in extra_similarity.items():  # a hit's similarity stays its cosine to the question
                similarity.setdefault(i, cosine)
        if st.expand:
            first = rrf_fusion(lists, item_weights=confidence if st.confidence else None)
            fed, fed_confidence = await self._expand(text, vector, scope, list(first)[:self.feedback_depth],
                                                     depth, st)
            lists |= fed
            confidence |= fed_confidence
        if st.confidence:
            fused = rrf_fusion(lists, item_weights=confidence)
        else:  # plain fusion: full-text hits still vote with their coverage, as before the stage existed
            fused = rrf_fusion(lists, item_weights={n: c for n, c in confidence.items() if n.startswith("fts")}
                               if st.mode == "hybrid" else None)
        if not fused:
            return SearchResult([], frame, named)
        pool = list(fused)[: max(depth, k)]
        turns, near = await self._candidates(scope, pool, st)
        scores = self._rank(query, {i: fused[i] for i in pool if i in turns}, turns, near, speakers, st)
        order = sorted(scores, key=scores.__getitem__, reverse=True)
        by_place = {(t.conversation_id, t.seq): t for t in [*near, *turns.values()] if not is_offline_notice(t)}
        context = {i: [by_place[(turns[i].conversation_id, s)] for s in
                       range(turns[i].seq - self.neighbour_radius, turns[i].seq + self.neighbour_radius + 1)
                       if s != turns[i].seq and (turns[i].conversation_id, s) in by_place] for i in order[:k * 2]}
        if st.rerank and st.mode != "fts":
            [qvec] = await self.embedder.embed([text])
            order = await self._rerank(qvec, order, turns, context, scores)
        positions = {name: {item: rank for rank, item in enumerate(ids, 1)} for name, ids in lists.items()}
        hits = [SearchHit(turns[i], round(scores[i], 6),
                          {name: pos[i] for name, pos in positions.items() if i in pos}, similarity.get(i),
                          context.get(i, []) if st.neighbours else []) for i in order[:k]]
        return SearchResult(hits, frame, named)

    async def _candidates(self, scope: MemoryScope, pool: list[UUID], st: Stages
                          ) -> tuple[dict[UUID, TurnRecorded], list[TurnRecorded]]:
        """The pool's turns as Postgres has them now (the source of truth: a turn deleted since
        it was indexed does not come back) and, for the neighbours and rerank stages, the
        turns around them, read in the same round trip."""
        if not (st.neighbours or st.rerank):
            return {t.message_id: t for t in await self.memory.turns_by_ids(scope, pool)}, []
        near = [t for t in await self.memory.neighbourhood(scope, pool, self.neighbour_radius)
                if scope.admits(t.tenant_id, t.user_id, t.conversation_id, t.occurred_at)]
        wanted = set(pool)
        return {t.message_id: t for t in near if t.message_id in wanted}, near

    def _rank(self, query: str, scores: dict[UUID, float], turns: dict[UUID, TurnRecorded],
              near: list[TurnRecorded], speakers: list[Speaker], st: Stages) -> dict[UUID, float]:
        """The fused scores, refined by where each turn sits (convmem.memory.priors); turns that came
        in beside a hit join `turns`."""
        if st.neighbours:
            scores = priors.spread_to_neighbours(scores, turns, near, self.after_weight, self.before_weight)
            turns |= {t.message_id: t for t in near if t.message_id not in turns}
        # An offline-mode notice is not something said: it may come in beside a hit, never as one.
        scores = {i: s for i, s in scores.items() if not is_offline_notice(turns[i])}
        if speakers:
            priors.prefer_speakers(scores, turns, speakers, self.speaker_others)
        if st.temporal and priors.asks_about_now(query):
            priors.prefer_recent(scores, turns, self.recency_weight)
        if st.sessions:
            priors.prefer_strong_sessions(scores, turns, self.session_weight)
        return scores

    async def _retrieve(self, text: str, vector: Awaitable[list[list[float]]] | None,
                        scopes: Mapping[str, MemoryScope], depth: int, st: Stages
                        ) -> tuple[dict[str, list[UUID]], dict[str, dict[UUID, float]], dict[UUID, float]]:
        """Both retrievers under every scope, at once: ranked ids, each item's confidence
        (full text: query coverage; vectors: how far its cosine stands out), and cosines."""
        lists: dict[str, list[UUID]] = {}
        confidence: dict[str, dict[UUID, float]] = {}
        similarity: dict[UUID, float] = {}

        async def by_text(name: str, sc: MemoryScope) -> None:
            found = await self.memory.search_text(sc, text, depth, self.context_weight if st.context else 0.0)
            lists[name], confidence[name] = [i for i, _ in found], dict(found)

        async def by_vector(name: str, sc: MemoryScope, qvec: Sequence[float]) -> None:
            found = await self.index.search(qvec, sc, depth)
            sims = [h.score for h in found]
            lists[name] = [h.id for h in found]
            confidence[name] = dict(zip(lists[name], standout(sims, self.standout_margin), strict=True))
            similarity.update((h.id, h.score) for h in found)

        # Per unit list: (members, score on the turns' scale, confidence).
        units: dict[str, list[tuple[list[UUID], float, float]]] = {}

        async def units_by_text(name: str, sc: MemoryScope) -> None:
            units[name] = [(members, score, score) for members, score in await self.memory.search_units(sc, text, depth)]

        async def units_by_vector(name: str, sc: MemoryScope, qvec: Sequence[float]) -> None:
            found = await self.index.search(qvec, sc, depth, kind="unit")
            weights = standout([h.score for h in found], self.standout_margin)
            units[name] = [([UUID(m) for m in h.payload.get("members", [])], h.score, w)
                           for h, w in zip(found, weights, strict=True)]

        async def vectors(embedding: Awaitable[list[list[float]]]) -> None:
            [qvec] = await embedding
            await asyncio.gather(*(by_vector("vector" + s, sc, qvec) for s, sc in scopes.items()),
                                 *(units_by_vector("vector_units" + s, sc, qvec) for s, sc in scopes.items()
                                   if st.units))

        jobs = [by_text("fts" + s, sc) for s, sc in scopes.items()] if st.mode in ("hybrid", "fts") else []
        if st.units and st.mode in ("hybrid", "fts"):
            jobs += [units_by_text("fts_units" + s, sc) for s, sc in scopes.items()]
        if vector is not None:
            jobs.append(vectors(vector))
        await asyncio.gather(*jobs)
        for name, found in units.items():
            own = name.replace("_units", "")
            scored = confidence.get(own, {}) if own.startswith("fts") else {
                i: similarity[i] for i in lists.get(own, []) if i in similarity}
            lists[name], confidence[name] = unit_members(found, lists.get(own, []), scored, self.unit_member_weight)
        # In a fixed order whichever finished first: fusion breaks ties by the first list's ranks.
        return {n: lists[n] for n in sorted(lists)}, confidence, similarity

    async def _expand(self, text: str, vector: Awaitable[list[list[float]]] | None, scope: MemoryScope,
                      head: list[UUID], depth: int, st: Stages
                      ) -> tuple[dict[str, list[UUID]], dict[str, dict[UUID, float]]]:
        """Both retrievers again, learning from the head of the first ranking: full text with
        the words the head adds, vectors with the question's vector moved towards the head's."""
        lists: dict[str, list[UUID]] = {}
        confidence: dict[str, dict[UUID, float]] = {}
        if not head:
            return lists, confidence

        async def by_text() -> None:
            said = {t.message_id: t.text for t in await self.memory.turns_by_ids(scope, head)}
            terms = feedback_terms(text, [said[i] for i in head if i in said], self.feedback_terms)
            if terms:
                found = await self.memory.search_text(scope, " ".join(terms), depth)
                lists["fts_expanded"] = [i for i, _ in found]
                confidence["fts_expanded"] = {i: c * self.feedback_weight for i, c in found}

        async def by_vector(embedding: Awaitable[list[list[float]]]) -> None:
            [qvec] = await embedding
            stored = await self.index.vectors(head)
            found = await self.index.search(rocchio(qvec, [stored[i] for i in head if i in stored], 0.5), scope,
                                            depth)
            lists["vector_expanded"] = [h.id for h in found]
            confidence["vector_expanded"] = {
                h.id: w * self.feedback_weight
                for h, w in zip(found, standout([h.score for h in found], self.standout_margin), strict=True)}

        jobs = [by_text()] if st.mode in ("hybrid", "fts") else []
        if vector is not None:
            jobs.append(by_vector(vector))
        await asyncio.gather(*jobs)
        return lists, confidence

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


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


def _unit(v: Sequence[float]) -> list[float]:
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v] if n else list(v)
