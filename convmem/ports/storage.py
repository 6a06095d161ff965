"""The storage ports, one per role that uses them. A domain function takes only the ports it
needs, so its signature says what it may touch: the recorder cannot read memory, the
responder cannot erase a subject. Every read of turns takes a MemoryScope (tenant and user
are mandatory), so an unscoped read cannot be written.

Postgres implements each port in its own module (convmem.adapters.postgres); the tests have
one fake per port (tests/fakes), declared against the protocol so that the type checker
flags a method the fake forgot."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from contracts import DeliveryStatusChanged, MessageAmended, MessageReceived, ReplyGenerated, TurnRecorded
from convmem.ports.operations import Backlog, ReplayLog
from convmem.ports.records import (
    AmendOutcome,
    ClaimOutcome,
    ConversationFilter,
    ConversationInfo,
    ConversationRef,
    ConversationStatus,
    Delivery,
    Enrichment,
    ErasureStatus,
    KeyDisclosure,
    MemoryScope,
    RecordOutcome,
    SendPart,
    Stats,
    StoredReply,
    Summary,
    TenantPolicy,
    TicketGrant,
    Unit,
    UserSummary,
)


class TurnLedger(Protocol):
    """Recording turns once each and remembering which were announced (indexer.record)."""

    async def record_turn(self, event: MessageReceived | ReplyGenerated,
                          enrichment: Enrichment | None = None) -> RecordOutcome: ...
    async def mark_turn_published(self, message_id: UUID) -> None: ...
    async def mark_turns_published(self, message_ids: Sequence[UUID]) -> None: ...
    async def amend_turn(self, amendment: MessageAmended) -> AmendOutcome:
        """Keep the amendment once and apply it to its turn: an edit replaces the text (the
        full-text index follows) unless a later edit was applied, a revoke takes the turn out
        of history and search. A turn not recorded yet gets it when `record_turn` stores it
        (a revoked one is then stored out of history and never announced)."""
        ...


class DeliveryLog(Protocol):
    """Delivery states a channel reported for a message (indexer.statuses), and how a reply
    travelled: the sender's record of each part with those states (the read API)."""

    async def record_delivery_status(self, event: DeliveryStatusChanged) -> None:
        """Keep the state; a status naming one of our reply parts (callback data) also gives
        that part its message id and settles a send that was never recorded as sent."""
        ...

    async def deliveries(self, tenant_id: str, message_ids: Sequence[UUID]) -> dict[UUID, Delivery]: ...


class SendLedger(Protocol):
    """Each part of a reply sent at most once (the sender): claimed before the request,
    its outcome recorded after. A claim older than `lease_s` that was never recorded was
    left by a sender that stopped mid-request: it becomes "unknown" and is never sent again."""

    async def claim_send(self, part: SendPart, lease_s: float) -> ClaimOutcome: ...
    async def record_sent(self, part: SendPart, wamid: str) -> None: ...
    async def record_failed(self, part: SendPart, code: int, error: str) -> None: ...
    async def record_unknown(self, part: SendPart) -> None: ...
    async def release_send(self, part: SendPart, error: str) -> None: ...
    async def record_skipped(self, part: SendPart, reason: str) -> None: ...


class EmbeddingLedger(Protocol):
    """The current text of turns to embed, and which were embedded (indexer.embed)."""

    async def texts_to_embed(self, message_ids: Sequence[UUID]) -> dict[UUID, str]: ...
    async def mark_embedded(self, message_ids: Sequence[UUID]) -> None: ...
    async def stale_units(self, conversation_ids: Sequence[UUID] | None, limit: int) -> list[Unit]:
        """Units whose vector is out of date (new, grown, a member changed or gone), of these
        conversations or of any; an empty `text` means its point must go."""
        ...
    async def units_embedded(self, units: Sequence[Unit]) -> None:
        """These versions are in the index (or, empty, out of it): a unit changed since
        stays stale, and an empty one is forgotten."""
        ...


