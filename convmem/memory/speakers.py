"""People named in a question. In a two-person history ("When did Caroline go to the support
group?") the name says whose turns hold the answer, yet as a search word it misleads: the
turns that contain it are the other person's, addressing her ("Hey Caroline!"). So a name
that belongs to a speaker of the history leaves the query text and becomes a preference
for that speaker's turns instead.

Who speaks is known when turns carry metadata.speaker. Without it, a name the history only
ever uses to address someone ("Thanks, Caroline!", "Hey Caroline,") belongs to the side that
is addressed: the other role than the one whose turns say it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence

from convmem.ports import MemoryReader, MemoryScope, Speaker

_WORD = re.compile(r"[^\W\d_]+")
# "Caroline's" is about her own things, which she calls "my" when she speaks of them.
_POSSESSIVE = "(?:'s|\u2019s|s'|')"
# Words that open a turn before the name of the person spoken to.
INTERJECTIONS = ("hey|hi|hello|thanks|thank you|oh|wow|aw+|yay|congrats|congratulations|sorry|omg|yes|yeah|"
                 "haha|dear|ok|okay|bye|so|well|good morning|good night|morning")
OTHER_SIDE = {"user": "assistant", "assistant": "user"}
MIN_ADDRESSED = 2  # turns addressing a name before it counts as a speaker's
MIN_SHARE = 0.8  # ... nearly all of them from one side


def question_words(query: str, limit: int = 32) -> list[str]:
    """Candidate names: the distinct words of the question, in order."""
    return list(dict.fromkeys(w for w in _WORD.findall(query) if len(w) > 1))[:limit]


def vocative(name: str) -> str:
    """A regular expression (Python and Postgres alike) for `name` used to address someone:
    at the start of a turn or sentence, or after a comma, maybe after a greeting, and
    followed by punctuation."""
    return rf"(^|[.!?,]\s*)(({INTERJECTIONS})[ ,]+)?{name}\s*[,!.?]"


async def named_speakers(memory: MemoryReader, scope: MemoryScope, query: str) -> list[Speaker]:
    """The people of this user's history whom the question names."""
    words = question_words(query)
    # A capital at the start of the question says nothing; "I" is never a name.
    opening = next(iter(_WORD.findall(query)), "")
    capitalised = [w for w in words if w[0].isupper() and w not in ("I", opening)]
    # Both lookups at once: the second is only read when the first finds nobody, but waiting
    # for one before the other would add a round trip to every search that names someone.
    names, addressed = await asyncio.gather(
        memory.speakers_named(scope, words),
        memory.addressed(scope, capitalised) if capitalised else _nobody())
    if names:
        return [Speaker(n) for n in names]
    found = []
    for name, by_role in addressed.items():
        total = sum(by_role.values())
        side, most = max(by_role.items(), key=lambda kv: kv[1], default=("", 0))
        if total >= MIN_ADDRESSED and most >= MIN_SHARE * total and side in OTHER_SIDE:
            found.append(Speaker(name, OTHER_SIDE[side]))
    return found


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
