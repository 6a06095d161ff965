"""Query rewriting (the `rewrite` stage, off by default and only where a chat model is
configured): the model restates the question in the words a person would have used when they
said the answer in a chat, naming the specific things a category covers ("outdoor activities":
hiking, kayaking, camping). Both retrievers then also search with the restatement. A model
that is slow, down or silent costs the stage, never the search."""

from __future__ import annotations

import asyncio

from convmem.errors import PoisonError, RetryableError
from convmem.ports import ChatMessage, ChatModel

REWRITE_PROMPT = (
    "You help search a person's chat history. Rewrite the question below as the words that a "
    "chat message answering it would likely contain: key nouns and verbs, synonyms, and the "
    "specific kinds of thing a general word covers. One line, at most 30 words, no names of "
    "the people asking, no explanations."
)
REWRITE_TIMEOUT_S = 5.0
MAX_CHARS = 400


async def rewrite(model: ChatModel, question: str, timeout_s: float = REWRITE_TIMEOUT_S) -> str | None:
    """The model's restatement of `question`, or None when it has none to give in time."""
    try:
        completion = await asyncio.wait_for(
            model.complete([ChatMessage("system", REWRITE_PROMPT), ChatMessage("user", question)]), timeout_s)
    except (TimeoutError, RetryableError, PoisonError):
        return None
    text = " ".join(completion.text.split())[:MAX_CHARS]
    return text or None
