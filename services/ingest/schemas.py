"""HTTP request and response bodies (they make the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from contracts.events import ContentType, Role


class PostMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(min_length=1, max_length=256)
    conversation_id: UUID | None = Field(default=None, description="omit to start a new conversation")
    text: str = Field(min_length=1, max_length=32_000)
    external_id: str | None = Field(default=None, min_length=1, max_length=256,
                                    description="the producer's idempotency key")
    occurred_at: datetime | None = Field(default=None, description="RFC 3339 with a UTC offset")
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("must carry a UTC offset, e.g. 2026-11-23T10:00:00Z")
        return v


class Accepted(BaseModel):
    status: Literal["accepted"] = "accepted"
    message_id: UUID
    conversation_id: UUID
    duplicate: bool = Field(description="true when this external_id was accepted before")


class MessageView(BaseModel):
    message_id: UUID
    seq: int
    role: Role
    content_type: ContentType
    text: str
    external_id: str | None
    in_reply_to: UUID | None
    occurred_at: datetime
    metadata: dict[str, Any]


class ConversationMessages(BaseModel):
    conversation_id: UUID
    messages: list[MessageView]
    next_after_seq: int | None = Field(description="pass as after_seq for the next page; null at the end")


class ErrorField(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    error: str
    message: str
    fields: list[ErrorField] = Field(default_factory=list)
