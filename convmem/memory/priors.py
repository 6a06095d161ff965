"""What a ranking learns from where a turn sits, after the retrievers scored its words: the
turns around it, the person who said it, the session it belongs to and when it was said.
Plain functions over scores keyed by turn; the retriever decides which of them run."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from uuid import UUID

from contracts import TurnRecorded
from convmem.ports import Speaker
from convmem.ports.records import NAMED_LINE

Place = tuple[UUID, int]  # (conversation, seq)

# Questions about the present state of something ("where do I live now?") want the newest of
# several statements: the older ones were true once.
_PRESENT = re.compile(
    r"\b(now|currently|current|these days|nowadays|at the moment|at present|still|anymore|any more|latest|"
    r"most recent(?:ly)?|newest|today)\b", re.IGNORECASE)


def asks_about_now(question: str) -> bool:
    return _PRESENT.search(question) is not None


_WORDS = re.compile(r"[^\W\d_]{3,}")


def substance(text: str) -> float:
    """How much a turn can say: 1 from three words of three letters or more, less below that.
    A reaction ("lol", "omg cutest", an emoji) answers nothing, whatever it sits beside."""
    return min(1.0, len(_WORDS.findall(NAMED_LINE.sub("", text, count=1))) / 3)


def spread_to_neighbours(scores: Mapping[UUID, float], turns: Mapping[UUID, TurnRecorded],
                         near: Iterable[TurnRecorded], after: float, before: float) -> dict[UUID, float]:
    """A turn is raised towards the score of the turn just before it by `after` when that
    turn asks something (the turn may be its answer), and towards the turn just after it
    (which may explain it) by `before`, never past them, in proportion to its substance.
    Measured: after a statement, the next turn is an acknowledgement ("Got it!") or, in a
    chat of short lines, a reaction ("lol", "😂"), and lifting those crowds out other hits.
    Turns that no retriever found but that sit next to a strong hit enter the ranking this
    way: "The lemon tart, easily!" follows the question that matched."""
    # The scored turns first, in their order (ties keep the fused ranking's order), then the
    # turns that only sit beside them.
    candidates = {i: turns[i] for i in scores if i in turns} | {t.message_id: t for t in near}
    by_place: dict[Place, UUID] = {(t.conversation_id, t.seq): i for i, t in candidates.items()}
    out: dict[UUID, float] = {}
    for i, t in candidates.items():
        own = scores.get(i, 0.0)
        before_id = by_place.get((t.conversation_id, t.seq - 1), _NONE)
        prev = scores.get(before_id, 0.0) if before_id in candidates and "?" in candidates[before_id].text else 0.0
        nxt = scores.get(by_place.get((t.conversation_id, t.seq + 1), _NONE), 0.0)
        lift = max(after * max(0.0, prev - own), before * max(0.0, nxt - own))
        out[i] = own + (substance(t.text) * lift if lift > 0 else 0.0)
    return out


_NONE = UUID(int=0)


def prefer_speakers(scores: dict[UUID, float], turns: Mapping[UUID, TurnRecorded], speakers: Iterable[Speaker],
                    others: float) -> None:
    """The turns of the people a question names keep their score; anyone else's are scaled by
    `others` (a preference, not a filter: the answer may be the other person's reply)."""
    named = list(speakers)
    for i, t in turns.items():
        if i in scores and named and not any(s.said(t) for s in named):
            scores[i] *= others


def prefer_strong_sessions(scores: dict[UUID, float], turns: Mapping[UUID, TurnRecorded], weight: float,
                           head: int = 20) -> None:
    """A session (conversation) whose turns keep coming up is probably where the topic was
    discussed: each turn gains up to `weight` of its score by its session's share of the
    evidence in the head of the ranking (the sum of its hits' scores, relative to the best
    session's)."""
    ranked = sorted(scores, key=scores.__getitem__, reverse=True)[:head]
    mass: dict[UUID, float] = defaultdict(float)
    for i in ranked:
        if i in turns:
            mass[turns[i].conversation_id] += scores[i]
    top = max(mass.values(), default=0.0)
    if top <= 0:
        return
    for i, t in turns.items():
        if i in scores:
            scores[i] *= 1.0 + weight * mass.get(t.conversation_id, 0.0) / top


def prefer_recent(scores: dict[UUID, float], turns: Mapping[UUID, TurnRecorded], weight: float) -> None:
    """Newer turns gain up to `weight` of their score, by their place between the oldest and
    the newest candidate."""
    times = [t.occurred_at.timestamp() for i, t in turns.items() if i in scores]
    if len(times) < 2 or max(times) == min(times):
        return
    lo, span = min(times), max(times) - min(times)
    for i, t in turns.items():
        if i in scores:
            scores[i] *= 1.0 + weight * (t.occurred_at.timestamp() - lo) / span
