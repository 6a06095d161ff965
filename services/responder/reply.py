"""Answering one user turn, at most once."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from contracts import OFFLINE_MODEL, ReplyGenerated, TokenUsage, TurnRecorded, identity
from convmem.memory.context import Context, ContextBuilder
from convmem.ports import ChatMessage, ChatModel, Completion, ReplyLedger, TokenSink


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


def reply_route(turn: TurnRecorded) -> dict[str, Any]:
    """Where the reply goes back to, for the channels that send it (the WhatsApp sender):
    the business number the user wrote to and the user's WhatsApp id. It travels in the
    reply's metadata, which is sealed with the text (a phone number is personal data)."""
    found = turn.metadata.get("whatsapp") if turn.channel == "whatsapp" else None
    if not isinstance(found, dict) or not found.get("phone_number_id"):
        return {}
    return {"whatsapp": {"phone_number_id": str(found["phone_number_id"]),
                         "to": str(found.get("wa_id") or turn.user_id)}}


async def _generate(turn: TurnRecorded, messages: list[ChatMessage], model: ChatModel,
                    tokens: TokenSink | None) -> Completion:
    if tokens is None:
        return await model.complete(messages)
    stream = tokens.open(turn, identity.reply_id_for(turn.message_id))
    try:
        return await model.stream(messages, stream.write)
    finally:
        await stream.close()  # bounded; the pieces go out before the reply that ends them


async def respond(turn: TurnRecorded, *, replies: ReplyLedger, context: ContextBuilder,
                  model: ChatModel | None, tokens: TokenSink | None = None) -> ReplyGenerated | None:
    """The reply to publish for this turn, or None (not a user turn awaiting a reply, or its
    reply was already published). The reply is claimed in the store before it is returned,
    so a redelivery or a second worker re-publishes the same reply instead of a new one.
    With `tokens`, the text also goes there as the model produces it (live views)."""
    if turn.role != "user" or not turn.reply_expected:
        return None
    existing = await replies.find_reply(turn.message_id)
    if existing is not None:
        return None if existing.published else existing.reply
    started = time.perf_counter()
    ctx = await context.for_turn(turn)
    completion = offline_completion(ctx) if model is None else await _generate(turn, ctx.messages(), model, tokens)
    reply = ReplyGenerated(
        tenant_id=turn.tenant_id, user_id=turn.user_id, conversation_id=turn.conversation_id,
        message_id=identity.reply_id_for(turn.message_id), in_reply_to=turn.message_id,
        channel=turn.channel, text=completion.text, model=completion.model, sources=ctx.sources,
        usage=TokenUsage(prompt_tokens=completion.prompt_tokens, completion_tokens=completion.completion_tokens,
                         total_tokens=completion.prompt_tokens + completion.completion_tokens),
        latency_ms=int((time.perf_counter() - started) * 1000), finish_reason=completion.finish_reason,
        occurred_at=datetime.now(UTC), metadata=reply_route(turn),
    )
    claimed = await replies.claim_reply(reply)
    return None if claimed.published else claimed.reply
