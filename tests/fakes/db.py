"""The state the storage fakes share: one in-memory database, so a turn recorded through
the fake turn ledger is read back through the fake memory reader, as with Postgres."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from contracts import DeliveryStatusChanged, MessageAmended, TurnRecorded
from convmem.ports import (
    ConversationInfo,
    ErasureStatus,
    MemoryScope,
    Position,
    StoredReply,
    Summary,
    TenantPolicy,
    TicketGrant,
    UserSummary,
)

_STOP = {"what", "is", "my", "the", "a", "an", "i", "did", "do", "you", "of", "to", "in", "and", "when", "was"}


def words(text: str) -> set[str]:
    return {w for w in re.findall(r"[^\W_]+", text.lower()) if w not in _STOP}


@dataclass
class SendRow:
    tenant_id: str
    user_id: str
    conversation_id: UUID
    parts: int
    state: str
    claimed_at: datetime | None = None
    attempts: int = 0
    wamid: str | None = None
    error_code: int | None = None
    error: str | None = None


@dataclass
class FakeDb:
    turns: dict[UUID, TurnRecorded] = field(default_factory=dict)
    published: set[UUID] = field(default_factory=set)
    owners: dict[UUID, tuple[str, str]] = field(default_factory=dict)
    replies: dict[UUID, StoredReply] = field(default_factory=dict)
    embedded: set[UUID] = field(default_factory=set)
    statuses: list[DeliveryStatusChanged] = field(default_factory=list)
    conversations: dict[UUID, ConversationInfo] = field(default_factory=dict)
    summaries: dict[UUID, Summary] = field(default_factory=dict)
    summary_owners: dict[UUID, tuple[str, str]] = field(default_factory=dict)
    summary_updated: dict[UUID, datetime] = field(default_factory=dict)  # what summary retention goes by
    user_summaries: dict[tuple[str, str], UserSummary] = field(default_factory=dict)
    keys: dict[UUID, tuple[str, str, bytes | None]] = field(default_factory=dict)
    erasures: dict[UUID, ErasureStatus] = field(default_factory=dict)
    policies: dict[str, TenantPolicy] = field(default_factory=dict)
    scrubbed: dict[UUID, dict[str, int]] = field(default_factory=dict)
    deleted_at: dict[UUID, datetime] = field(default_factory=dict)  # conversation -> when it was deleted
    # What Postgres keeps about an assistant turn beyond TurnRecorded (model, tokens, latency): the export shows it.
    reply_facts: dict[UUID, dict[str, Any]] = field(default_factory=dict)
    # The sender's record of each reply part, keyed (reply id, part), as Postgres's reply_sends.
    sends: dict[tuple[UUID, int], SendRow] = field(default_factory=dict)
    disclosures: list[tuple[UUID, str, str]] = field(default_factory=list)  # (key, tenant, served to)
    replays: dict[Position, str] = field(default_factory=dict)  # dead-letter position -> group replayed for
    # Edits and revokes kept (amendment id -> amendment, applied), turns revoked, users' other ids.
    amendments: dict[UUID, tuple[MessageAmended, bool]] = field(default_factory=dict)
    revoked: set[UUID] = field(default_factory=set)
    aliases: dict[tuple[str, str], tuple[str, datetime]] = field(default_factory=dict)
    tickets: dict[bytes, tuple[TicketGrant, float]] = field(default_factory=dict)  # digest -> (grant, expiry)

    @property
    def deleted(self) -> set[UUID]:
        """Turns of deleted conversations: out of every read at once."""
        gone = {c for c, info in self.conversations.items() if info.status == "deleted"}
        return {t.message_id for t in self.turns.values() if t.conversation_id in gone} | self.revoked

    def mine(self, scope: MemoryScope) -> list[TurnRecorded]:
        hidden = self.deleted
        return [t for t in self.turns.values() if t.message_id not in hidden
                and scope.admits(t.tenant_id, t.user_id, t.conversation_id, t.occurred_at)]
