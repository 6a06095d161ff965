"""Bringing existing chat history in: JSON Lines of messages become MessageReceived events
on the inbound topic, in batches. Ids are derived from the tenant and the line's external id
(or, without one, from its content), so importing a file twice stores nothing twice. Imported
turns keep their timestamps and never ask for a reply."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import orjson
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator

from contracts import MessageReceived, identity


class ImportLine(BaseModel):
    """One message. Field names follow the event contract; the short forms (tenant, user,
    conversation, timestamp) are accepted too, as exports from other tools use them."""

    model_config = ConfigDict(extra="forbid")

    tenant_id: str = Field(default="default", validation_alias=AliasChoices("tenant_id", "tenant"),
                           min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@+-]+$")
    user_id: str = Field(validation_alias=AliasChoices("user_id", "user"), min_length=1, max_length=256)
    conversation: str = Field(validation_alias=AliasChoices("conversation_id", "conversation"),
                              min_length=1, max_length=256)
    role: Literal["user", "assistant", "system"] = "user"
    text: str = Field(min_length=1, max_length=64_000)
    external_id: str | None = Field(default=None, min_length=1, max_length=256)
    occurred_at: datetime = Field(validation_alias=AliasChoices("occurred_at", "timestamp"))
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("must carry a UTC offset, e.g. 2026-11-23T10:00:00Z")
        return v


class ImportLineError(ValueError):
    def __init__(self, line_no: int, reason: str) -> None:
        super().__init__(f"line {line_no}: {reason}")
        self.line_no, self.reason = line_no, reason


def conversation_id_for(tenant_id: str, conversation: str) -> UUID:
    """A UUID is used as it is; any other key is derived, so the same key always lands in
    the same conversation."""
    try:
        return UUID(conversation)
    except ValueError:
        return identity.conversation_id_for_external(tenant_id, f"import:{conversation}")


def parse_line(raw: bytes, line_no: int) -> MessageReceived:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ImportLineError(line_no, f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ImportLineError(line_no, "not a JSON object")
    try:
        line = ImportLine.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "line"
        raise ImportLineError(line_no, f"{where}: {first['msg']}") from None
    conversation_id = conversation_id_for(line.tenant_id, line.conversation)
    external_id = line.external_id or "import:" + hashlib.sha256(
        "\x1f".join([str(conversation_id), line.role, line.occurred_at.isoformat(), line.text]).encode()
    ).hexdigest()[:32]
    return MessageReceived(
        tenant_id=line.tenant_id, user_id=line.user_id, conversation_id=conversation_id,
        message_id=identity.message_id_for_external(line.tenant_id, external_id), external_id=external_id,
        channel="import", role=line.role, text=line.text, occurred_at=line.occurred_at, reply_expected=False,
        metadata=line.metadata,
    )


@dataclass
class ImportReport:
    lines: int = 0
    published: int = 0
    already_stored: int = 0
    malformed: list[ImportLineError] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.published / self.seconds if self.seconds else 0.0


async def import_lines(lines: Iterable[bytes], *, publish: Callable[[Sequence[MessageReceived]], Awaitable[None]],
                       known: Callable[[str, Sequence[str]], Awaitable[set[str]]], batch: int = 500,
                       progress: Callable[[int], None] | None = None) -> ImportReport:
    """Parse, skip what is already stored, publish in batches. A bad line is reported with
    its number and skipped; the rest still goes in."""
    report = ImportReport()
    started = time.perf_counter()
    pending: list[MessageReceived] = []

    async def flush() -> None:
        ids_by_tenant: dict[str, list[str]] = {}
        for e in pending:
            ids_by_tenant.setdefault(e.tenant_id, []).append(e.external_id or "")
        stored = {tenant: await known(tenant, ids) for tenant, ids in ids_by_tenant.items()}
        # File order is kept: the recorder numbers turns in the order they arrive per conversation.
        fresh = [e for e in pending if e.external_id not in stored[e.tenant_id]]
        report.already_stored += len(pending) - len(fresh)
        if fresh:
            await publish(fresh)
        report.published += len(fresh)
        if progress is not None:
            progress(len(pending))
        pending.clear()

    for line_no, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        report.lines += 1
        try:
            pending.append(parse_line(raw, line_no))
        except ImportLineError as exc:
            report.malformed.append(exc)
            if progress is not None:
                progress(1)
            continue
        if len(pending) >= batch:
            await flush()
    if pending:
        await flush()
    report.seconds = time.perf_counter() - started
    return report
