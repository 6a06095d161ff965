"""People named in a question. In a two-person history ("When did Caroline go to the support
group?") the name says whose turns hold the answer, yet as a search word it misleads: the
turns that contain it are the other person's, addressing her ("Hey Caroline!"). So a name
that belongs to a speaker of the history leaves the query text and becomes a preference
for that speaker's turns instead.

Names are matched as people write them: a chat shows "katia" or "leila ✨", and a question
asks about "Katya", "Kat" or "Leyla"; "Mohammed" for "muhamad", "Alexander" for "aleksandr".
A question word names a speaker when it is that name (case and accents aside), a prefix of
it of three letters or more, close to it in spelling (edit distance, Jaro-Winkler) or sound
(Metaphone, NYSIIS), or a nickname the other person uses to address them ("sasha u up?").

Who speaks is known when turns carry metadata.speaker or start with a name ("maria: ...").
Without either, a name the history only ever uses to address someone ("Thanks, Caroline!",
"Hey Caroline,") belongs to the side that is addressed: the other role than the one whose
turns say it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence

import jellyfish
from rapidfuzz.distance import JaroWinkler, Levenshtein
from unidecode import unidecode

from convmem.ports import MemoryReader, MemoryScope, Speaker

_WORD = re.compile(r"[^\W\d_]+")
# "Caroline's" is about her own things, which she calls "my" when she speaks of them.
_POSSESSIVE = "(?:'s|\u2019s|s'|')"
# Words that open a turn before the name of the person spoken to (chat greetings included).
INTERJECTIONS = ("hey+|hi+|hello|thanks|thank you|thx|ty|oh|wow|aw+|yay|congrats|congratulations|sorry|omg|yes|"
                 "yeah|haha+|lol|dear|ok|okay|bye|so|well|good morning|good night|morning|night|yo|"
                 "happy birthday|happy bday|love you|miss you")
OTHER_SIDE = {"user": "assistant", "assistant": "user"}
MIN_ADDRESSED = 2  # turns addressing a name before it counts as a speaker's
MIN_SHARE = 0.8  # ... nearly all of them from one side
MIN_PERSON_SHARE = 0.05  # a name heads at least this share of the recent turns to count as a person
# Capitalised words that are never a person's: calendar words ("May" is not "maya").
_CALENDAR = {"january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
             "november", "december", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
             "spring", "summer", "autumn", "fall", "winter", "christmas", "easter"}


def question_words(query: str, limit: int = 32) -> list[str]:
    """Candidate names: the distinct words of the question, in order."""
    return list(dict.fromkeys(w for w in _WORD.findall(query) if len(w) > 1))[:limit]


def vocative(name: str) -> str:
    """A regular expression (Python and Postgres alike) for `name` used to address someone:
    at the start of a turn, sentence or chat line ("maria: kat u there"), or after a comma,
    maybe after a greeting, and followed by punctuation, a space or the end."""
    return rf"(^|[.!?,:]\s*)(({INTERJECTIONS})[ ,]+)?{name}(\s*[,!.?]|\s|$)"


def folded(name: str) -> str:
    """A name as compared: transliterated to ASCII, case-folded, letters only."""
    return re.sub(r"[^a-z]+", " ", unidecode(name).casefold()).strip()


def likeness(word: str, name: str, loose: bool) -> float:
    """How surely a question's `word` names the person called `name` (0: not at all). Only
    equality counts unless `loose` (a capitalised word in mid-question): then prefixes,
    spelling and sound too."""
    w = folded(word)
    best = 0.0
    for part in folded(name).split():
        if len(part) < 2:
            continue
        if w == part:
            return 1.0
        if not loose or len(w) < 3:
            continue
        jw = JaroWinkler.similarity(w, part)
        if (part.startswith(w) or (len(part) >= 3 and w.startswith(part))) \
                or Levenshtein.normalized_similarity(w, part) >= 0.75 or jw >= 0.9 \
                or (len(m := jellyfish.metaphone(w)) >= 2 and m == jellyfish.metaphone(part)) \
                or (jw >= 0.8 and jellyfish.nysiis(w) == jellyfish.nysiis(part)):
            best = max(best, 0.5 + jw / 2)
    return best


def match_people(words: Sequence[str], loose: Sequence[str], people: Sequence[str]) -> dict[str, str]:
    """Question word -> the person it names, the best match of each word."""
    out: dict[str, str] = {}
    for word in words:
        scored = [(likeness(word, p, word in loose), p) for p in people]
        score, person = max(scored, default=(0.0, ""))
        if score > 0:
            out[word] = person
    return out


async def named_speakers(memory: MemoryReader, scope: MemoryScope, query: str) -> list[Speaker]:
    """The people of this user's history whom the question names."""
    words = [w for w in question_words(query) if w.casefold() not in _CALENDAR]
    # A capital at the start of the question says nothing; "I" is never a name.
    opening = next(iter(_WORD.findall(query)), "")
    capitalised = [w for w in words if w[0].isupper() and w not in ("I", opening)]
    # Both lookups at once: the second is only read when the first finds nobody, but waiting
    # for one before the other would add a round trip to every search that names someone.
    counts, addressed = await asyncio.gather(
        memory.people(scope),
        memory.addressed(scope, capitalised) if capitalised else _nobody())
    total = sum(counts.values())
    people = [p for p, n in counts.items() if n >= MIN_PERSON_SHARE * total]
    named = match_people(words, capitalised, people)
    found = {person: Speaker(person, called=word) for word, person in reversed(named.items())}
    for word, by_side in addressed.items():
        if word in named:
            continue
        if (person := _addressee(by_side, people)) is not None and person not in found:
            found[person] = Speaker(person, called=word)
        elif not people and (side := _addressee(by_side, list(OTHER_SIDE))) is not None:
            found.setdefault(side, Speaker(word, side))
    return list(found.values())


def _addressee(by_side: Mapping[str, int], sides: Sequence[str]) -> str | None:
    """The side a name is said to: in a history of two sides, the other one than the side
    that nearly always says it."""
    total = sum(by_side.values())
    side, most = max(by_side.items(), key=lambda kv: kv[1], default=("", 0))
    if len(sides) != 2 or side not in sides or total < MIN_ADDRESSED or most < MIN_SHARE * total:
        return None
    return sides[1] if side == sides[0] else sides[0]


async def _nobody() -> dict[str, dict[str, int]]:
    return {}


def without_names(query: str, names: Sequence[str]) -> str:
    """The question with these people's first names taken out; a possessive becomes "my",
    the way the person themself would say it."""
    out = query
    for name in names:
        first = re.escape(name.split(" ")[0])
        out = re.sub(rf"\b{first}{_POSSESSIVE}(?!\w)", "my", out, flags=re.IGNORECASE)
        out = re.sub(rf"\b{first}\b", " ", out, flags=re.IGNORECASE)
    return re.sub(r"\s+", " ", out).strip()