class MemoryReader(Protocol):
    """Scoped reads of one user's turns: history, search candidates and summaries."""

    async def recent_turns(self, scope: MemoryScope, before_seq: int, limit: int) -> list[TurnRecorded]: ...
    async def turns_by_ids(self, scope: MemoryScope, ids: Sequence[UUID]) -> list[TurnRecorded]: ...
    async def conversation_turns(
        self, scope: MemoryScope, after_seq: int, limit: int
    ) -> list[TurnRecorded] | None: ...
    async def search_text(self, scope: MemoryScope, query: str, limit: int,
                          context: float = 0.0) -> list[tuple[UUID, float]]: ...
    async def search_units(self, scope: MemoryScope, query: str, limit: int) -> list[tuple[list[UUID], float]]:
        """Units (bursts) sharing words with the query, scored as search_text scores turns:
        each unit's members (in order) and its score."""
        ...
    async def people(self, scope: MemoryScope, recent: int = 1000) -> dict[str, int]: ...
    async def last_said_at(self, scope: MemoryScope) -> datetime | None: ...
    async def addressed(self, scope: MemoryScope, names: Sequence[str]) -> dict[str, dict[str, int]]: ...
    async def neighbours(self, scope: MemoryScope, places: Sequence[tuple[UUID, int]],
                         radius: int) -> list[TurnRecorded]: ...
    async def neighbourhood(self, scope: MemoryScope, ids: Sequence[UUID], radius: int) -> list[TurnRecorded]: ...
    async def summary(self, conversation_id: UUID) -> Summary | None: ...


class ReplyLedger(Protocol):
    """One reply per user turn: claimed before it is published, marked once it was."""

    async def find_reply(self, in_reply_to: UUID) -> StoredReply | None: ...
    async def claim_reply(self, reply: ReplyGenerated) -> StoredReply: ...
    async def mark_reply_published(self, in_reply_to: UUID) -> None: ...


class Conversations(Protocol):
    """Conversations as a resource: who owns one, listing, renaming, archiving, deleting,
    the summary and title written about one, and usage statistics."""

    async def conversation(self, conversation_id: UUID) -> ConversationRef | None: ...
    async def conversation_info(self, tenant_id: str, conversation_id: UUID) -> ConversationInfo | None: ...
    async def list_conversations(self, where: ConversationFilter, limit: int) -> list[ConversationInfo]: ...
    async def update_conversation(self, tenant_id: str, conversation_id: UUID, *, title: str | None = None,
                                  status: ConversationStatus | None = None) -> ConversationInfo | None: ...
    async def delete_conversation(self, tenant_id: str, conversation_id: UUID) -> list[UUID]: ...
    async def set_model_title(self, conversation_id: UUID, title: str) -> bool: ...
    async def save_summary(self, scope: MemoryScope, summary: Summary) -> None: ...
    async def stats(self, tenant_id: str, user_id: str | None) -> Stats: ...


