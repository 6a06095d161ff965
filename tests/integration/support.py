"""Builders the integration tests share. The database is shared by every test (and by
anyone else using the local stack), so each test makes its own tenants and users."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from contracts import MessageReceived, ReplyGenerated, TokenUsage


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def said(tenant: str, user: str, conv: uuid.UUID, text: str = "hello", *, ext: str | None = None,
         when: datetime | None = None, reply_expected: bool = True) -> MessageReceived:
    """A user's message, with a fresh message id."""
    return MessageReceived(tenant_id=tenant, user_id=user, conversation_id=conv, message_id=uuid.uuid4(),
                           external_id=ext, text=text, occurred_at=when or datetime.now(UTC),
                           reply_expected=reply_expected)


def answer(to: MessageReceived, text: str = "an answer", *, when: datetime | None = None) -> ReplyGenerated:
    """The assistant's reply to a user's message, with a fresh message id."""
    return ReplyGenerated(tenant_id=to.tenant_id, user_id=to.user_id, conversation_id=to.conversation_id,
                          message_id=uuid.uuid4(), in_reply_to=to.message_id, text=text, model="m",
                          usage=TokenUsage(prompt_tokens=11, completion_tokens=5, total_tokens=16), latency_ms=42,
                          occurred_at=when or datetime.now(UTC))
