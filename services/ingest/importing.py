"""Bringing existing chat history in: JSON Lines of messages become MessageReceived events
on the inbound topic, in batches. Ids are derived from the tenant, the user and the line's
external id (or, without one, from its content), so importing a file twice stores nothing
twice. Imported turns keep their timestamps and never ask for a reply.

Nothing reported as imported is lost afterwards. A line is refused, with its number and why:
- when it is malformed or breaks a rule of the event contract (contracts.values);
- when it is older than its tenant's message retention, since the next retention sweep would
  delete it (unless `keep_expired`: then it is imported and the report says it will be purged);
- when it names a conversation (by UUID) that belongs to another user or was deleted, which
  the recorder would refuse."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal
from uuid import UUID

import orjson
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from contracts import MessageReceived, identity
from contracts.values import ExternalId, Instant, JsonObject, StoredText, TenantId, UserId
from convmem.ports import ConversationRef

# Refused lines are counted; the first ones are kept for the report.
REPORTED_LINES = 100


class ImportLine(BaseModel):
    """One message. Field names follow the event contract; the short forms (tenant, user,
    conversation, timestamp) are accepted too, as exports from other tools use them."""

    model_config = ConfigDict(extra="forbid")

    tenant_id: TenantId = Field(default="default", validation_alias=AliasChoices("tenant_id", "tenant"))
    user_id: UserId = Field(validation_alias=AliasChoices("user_id", "user"))
    conversation: StoredText = Field(validation_alias=AliasChoices("conversation_id", "conversation"),
                                     min_length=1, max_length=256)
    role: Literal["user", "assistant", "system"] = "user"
    text: StoredText = Field(min_length=1, max_length=64_000)
    external_id: ExternalId | None = None
    occurred_at: Instant = Field(validation_alias=AliasChoices("occurred_at", "timestamp"))
    metadata: JsonObject = Field(default_factory=dict)


class ImportLineError(ValueError):
    def __init__(self, line_no: int, reason: str) -> None:
        super().__init__(f"line {line_no}: {reason}")
        self.line_no, self.reason = line_no, reason


def conversation_id_for(tenant_id: str, user_id: str, conversation: str) -> UUID:
    """A UUID is used as it is; any other key is derived (per tenant and user, like every key a
    producer gives), so the same key always lands in the same conversation of that user."""
    try:
        return UUID(conversation)
    except ValueError:
        return identity.conversation_id_for_external(tenant_id, user_id, f"import:{conversation}")


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
    conversation_id = conversation_id_for(line.tenant_id, line.user_id, line.conversation)
    external_id = line.external_id or "import:" + hashlib.sha256(
        "\x1f".join([str(conversation_id), line.role, line.occurred_at.isoformat(), line.text]).encode()
    ).hexdigest()[:32]
    return MessageReceived(
        tenant_id=line.tenant_id, user_id=line.user_id, conversation_id=conversation_id,
        message_id=identity.message_id_for_external(line.tenant_id, line.user_id, external_id),
        external_id=external_id,
        channel="import", role=line.role, text=line.text, occurred_at=line.occurred_at, reply_expected=False,
        metadata=line.metadata,
    )


@dataclass
class ImportReport:
    lines: int = 0
    published: int = 0
    already_stored: int = 0
    malformed: list[ImportLineError] = field(default_factory=list)
    expired: int = 0  # older than the tenant's retention: refused, or imported with keep_expired
    expired_kept: int = 0
    foreign: int = 0  # naming another user's (or a deleted) conversation: refused
    refused: list[ImportLineError] = field(default_factory=list)  # the first REPORTED_LINES expired or foreign
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.published / self.seconds if self.seconds else 0.0

    def refuse(self, line_no: int, reason: str) -> None:
        if len(self.refused) < REPORTED_LINES:
            self.refused.append(ImportLineError(line_no, reason))


@dataclass
class ImportRules:
    """What the importer checks against the store. `cutoff(tenant)`: messages before it are
    past the tenant's retention; `conversation(id)`: who owns a conversation, if anyone."""

    cutoff: Callable[[str], Awaitable[datetime]] | None = None
    conversation: Callable[[UUID], Awaitable[ConversationRef | None]] | None = None
    keep_expired: bool = False
    _cutoffs: dict[str, datetime] = field(default_factory=dict, init=False, repr=False)
    _owners: dict[UUID, tuple[str, str] | None] = field(default_factory=dict, init=False, repr=False)

    async def expired(self, event: MessageReceived) -> bool:
        if self.cutoff is None:
            return False
        if event.tenant_id not in self._cutoffs:
            self._cutoffs[event.tenant_id] = await self.cutoff(event.tenant_id)
        return event.occurred_at < self._cutoffs[event.tenant_id]

    async def foreign(self, event: MessageReceived) -> bool:
        """The conversation is someone else's (stored, or first named by an earlier line)."""
        if self.conversation is None:
            return False
        if event.conversation_id not in self._owners:
            found = await self.conversation(event.conversation_id)
            self._owners[event.conversation_id] = (
                None if found is None else ("", "") if found.status == "deleted" else (found.tenant_id, found.user_id))
        owner = self._owners[event.conversation_id]
        if owner is None:
            self._owners[event.conversation_id] = owner = (event.tenant_id, event.user_id)
        return owner != (event.tenant_id, event.user_id)


async def import_lines(lines: Iterable[bytes], *, publish: Callable[[Sequence[MessageReceived]], Awaitable[None]],
                       known: Callable[[str, Sequence[tuple[str, str]]], Awaitable[set[tuple[str, str]]]],
                       batch: int = 500, progress: Callable[[int], None] | None = None,
                       rules: ImportRules | None = None) -> ImportReport:
    """Parse, refuse what would not be kept, skip what is already stored, publish in batches.
    A refused line is reported with its number and skipped; the rest still goes in."""
    report = ImportReport()
    rules = rules or ImportRules()
    started = time.perf_counter()
    pending: list[MessageReceived] = []

    async def flush() -> None:
        keys_by_tenant: dict[str, list[tuple[str, str]]] = {}
        for e in pending:
            keys_by_tenant.setdefault(e.tenant_id, []).append((e.user_id, e.external_id or ""))
        stored = {tenant: await known(tenant, keys) for tenant, keys in keys_by_tenant.items()}
        # File order is kept: the recorder numbers turns in the order they arrive per conversation.
        fresh = [e for e in pending if (e.user_id, e.external_id) not in stored[e.tenant_id]]
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
            event = parse_line(raw, line_no)
        except ImportLineError as exc:
            report.malformed.append(exc)
            if progress is not None:
                progress(1)
            continue
        refusal = await _refusal(rules, report, event)
        if refusal is not None:
            report.refuse(line_no, refusal)
            if progress is not None:
                progress(1)
            continue
        pending.append(event)
        if len(pending) >= batch:
            await flush()
    if pending:
        await flush()
    report.seconds = time.perf_counter() - started
    return report


async def _refusal(rules: ImportRules, report: ImportReport, event: MessageReceived) -> str | None:
    if await rules.foreign(event):
        report.foreign += 1
        return f"conversation {event.conversation_id} belongs to another user or was deleted"
    if await rules.expired(event):
        report.expired += 1
        if not rules.keep_expired:
            return f"occurred_at {event.occurred_at.astimezone(UTC):%Y-%m-%d} is older than tenant " \
                   f"{event.tenant_id}'s message retention: the next retention sweep would delete it"
        report.expired_kept += 1
    return None