class MessageLookup(Protocol):
    """Was this producer's idempotency key (external id) stored already? Keys are scoped to a
    tenant and a user: another user's message with the same key is another message."""

    async def message_ref(self, tenant_id: str, user_id: str, external_id: str) -> tuple[UUID, UUID] | None: ...
    async def known_external_ids(self, tenant_id: str, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """The (user id, external id) pairs of `keys` already stored in the tenant."""
        ...


class UserAliases(Protocol):
    """Other ids a channel's user is known by (a WhatsApp number or business-scoped id after a
    change): each names the user id their history is kept under."""

    async def resolve_aliases(self, tenant_id: str, ids: Sequence[str]) -> dict[str, str]:
        """The ids of `ids` that are aliases, each with the user id it names."""
        ...

    async def add_aliases(self, tenant_id: str, user_id: str, aliases: Sequence[str], changed_at: datetime) -> str:
        """Make `aliases` name `user_id`'s user (itself resolved first, so chains of changes end
        at the first id) and return that user id. A later change of the same alias wins."""
        ...


class SubjectKeys(Protocol):
    """Per-user data keys that seal event text; erasure destroys them (crypto-shredding)."""

    async def subject_key(self, tenant_id: str, user_id: str) -> tuple[UUID, bytes]: ...
    async def key_by_id(self, key_id: UUID) -> bytes | None: ...
    async def disclose_key(self, key_id: UUID, tenant_id: str, served_to: str) -> KeyDisclosure | None:
        """A key of this tenant for a downstream consumer (None: no such key in the tenant);
        a live key's disclosure is recorded (who, when) before it is returned."""
        ...


class PrivacyLedger(Protocol):
    """A data subject as a whole: erasure requests, the interaction summary, the export."""

    async def request_erasure(self, request_id: UUID, tenant_id: str, user_id: str, requested_by: str,
                              requested_at: datetime) -> ErasureStatus: ...
    async def erasure_status(self, tenant_id: str, user_id: str) -> ErasureStatus | None: ...
    async def erase_subject(self, request_id: UUID, tenant_id: str, user_id: str) -> ErasureStatus: ...
    async def mark_erasure_announced(self, request_id: UUID) -> None: ...
    async def compact_erased(self) -> None:
        """Make what erasures deleted leave the store's files: destroyed keys at once, deleted
        rows out of tables and indexes. Slow on large stores: run it after erasures, off the
        path of any request."""
        ...
    async def user_summary(self, tenant_id: str, user_id: str) -> UserSummary | None: ...
    def export_rows(self, tenant_id: str, user_id: str, what: str,
                    batch: int = 500) -> AsyncIterator[dict[str, Any]]: ...


class TenantPolicies(Protocol):
    async def tenant_policy(self, tenant_id: str) -> TenantPolicy | None: ...
    async def set_tenant_policy(self, policy: TenantPolicy) -> TenantPolicy: ...


class RetentionLedger(Protocol):
    """What the retention sweep and the PII scrubber change: expiry, and scrubbed text
    together with what was derived from it (titles, summaries)."""

    async def purge_expired(self, cutoff: datetime, batch: int,
                            deleted_before: datetime | None = None) -> list[UUID]: ...
    async def purge_summaries(self, cutoff: datetime) -> tuple[int, int]: ...
    async def turns_due_for_scrub(self, default_cutoff: datetime, default_mode: str, batch: int
                                  ) -> list[TurnRecorded]: ...
    async def record_scrub(self, message_id: UUID, text: str | None, kinds: dict[str, int]) -> bool: ...
    async def derived_texts(self, conversation_id: UUID) -> tuple[str | None, str | None]: ...
    async def replace_derived_texts(self, conversation_id: UUID, title: str | None, summary: str | None) -> None: ...


class Health(Protocol):
    async def ping(self) -> None: ...


class StreamTickets(Protocol):
    """Short-lived, single-use tickets that open one event stream (browsers' EventSource and
    WebSocket cannot send an Authorization header). Kept by digest only: whoever reads the
    store cannot use what it finds. Shared by every edge process, so a ticket issued by one
    is redeemed by any, once."""

    async def issue_ticket(self, digest: bytes, grant: TicketGrant, ttl_s: float) -> None: ...

    async def redeem_ticket(self, digest: bytes, stream: str) -> TicketGrant | None:
        """The grant, and the ticket is gone; None when unknown, expired, used, or for
        another stream (a ticket for another stream stays usable for its own)."""
        ...


@dataclass(frozen=True)
class Storage:
    """Every storage port of one backing store, each its own object. The composition root
    hands each role the few it needs; nothing else holds the whole set."""

    turns: TurnLedger
    deliveries: DeliveryLog
    embeddings: EmbeddingLedger
    memory: MemoryReader
    replies: ReplyLedger
    conversations: Conversations
    lookup: MessageLookup
    keys: SubjectKeys
    privacy: PrivacyLedger
    policies: TenantPolicies
    retention: RetentionLedger
    health: Health
    sends: SendLedger
    backlog: Backlog
    replays: ReplayLog
    aliases: UserAliases
    tickets: StreamTickets
