"""A third evaluation set, shaped like messaging-app chats between two people over months:
what the held-out real chats have and the other two sets lack (issue 18).

- Bursts: a person sends several short lines seconds apart ("made banana bread tonight",
  "lol", "it actually worked"); the fact, the reactions and the follow-up are separate lines,
  and a fact may be split over two lines of one burst ("we got a puppy!!!" ... "his name is
  biscuit"). Days run from a few dozen lines to 100-200; one conversation per day.
- Names as people write them: lowercase display names ("katia", "leila ✨"), the friend calls
  them by a nickname ("kat"), and questions use another spelling ("Katya", "Mohammed" for
  "muhamad", "Alexander" for "aleksandr").
- Dates as numbers (day-first "14.02.2024", month-first "2/14" when the day is past 12, ISO),
  seasons ("in summer 2023") and ranges ("between 3 and 10 March 2024"), with look-alike
  events (other lunches, trips, purchases) on other days.
- Category questions answered by instances ("What did Katya cook?" -> "banana bread", "a
  lentil curry"), evidence said by either person (a friend's "happy birthday kat!!"), emoji,
  slang, typos and photos without captions among the lines.

Question kinds: when, date (a numeric date), season (a season or a range), category,
multi-hop (two facts joined by a person or a place), burst (a fact split over one burst's
lines) and other-speaker (the evidence is the friend's line). Everything comes from
bench/chat_pools.py and a seeded random generator; nothing is written or tuned per question.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from bench import chat_pools as P
from bench.evalset import EvalSet, Question, Turn, UserHistory

KINDS = ("when", "date", "season", "category", "multi-hop", "burst", "other-speaker")
SEASONS = {12: "winter", 1: "winter", 2: "winter", 3: "spring", 4: "spring", 5: "spring", 6: "summer", 7: "summer",
           8: "summer", 9: "autumn", 10: "autumn", 11: "autumn"}


@dataclass
class _Burst:
    day: int
    lines: list[tuple[int, str]]  # (speaker 0 or 1, text)
    evidence_at: list[int]
    questions: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, question, answer)
    group: str | None = None  # bursts of one group answer their questions together


def _on(d: date) -> str:
    return f"{d.day} {d:%B %Y}"


class _Chat:
    """One two-person chat: who they are, the days they wrote on, and the facts placed in them."""

    def __init__(self, rng: random.Random, people: tuple[tuple, tuple], days: int, start: datetime) -> None:  # type: ignore[type-arg]
        self.rng, self.people = rng, people
        span = rng.randint(150, 300)  # weeks to months
        offsets = sorted(rng.sample(range(span), days))
        self.days = [start + timedelta(days=o) for o in offsets]
        # Some long days (100-200 lines), most shorter.
        self.sizes = [rng.randint(100, 200) if rng.random() < 0.3 else rng.randint(20, 70) for _ in range(days)]
        self.bursts: list[_Burst] = []

    def day(self) -> int:
        return self.rng.randrange(len(self.days))

    def distinct_days(self, k: int) -> list[int]:
        return sorted(self.rng.sample(range(len(self.days)), k))

    def date(self, d: int) -> date:
        return self.days[d].date()

    def asked(self, me: int) -> str:
        """How a question names someone: another spelling, the proper first name, or a nickname."""
        _, proper, nicks, variants = self.people[me]
        r = self.rng.random()
        if r < 0.55:
            return str(self.rng.choice(variants))
        if r < 0.85:
            return str(proper)
        return str(self.rng.choice(nicks)).capitalize()

    def nick(self, me: int) -> str:
        """What the friend calls `me` in the chat."""
        return str(self.rng.choice(self.people[me][2]))

    def chatty(self, text: str, typo: float = 0.1) -> str:
        """A line as typed: maybe a typo, maybe an emoji or slang, maybe a capital."""
        r = self.rng
        if r.random() < typo:
            text = _typo(r, text)
        if r.random() < 0.25:
            text += " " + r.choice(P.EMOJI)
        elif r.random() < 0.1:
            text = r.choice(P.SLANG) + " " + text
        if r.random() < 0.2:
            text = text[:1].upper() + text[1:]
        return text


def _typo(r: random.Random, text: str) -> str:
    words = text.split(" ")
    long = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
    if not long:
        return text
    i = r.choice(long)
    w, j = words[i], r.randrange(1, len(words[i]) - 1)
    words[i] = r.choice([w[:j] + w[j + 1] + w[j] + w[j + 2:], w[:j] + w[j + 1:], w[:j] + w[j] + w[j:]])
    return " ".join(words)


def _numeric(r: random.Random, d: date) -> str:
    """A day as people type it in numbers: day-first with dots, month-first or day-first with
    slashes only where the day (past 12) makes the order plain, or ISO."""
    forms = [f"{d.day:02d}.{d.month:02d}.{d.year}", f"{d.day}.{d.month}.{d.year}", f"{d:%Y-%m-%d}"]
    if d.day > 12:
        forms += [f"{d.month}/{d.day}", f"{d.month}/{d.day}/{d.year}", f"{d.day}/{d.month}/{d.year}"]
    return r.choice(forms)


def _range(r: random.Random, d: date) -> str:
    a, b = d - timedelta(days=r.randint(1, 4)), d + timedelta(days=r.randint(1, 4))
    if a.month == b.month and r.random() < 0.5:
        return f"between {a.day} and {b.day} {b:%B %Y}"
    if r.random() < 0.5:
        return f"between {a:%B} {a.day} and {b:%B} {b.day}, {b.year}"
    return f"from {a.day:02d}.{a.month:02d}.{a.year} to {b.day:02d}.{b.month:02d}.{b.year}"


def _facts_of(c: _Chat, me: int) -> None:
    r = c.rng
    other = 1 - me

    def x() -> str:
        return c.asked(me)

    # Category questions answered by instances on several days.
    for category in r.sample(list(P.CATEGORIES), 2):
        pool = P.CATEGORIES[category]
        items = r.sample(pool["items"], 3)
        for d, item in zip(c.distinct_days(3), items, strict=True):
            line = r.choice(pool["lines"]).format(i=item)
            follow = [(me, c.chatty(r.choice(P.REACTIONS), 0))] if r.random() < 0.5 else []
            reply = [(other, c.chatty(r.choice([*P.REACTIONS, "pics or it didn't happen", "send pics", "jealous"])))]
            c.bursts.append(_Burst(d, [(me, c.chatty(line)), *follow, *reply], [0], group=f"{me}-{category}"))
        c.bursts[-1].questions = [("category", r.choice(pool["questions"]).format(x=x()), ", ".join(items))]

    # Meals with someone on a day: the question names the day in numbers.
    people = r.sample(P.OTHERS, 4)
    for i, (d, who) in enumerate(zip(c.distinct_days(4), people, strict=True)):
        meal, place = r.choice(P.MEALS), r.choice(P.PLACES)
        line = r.choice(P.MEAL_LINES).format(m=meal, p=who, pl=place)
        template, answer = r.choice([(f"Who did {{x}} have {meal} with on {{d}}?", who),
                                     (f"Who was {{x}} out for {meal} with on {{d}}?", who),
                                     (f"Where did {{x}} go for {meal} on {{d}}?", place)])
        asked = [("date", template.format(x=x(), d=_numeric(r, c.date(d))), answer)] if i < 2 else []
        c.bursts.append(_Burst(d, [(me, c.chatty(line)), (other, c.chatty(r.choice(P.ASKS).format(o=who)))], [0], asked))

    # Trips: asked by season, when that season of that year had one trip only.
    trips = list(zip(c.distinct_days(3), r.sample(P.CITIES, 3), strict=True))
    seasons = [(SEASONS[c.date(d).month], c.date(d).year + (1 if c.date(d).month == 12 else 0)) for d, _ in trips]
    for (d, city), season in zip(trips, seasons, strict=True):
        lines = [(me, c.chatty(r.choice(P.TRIP_LINES).format(c=city))), (me, r.choice(P.MEDIA).format(num=r.randint(1000, 9999)))]
        asked = []
        if seasons.count(season) == 1:
            name, year = season
            word = r.choice([name, "fall"] if name == "autumn" else [name])
            asked = [("season", r.choice([f"Where did {{x}} travel in {word} {year}?", f"Which city did {{x}} visit in the {word} of {year}?",
                                          f"Where was {{x}} on holiday in {word} {year}?"]).format(x=x()), city)]
        c.bursts.append(_Burst(d, lines, [0], asked))

    # Purchases: asked with a range of dates.
    for i, (d, thing) in enumerate(zip(c.distinct_days(3), r.sample(P.BUYS, 3), strict=True)):
        asked = [("season", r.choice(["What did {x} buy {w}?", "What did {x} treat themselves to {w}?", "What did {x} order {w}?"])
                  .format(x=x(), w=_range(r, c.date(d))), thing)] if i == 0 else []
        c.bursts.append(_Burst(d, [(me, c.chatty(r.choice(P.BUY_LINES).format(b=thing))),
                                   (other, c.chatty(r.choice(P.REACTIONS)))], [0], asked))

    # One-off events, asked "when"; half the time the friend asked about it first.
    for what, lines in r.sample(P.EVENTS, 3):
        d = c.day()
        said = [(me, c.chatty(r.choice(lines), 0.05)), (me, c.chatty(r.choice(P.REACTIONS), 0))]
        question = r.choice(["When did {x} {w}?", "On what date did {x} {w}?", "What day did {x} {w}?"]).format(x=x(), w=what)
        if r.random() < 0.5:
            asks = ["{n} so?? how did it go", "{n} any news??", "sooo {n}??", "how was it {n}"]
            said = [(other, c.chatty(r.choice(asks).format(n=c.nick(me)), 0)), *said]
            c.bursts.append(_Burst(d, said, [1], [("when", question, _on(c.date(d)))]))
        else:
            c.bursts.append(_Burst(d, said, [0], [("when", question, _on(c.date(d)))]))

    # Said by the friend: the answer is in the other person's line.
    ask, friend_lines, replies = r.choice(P.OTHER_SAID)
    d = c.day()
    gift, setup = r.choice(P.GIFTS), r.choice(P.OTHERS)
    line = r.choice(friend_lines).format(n=c.nick(me), g=gift, p=setup)
    answer = _on(c.date(d)) if "birthday" in ask else gift if "gift" in ask else setup
    c.bursts.append(_Burst(d, [(other, c.chatty(line, 0)), (me, c.chatty(r.choice(replies)))], [0],
                           [("other-speaker", ask.format(x=x(), f=c.asked(other)), answer)]))

    # A fact split over one burst: the thing, a photo, then its name.
    (young, species), name = r.choice(P.PETS), r.choice(P.PET_NAMES)
    d = c.day()
    c.bursts.append(_Burst(d, [(me, c.chatty(r.choice(P.SPLIT_OPENERS).format(p=young), 0)),
                               (me, r.choice(P.MEDIA).format(num=r.randint(1000, 9999))),
                               (me, c.chatty(r.choice(P.SPLIT_NAMES).format(name=name), 0)),
                               (other, c.chatty(r.choice(["STOP", "omg cutest", "i need to meet them", "😍😍😍"]), 0))],
                           [0, 2], [("burst", r.choice(["What is the name of {x}'s {s}?", "What did {x} call the new {s}?"])
                                     .format(x=x(), s=species), name)]))

    # Two facts joined by a person: a relative's city, then their visit.
    rel, who, city = r.choice(P.RELATIVES), r.choice(P.OTHERS), r.choice(P.CITIES)
    d1, d2 = c.distinct_days(2)
    c.bursts.append(_Burst(d1, [(me, c.chatty(f"my {rel} {who} just moved to {city}")), (me, "wild")], [0], group=f"{me}-rel"))
    c.bursts.append(_Burst(d2, [(me, c.chatty(r.choice([f"{who} is staying with us this weekend", f"{who} visiting tmrw, cleaning like mad",
                                                        f"picking {who} up from the airport"]))),
                                (other, c.chatty(r.choice(P.REACTIONS)))], [0],
                           [("multi-hop", r.choice(["Where does the {r} who visited {x} live?",
                                                    "Which city is {x}'s visiting {r} from?"]).format(r=rel, x=x()), city)],
                           group=f"{me}-rel"))
    # ... and a place: someone met on a trip.
    d, city2, friend = c.day(), r.choice(P.CITIES), r.choice(P.OTHERS)
    c.bursts.append(_Burst(d, [(me, c.chatty(r.choice(P.TRIP_LINES).format(c=city2))),
                               (me, c.chatty(f"{friend} lives here now!! dinner with her later")),
                               (other, c.chatty(r.choice(P.REACTIONS)))], [0, 1],
                           [("multi-hop", r.choice(["Who did {x} have dinner with in {c}?",
                                                    "Which friend did {x} meet up with in {c}?"]).format(x=x(), c=city2.title()),
                             friend)]))


def _filler(c: _Chat, speaker: int) -> list[str]:
    """One burst of chat: one to four short lines of one person."""
    r, o = c.rng, c.nick(1 - speaker)
    out = []
    for _ in range(r.choice([1, 1, 2, 2, 3, 4])):
        x = r.random()
        if x < 0.25:
            text = r.choice(P.REACTIONS)
        elif x < 0.42:
            text = r.choice(P.LOGISTICS).format(t=r.choice(P.TIMES), d=r.choice(P.DAYS), d2=r.choice(P.DAYS))
        elif x < 0.58:
            text = f"{r.choice(P.SUBJECTS)} {r.choice(P.PREDICATES)}"
        elif x < 0.68:
            text = r.choice(P.OPINIONS).format(a=r.choice(P.ADJECTIVES))
        elif x < 0.8:
            text = r.choice(P.ASKS).format(o=r.choice(P.OTHERS))
        elif x < 0.87:
            text = r.choice(P.MEDIA).format(num=r.randint(1000, 9999))
        else:
            cat = P.CATEGORIES[r.choice(list(P.CATEGORIES))]
            text = r.choice(P.LOOKALIKES).format(
                r=r.choice(P.RELATIVES), i=r.choice(cat["items"]), o=r.choice(P.OTHERS), c=r.choice(P.CITIES),
                b=r.choice(P.BUYS), m=r.choice(P.MEALS), pl=r.choice(P.PLACES), p=r.choice(P.PETS)[0])
        if r.random() < 0.12 and not text.startswith(("<", "[", "IMG")):
            text = f"{o} {text}" if r.random() < 0.5 else f"{text} {o}"
        out.append(text if text.startswith(("<", "[", "IMG")) else c.chatty(text, 0.15))
    return out


def generate_chats(seed: int = 18, pairs: int = 8, days: int = 12, start: datetime | None = None) -> EvalSet:
    rng = random.Random(seed)
    start = start or datetime(2023, 2, 1, tzinfo=UTC)
    users, questions = [], []
    chat: _Chat | None = None
    for i in range(pairs):
        owner = f"chat-{i:02d}"
        chat = _Chat(rng, tuple(rng.sample(P.PEOPLE, 2)), days, start + timedelta(days=rng.randint(0, 200)))  # type: ignore[arg-type]
        _facts_of(chat, 0)
        _facts_of(chat, 1)
        history = UserHistory(owner)
        evidence: dict[int, list[str]] = {}
        for d, begins in enumerate(chat.days):
            blocks: list[_Burst | None] = [None] * max(4, chat.sizes[d] // 3)
            for burst in (b for b in chat.bursts if b.day == d):
                blocks.insert(rng.randint(1, len(blocks)), burst)
            n = 0
            lines: list[tuple[int, str, _Burst | None, int]] = []
            opener = rng.randint(0, 1)
            lines.append((opener, chat.chatty(rng.choice(P.OPENERS).format(n=chat.nick(1 - opener)), 0), None, -1))
            speaker = 1 - opener
            for block in blocks:
                if block is None:
                    lines += [(speaker, t, None, -1) for t in _filler(chat, speaker)]
                    speaker = 1 - speaker if rng.random() < 0.8 else speaker
                else:
                    lines += [(who, t, block, k) for k, (who, t) in enumerate(block.lines)]
            closer = rng.randint(0, 1)
            lines.append((closer, chat.chatty(rng.choice(P.CLOSERS).format(n=chat.nick(1 - closer)), 0), None, -1))
            # Seconds between the lines of a burst, minutes between bursts, the day within ~15 hours.
            clock = begins + timedelta(hours=rng.randint(7, 10), minutes=rng.randint(0, 59))
            gap = 15 * 3600 / max(1, len(lines))
            turns: list[Turn] = []
            for n, (who, text, block, k) in enumerate(lines):
                ext = f"{owner}-d{d:02d}-m{n:04d}"
                turns.append(Turn("user" if who == 0 else "assistant", text, clock.isoformat(), ext, chat.people[who][0]))
                same = n + 1 < len(lines) and lines[n + 1][0] == who
                clock += timedelta(seconds=rng.randint(2, 25) if same else rng.uniform(0.3, 2.5) * gap)
                if block is not None and k in block.evidence_at:
                    evidence.setdefault(id(block), []).append(ext)
            history.sessions.append(turns)
        groups: dict[str, list[str]] = {}
        for b in chat.bursts:
            if b.group:
                groups.setdefault(b.group, []).extend(evidence.get(id(b), []))
        for b in chat.bursts:
            for kind, question, answer in b.questions:
                ev = groups[b.group] if b.group else evidence.get(id(b), [])
                questions.append(Question(f"{owner}-q{len(questions):04d}", owner, kind, question, ev, answer))
        users.append(history)
    last = max(t for u in users for s in u.sessions for t in (s[-1].occurred_at,)) if users else start.isoformat()
    return EvalSet(seed, (datetime.fromisoformat(last) + timedelta(days=3)).isoformat(), users, questions)


def main() -> None:
    import argparse
    import json
    from dataclasses import asdict
    from pathlib import Path

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=18)
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--out", type=Path, default=Path("bench/out/chats.json"))
    ap.add_argument("--show", type=int, default=0, help="print this many lines of the first chat and sample questions")
    args = ap.parse_args()
    data = generate_chats(args.seed, args.pairs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(asdict(data), indent=1, ensure_ascii=False))
    kinds: dict[str, int] = {}
    for q in data.questions:
        kinds[q.kind] = kinds.get(q.kind, 0) + 1
    texts = [t.text for u in data.users for s in u.sessions for t in s]
    print(f"{len(data.users)} chats, {data.turns()} lines ({len(set(texts))} distinct), {len(data.questions)} questions "
          f"{kinds} -> {args.out}")
    if args.show:
        for t in [t for s in data.users[0].sessions for t in s][: args.show]:
            print(f"{t.occurred_at[:19]} {t.speaker}: {t.text}")
        for q in data.questions[:: max(1, len(data.questions) // 25)]:
            print(f"[{q.kind}] {q.question} -> {q.answer} {q.evidence}")


if __name__ == "__main__":
    main()
