"""Generates a retrieval evaluation set: long multi-session conversations between users and
an assistant, with facts stated in passing among small talk and look-alike distractors, and
questions whose evidence turns are labelled. Everything comes from the templates and value
pools below and a seeded random generator; nothing is written or tuned by hand per question.

Question kinds:
- single: one fact, asked in other words than it was stated.
- answer: the fact is the user's short answer to the assistant's question (needs the turn before).
- update: a fact that changed; the evidence is the latest statement.
- temporal-range: the same kind of event in several months; the question names the month or
  a relative time ("last month", "three weeks ago").
- when: "when did I ...": the evidence turn carries the date.
- multi-hop: two facts joined by a shared entity; both turns are evidence.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

NAMES = ["Lucia", "Tomas", "Priya", "Kenji", "Amara", "Jonas", "Sofia", "Mateo", "Ingrid", "Omar", "Chloe",
         "Ravi", "Elena", "Felix", "Yara", "Nikolai", "Aisha", "Bruno", "Hana", "Diego", "Freya", "Tariq",
         "Mei", "Lars", "Zoe", "Kofi", "Greta", "Samir", "Ines", "Viktor"]
CITIES = ["Porto", "Lyon", "Krakow", "Osaka", "Nairobi", "Valencia", "Gothenburg", "Montreal", "Adelaide",
          "Cusco", "Tbilisi", "Bergen", "Seville", "Ljubljana", "Hanoi", "Cork", "Bologna", "Tallinn"]
PETS = [("dog", "a beagle"), ("dog", "a border collie"), ("cat", "a tabby"), ("cat", "a Siamese"),
        ("rabbit", "a lop-eared rabbit"), ("parrot", "a grey parrot"), ("tortoise", "a tortoise")]
PET_NAMES = ["Biscuit", "Mango", "Pixel", "Juniper", "Waffles", "Nimbus", "Pepper", "Ziggy", "Clementine",
             "Boomer", "Saffron", "Tofu", "Marble", "Rocket"]
EMPLOYERS = ["Northwind Logistics", "Bluefin Analytics", "Helix Biotech", "Cedar & Stone Architects",
             "Orbital Games", "Lumen Health", "Quarry Robotics", "Ferrow Bank", "Tidewater Energy"]
ROLES = ["data engineer", "product designer", "nurse practitioner", "sales lead", "civil engineer",
         "UX researcher", "accountant", "physiotherapist", "backend developer"]
HOBBIES = ["pottery", "bouldering", "salsa dancing", "birdwatching", "woodworking", "sourdough baking",
           "chess", "kayaking", "watercolour painting", "trail running"]
ALLERGIES = ["peanuts", "shellfish", "penicillin", "cats", "pollen", "lactose", "sesame"]
FOODS = ["ramen", "paella", "pho", "shakshuka", "pierogi", "tacos al pastor", "mushroom risotto", "dal makhani"]
BANDS = ["the Velvet Orchards", "Neon Harbor", "Paper Lanterns", "the Midnight Ferns", "Copper Tides",
         "Glass Animals Tribute", "Solar Static", "the Quiet Comets"]
BOOKS = ["The Overstory", "Piranesi", "Project Hail Mary", "The Left Hand of Darkness", "Circe",
         "A Gentleman in Moscow", "Klara and the Sun", "The Name of the Wind"]
INSTRUMENTS = ["cello", "ukulele", "saxophone", "piano", "drums", "violin", "bass guitar"]
CARS = ["a red Fiat 500", "a grey Skoda Octavia", "a blue Toyota Corolla", "a green Volvo estate",
        "a white Tesla Model 3", "a black Mazda MX-5"]
GIFTS = ["a fountain pen", "a leather journal", "a bonsai tree", "a vintage camera", "a wool scarf",
         "a chess set", "a telescope"]
COURSES = ["Spanish", "Japanese", "statistics", "first aid", "photography", "Italian cooking"]
DOCTORS = ["dentist", "dermatologist", "eye doctor", "physio", "allergist"]

SMALL_TALK = [
    "hi there", "hey, how's it going?", "good morning!", "thanks, that helps", "ok cool", "haha yes",
    "let me think about it", "sounds good", "I'm a bit tired today", "can you keep it short?", "nice one",
    "what's the weather like for a walk?", "I had a long day at work", "sorry, I was busy earlier",
    "can you recommend a podcast?", "tell me a fun fact", "I need some motivation today",
    "ok, talk later", "that's interesting", "not sure yet", "right, makes sense", "good night!",
    "I've been thinking about getting more sleep", "any tips for staying focused?",
    "I should drink more water", "the traffic was awful this morning", "I'm making tea",
]
ASSISTANT_FILLER = [
    "Happy to help! What would you like to do next?", "That sounds lovely.", "Got it, I'll remember that.",
    "Here's a quick suggestion: take a short walk and drink some water.", "Sure, I can keep it brief.",
    "Interesting! Tell me more whenever you like.", "Sounds like a plan.", "No problem at all.",
    "Good luck with that!", "I hope the rest of your day is calmer.",
]
# Look-alikes: same vocabulary as the facts, about someone else, so word overlap alone misleads.
DISTRACTORS = [
    "my colleague's {species} is called {pet}", "a friend of mine works at {employer}",
    "my neighbour just got back from {city}", "I read a review of {book} but haven't read it",
    "someone at the gym plays the {instrument}", "my cousin is allergic to {allergy}",
    "I saw an ad for {band} tickets", "my boss drives {car}", "there's a {hobby} club near the office",
    "my manager is learning {course}", "my neighbour's {species} {pet} keeps barking",
]


@dataclass
class Turn:
    role: str
    text: str
    occurred_at: str
    external_id: str
    speaker: str | None = None  # a person's name, in two-person histories (bench/dialogues.py)


@dataclass
class Question:
    id: str
    user: str
    kind: str
    question: str
    evidence: list[str]  # external ids of the turns that hold the answer
    answer: str


@dataclass
class UserHistory:
    user: str
    sessions: list[list[Turn]] = field(default_factory=list)


@dataclass
class EvalSet:
    seed: int
    now: str
    users: list[UserHistory]
    questions: list[Question]

    def turns(self) -> int:
        return sum(len(s) for u in self.users for s in u.sessions)


@dataclass
class _Fact:
    """A statement to place in some session, and the questions it answers."""
    session: int
    turns: list[tuple[str, str]]  # (role, text); the evidence is marked by index
    evidence_at: list[int]
    questions: list[tuple[str, str, str]]  # (kind, question, answer)
    group: str | None = None  # multi-hop facts share a group; their questions need every member


class _Builder:
    def __init__(self, rng: random.Random, user: str, sessions: int, start: datetime, now: datetime) -> None:
        self.rng, self.user, self.n, self.start, self.now = rng, user, sessions, start, now
        span = (now - timedelta(days=2) - start).total_seconds()
        self.dates = sorted(start + timedelta(seconds=rng.uniform(0, span)) for _ in range(sessions))
        self.facts: list[_Fact] = []

    def pick(self, pool: list) -> object:  # type: ignore[type-arg]
        return self.rng.choice(pool)

    def session_at(self, lo: float = 0.0, hi: float = 1.0) -> int:
        return self.rng.randint(int(lo * (self.n - 1)), int(hi * (self.n - 1)))

    def add(self, fact: _Fact) -> None:
        self.facts.append(fact)


def _facts(b: _Builder) -> None:
    r, p = b.rng, b.pick
    # single facts, stated one way and asked another
    sister, city = p(NAMES), p(CITIES)
    b.add(_Fact(b.session_at(), [("user", r.choice([
        f"My sister {sister} just moved to {city} for her new job",
        f"big news in the family: {sister}, my sister, relocated to {city}"]))], [0],
        [("single", r.choice(["Which city does my sibling live in now?", "Where did my sister move to?"]), city)]))
    species, breed = p(PETS)  # type: ignore[misc]
    pet = p(PET_NAMES)
    b.add(_Fact(b.session_at(), [("assistant", f"Do you have any pets? What's your {species} called?"),
                                 ("user", f"{pet}! {breed}, two years old")], [1],
                [("answer", f"What is the name of my {species}?", str(pet))]))
    employer, role = p(EMPLOYERS), p(ROLES)
    b.add(_Fact(b.session_at(0, 0.4), [("user", f"I started as a {role} at {employer} this week")], [0],
                [("single", "Which company do I work for?", str(employer)),
                 ("when", "When did I start my current job?", str(employer))]))
    hobby = p(HOBBIES)
    b.add(_Fact(b.session_at(), [("user", f"I've signed up for a {hobby} class on Thursday evenings")], [0],
                [("single", "What activity do I do on Thursday evenings?", str(hobby))]))
    allergy = p(ALLERGIES)
    b.add(_Fact(b.session_at(), [("assistant", "Anything I should know for meal ideas?"),
                                 ("user", f"yes, I'm allergic to {allergy}, badly")], [1],
                [("answer", "Is there anything I can't eat or take because of an allergy?", str(allergy))]))
    food = p(FOODS)
    b.add(_Fact(b.session_at(), [("user", f"honestly {food} is my all-time favourite dish")], [0],
                [("single", "What food do I like best?", str(food))]))
    book = p(BOOKS)
    b.add(_Fact(b.session_at(), [("user", f"I'm halfway through {book} and can't put it down")], [0],
                [("single", "Which novel was I reading?", str(book))]))
    instrument = p(INSTRUMENTS)
    b.add(_Fact(b.session_at(), [("assistant", "Do you play any music?"),
                                 ("user", f"the {instrument}, since I was a kid")], [1],
                [("answer", "What instrument do I play?", str(instrument))]))
    car = p(CARS)
    b.add(_Fact(b.session_at(), [("user", f"finally bought a car: {car}")], [0],
                [("single", "What vehicle did I purchase?", str(car)),
                 ("when", "When did I buy my car?", str(car))]))
    course = p(COURSES)
    b.add(_Fact(b.session_at(), [("user", f"I enrolled in an evening {course} course to keep my brain busy")], [0],
                [("single", "What subject am I studying in the evenings?", str(course))]))

    # an update: the latest statement is the answer
    first, second = r.sample(CITIES, 2)
    s1, s2 = sorted(r.sample(range(b.n), 2))
    b.add(_Fact(s1, [("user", f"I live in {first} at the moment, renting a small flat")], [0], []))
    b.add(_Fact(s2, [("user", f"we moved house! we're in {second} now")], [0],
                [("update", "Where do I live these days?", second)]))

    # the same kind of event in several months: the question names when
    concerts = r.sample(BANDS, 3)
    sessions = sorted(r.sample(range(b.n), 3))
    for band, s in zip(concerts, sessions, strict=True):
        month = b.dates[s].strftime("%B")
        b.add(_Fact(s, [("user", f"went to see {band} live last night, what a show")], [0],
                    [("temporal-range", f"Which band did I see in concert in {month}?", band)]))
    doctor_sessions = sorted(r.sample(range(b.n), 2))
    for s in doctor_sessions:
        doctor = p(DOCTORS)
        days_ago = (b.now - b.dates[s]).days
        when = _relative(days_ago)
        b.add(_Fact(s, [("user", f"had my {doctor} appointment today, all fine")], [0],
                    [("temporal-range", f"What kind of doctor did I see {when}?", str(doctor))] if when else []))

    # multi-hop: two facts joined by a person
    friend, gift, fcity = p(NAMES), p(GIFTS), p(CITIES)
    sa, sb = sorted(r.sample(range(b.n), 2))
    b.add(_Fact(sa, [("user", f"{friend} gave me {gift} for my birthday")], [0], [], group="gift"))
    b.add(_Fact(sb, [("user", f"{friend} is flying back home to {fcity} next week")], [0],
                [("multi-hop", f"Where is the friend who gave me {gift} from?", str(fcity))], group="gift"))
    coworker, chobby = p(NAMES), p(HOBBIES)
    sa, sb = sorted(r.sample(range(b.n), 2))
    b.add(_Fact(sa, [("user", f"my teammate {coworker} sits next to me at {employer}")], [0], [], group="mate"))
    b.add(_Fact(sb, [("user", f"{coworker} got me into {chobby} last weekend")], [0],
                [("multi-hop", f"What hobby did my teammate at {employer} introduce me to?", str(chobby))],
                group="mate"))


def _relative(days_ago: int) -> str | None:
    """How a person would say it, when the phrase is unambiguous enough to ask with."""
    if 25 <= days_ago <= 40:
        return "about a month ago"
    for weeks, words in ((1, "a week ago"), (2, "two weeks ago"), (3, "three weeks ago")):
        if abs(days_ago - 7 * weeks) <= 2:
            return words
    return None


def _filler(b: _Builder) -> tuple[str, str]:
    r = b.rng
    if r.random() < 0.25:
        species, _ = r.choice(PETS)
        text = r.choice(DISTRACTORS).format(
            species=species, pet=r.choice(PET_NAMES), employer=r.choice(EMPLOYERS), city=r.choice(CITIES),
            book=r.choice(BOOKS), instrument=r.choice(INSTRUMENTS), allergy=r.choice(ALLERGIES),
            band=r.choice(BANDS), car=r.choice(CARS), hobby=r.choice(HOBBIES), course=r.choice(COURSES))
        return "user", text
    return "user", r.choice(SMALL_TALK)


def generate(seed: int = 7, users: int = 12, sessions: int = 16, turns_per_session: int = 18,
             now: datetime | None = None) -> EvalSet:
    rng = random.Random(seed)
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    start = now - timedelta(days=180)
    out_users, questions = [], []
    for u in range(users):
        user = f"user-{u:02d}"
        b = _Builder(rng, user, sessions, start, now)
        _facts(b)
        history = UserHistory(user)
        evidence_ids: dict[int, list[str]] = {}
        for s in range(sessions):
            blocks: list[_Fact | None] = [None] * max(2, turns_per_session // 2 - 1)
            for fact in (f for f in b.facts if f.session == s):
                blocks.insert(rng.randint(1, len(blocks)), fact)  # never the session's opening line
            turns: list[Turn] = []
            clock = b.dates[s]
            for fact in blocks:
                pairs = list(fact.turns) if fact else [_filler(b)]
                if pairs[-1][0] != "assistant":
                    pairs.append(("assistant", rng.choice(ASSISTANT_FILLER)))
                for k, (role, text) in enumerate(pairs):
                    ext = f"{user}-s{s:02d}-t{len(turns):03d}"
                    turns.append(Turn(role, text, clock.isoformat(), ext))
                    clock += timedelta(seconds=rng.randint(20, 240))
                    if fact is not None and k in fact.evidence_at:
                        evidence_ids.setdefault(id(fact), []).append(ext)
            history.sessions.append(turns)
        groups: dict[str, list[str]] = {}
        for f in b.facts:
            if f.group:
                groups.setdefault(f.group, []).extend(evidence_ids.get(id(f), []))
        for f in b.facts:
            for kind, question, answer in f.questions:
                ev = groups[f.group] if f.group else evidence_ids.get(id(f), [])
                questions.append(Question(f"{user}-q{len(questions):04d}", user, kind, question, ev, answer))
        out_users.append(history)
    return EvalSet(seed, now.isoformat(), out_users, questions)


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--users", type=int, default=12)
    ap.add_argument("--out", type=Path, default=Path("bench/out/evalset.json"))
    args = ap.parse_args()
    data = generate(args.seed, args.users)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(asdict(data), indent=1))
    kinds: dict[str, int] = {}
    for q in data.questions:
        kinds[q.kind] = kinds.get(q.kind, 0) + 1
    print(f"{len(data.users)} users, {data.turns()} turns, {len(data.questions)} questions {kinds} -> {args.out}")


if __name__ == "__main__":
    main()
