"""The messaging-app evaluation set (bench/chats.py) has the shape of the chats it stands for:
bursts seconds apart, long days, lowercase display names asked about under other spellings,
labelled evidence of every kind, and lines that rarely repeat."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from itertools import pairwise

from bench.chats import KINDS, generate_chats


def test_the_chat_set_is_seeded_varied_and_labelled() -> None:
    data = generate_chats(seed=3, pairs=3)
    assert generate_chats(seed=3, pairs=3).questions == data.questions  # seeded: the same set every run
    turns = {t.external_id: t for u in data.users for s in u.sessions for t in s}
    assert all(q.evidence and set(q.evidence) <= set(turns) for q in data.questions)
    assert set(Counter(q.kind for q in data.questions)) == set(KINDS)
    texts = [t.text for t in turns.values()]
    assert len(set(texts)) > 0.5 * len(texts)  # composed, not a handful of templates
    assert max(len(s) for u in data.users for s in u.sessions) >= 100  # long days
    assert all(t.speaker == t.speaker.lower() for t in turns.values() if t.speaker)  # display names as apps show them
    gaps = [(datetime.fromisoformat(b.occurred_at) - datetime.fromisoformat(a.occurred_at)).total_seconds()
            for u in data.users for s in u.sessions for a, b in pairwise(s) if a.speaker == b.speaker]
    assert sum(g <= 30 for g in gaps) > 0.5 * len(gaps)  # one person's lines come in bursts
    # Questions name people otherwise than the chat shows them, and write dates in numbers.
    shown = {t.speaker for t in turns.values()}
    assert any(not any(s and s.split()[0] in q.question.lower() for s in shown) for q in data.questions)
    assert any(any(c.isdigit() for c in q.question) and ("." in q.question or "/" in q.question)
               for q in data.questions if q.kind == "date")
