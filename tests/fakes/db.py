"""The state the storage fakes share: one in-memory database, so a turn recorded through
the fake turn ledger is read back through the fake memory reader, as with Postgres."""

from __future__ import annotations

import hashlib
import re
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from contracts import DeliveryStatusChanged, MessageAmended, TurnRecorded, is_offline_notice
from convmem.ports import (
    ConversationInfo,
    ErasureStatus,
    MemoryScope,
    Position,
    StoredReply,
    Summary,
    TenantPolicy,
    TicketGrant,
    Unit,
    UserSummary,
)

_STOP = {"what", "is", "my", "the", "a", "an", "i", "did", "do", "you", "of", "to", "in", "and", "when", "was"}


def words(text: str) -> set[str]:
    return {w for w in re.findall(r"[^\W_]+", text.lower()) if w not in _STOP}


UNIT_GAP_S = 300  # as migration 010: one speaker's turns at most this far apart ...
UNIT_MAX = 8  # ... and at most this many make one unit


def unit_id(first: UUID) -> UUID:
    """The point id of the unit a turn starts, as Postgres derives it."""
    return UUID(hashlib.md5(f"unit:{first}".encode(), usedforsecurity=False).hexdigest())


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
    units_embedded: dict[UUID, Unit] = field(default_factory=dict)  # unit id -> the version in the index

    @property
    def deleted(self) -> set[UUID]:
        """Turns of deleted conversations: out of every read at once."""
        gone = {c for c, info in self.conversations.items() if info.status == "deleted"}
        return {t.message_id for t in self.turns.values() if t.conversation_id in gone} | self.revoked

    def mine(self, scope: MemoryScope) -> list[TurnRecorded]:
        hidden = self.deleted
        return [t for t in self.turns.values() if t.message_id not in hidden
                and scope.admits(t.tenant_id, t.user_id, t.conversation_id, t.occurred_at)]

    def units(self) -> list[Unit]:
        """The bursts of the stored turns, as migration 010's triggers keep them: a unit's
        text is its live members' (none below two). Its version is a checksum of its text
        and members, so any change makes it stale."""
        hidden = self.deleted
        out: list[Unit] = []
        run: list[TurnRecorded] = []

        def close() -> None:
            if len(run) >= 2:
                live = [t.text for t in run if t.message_id not in hidden]
                text = "\n".join(live) if len(live) >= 2 else ""
                members = tuple(t.message_id for t in run)
                first = run[0]
                out.append(Unit(unit_id(first.message_id), first.tenant_id, first.user_id, first.conversation_id,
                                members, first.occurred_at, text, zlib.crc32(f"{members}{text}".encode())))
            run.clear()

        for t in sorted(self.turns.values(), key=lambda t: (str(t.conversation_id), t.seq)):
            if is_offline_notice(t):
                close()
                continue
            last = run[-1] if run else None
            if last is None or not (last.conversation_id == t.conversation_id and last.seq == t.seq - 1
                                    and _speaker(last) == _speaker(t) and len(run) < UNIT_MAX
                                    and abs((t.occurred_at - last.occurred_at).total_seconds()) <= UNIT_GAP_S):
                close()
            run.append(t)
        close()
        return out


def _speaker(t: TurnRecorded) -> str:
    return str(t.metadata.get("speaker") or t.role)
