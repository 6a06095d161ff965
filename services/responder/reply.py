"""Answering one user turn, at most once."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from contracts import ReplyGenerated, TokenUsage, TurnRecorded, identity
from convmem.context import Context, ContextBuilder
from convmem.ports import ChatModel, Completion, ReplyLedger

OFFLINE_MODEL = "offline"


def offline_completion(ctx: Context) -> Completion:
    """With no LLM configured the reply is built from recalled memory and says so plainly."""
    head = "[offline mode: no language model is configured; this reply is assembled from memory only]"
    if ctx.recalled:
        lines = [f"- {r.turn.occurred_at:%Y-%m-%d}, {'you' if r.turn.role == 'user' else 'I'} said: {r.turn.text}"
                 for r in ctx.recalled]
        body = "What I remember that may be relevant:\n" + "\n".join(lines)
    elif ctx.summary is not None:
        body = "Earlier in this conversation:\n" + ctx.summary.text
    else:
        body = "I found nothing relevant in our earlier conversations."
    return Completion(f"{head}\n{body}", OFFLINE_MODEL, finish_reason="offline")


async def respond(turn: TurnRecorded, *, replies: ReplyLedger, context: ContextBuilder,
                  model: ChatModel | None) -> ReplyGenerated | None:
    """The reply to publish for this turn, or None (not a user turn awaiting a reply, or its
    reply was already published). The reply is claimed in the store before it is returned,
    so a redelivery or a second worker re-publishes the same reply instead of a new one."""
    if turn.role != "user" or not turn.reply_expected:
        return None
    existing = await replies.find_reply(turn.message_id)
    if existing is not None:
        return None if existing.published else existing.reply
    started = time.perf_counter()
    ctx = await context.for_turn(turn)
    completion = offline_completion(ctx) if model is None else await model.complete(ctx.messages())
    reply = ReplyGenerated(
        tenant_id=turn.tenant_id, user_id=turn.user_id, conversation_id=turn.conversation_id,
        message_id=identity.reply_id_for(turn.message_id), in_reply_to=turn.message_id,
        channel=turn.channel, text=completion.text, model=completion.model, sources=ctx.sources,
        usage=TokenUsage(prompt_tokens=completion.prompt_tokens, completion_tokens=completion.completion_tokens,
                         total_tokens=completion.prompt_tokens + completion.completion_tokens),
        latency_ms=int((time.perf_counter() - started) * 1000), finish_reason=completion.finish_reason,
        occurred_at=datetime.now(UTC),
    )
    claimed = await replies.claim_reply(reply)
    return None if claimed.published else claimed.reply
