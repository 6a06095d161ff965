"""What the edge decides before an event goes to Kafka: is this message new, may its author
post into the conversation it names, and which ids it gets. Plain functions over the ports
they need (no HTTP here); the routes in services.ingest.http call them and publish."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from contracts import MessageReceived, identity
from convmem.errors import ConvmemError
from convmem.ports import Conversations, MessageLookup, TenantPolicies
from services.ingest.attachments import with_attachments
from services.ingest.principal import Principal, author_for, conversation_not_found
from services.ingest.schemas import PostMessage


class Unacceptable(ConvmemError):
    """409: a valid message that this tenant's policy would not keep (older than its
    retention); names the field. Not a 422: the request is valid, the tenant's state refuses it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


@dataclass(frozen=True)
class RetentionWindow:
    """What the retention sweep keeps: messages that occurred after now minus the tenant's
    message retention (its own policy, else the default). The edge and the importer refuse what
    the next sweep would delete, so that a 202 (or an import report) is never followed by a purge."""

    policies: TenantPolicies
    default_days: int

    async def cutoff(self, tenant_id: str, now: datetime | None = None) -> datetime:
        own = await self.policies.tenant_policy(tenant_id)
        days = own.message_retention_days if own is not None and own.message_retention_days else self.default_days
        return (now or datetime.now(UTC)) - timedelta(days=days)


@dataclass(frozen=True)
class Acceptance:
    message_id: UUID
    conversation_id: UUID
    event: MessageReceived | None  # None: this external id was accepted before, publish nothing

    @property
    def duplicate(self) -> bool:
        return self.event is None


async def accept_message(lookup: MessageLookup, conversations: Conversations, who: Principal,
                         post: PostMessage, retention: RetentionWindow | None = None,
                         retried: tuple[UUID, UUID] | None = None) -> Acceptance:
    """The caller's right to post as the user comes first (403), then the dedupe (a retry gets
    the ids of the first attempt, wherever it went), then retention (422: a message older than
    the tenant keeps messages), then the conversation rule (404). `retried`: the message and
    conversation ids a keyless message was given by an attempt of unknown outcome
    (services.ingest.unconfirmed), so that this retry lands on them."""
    author = author_for(who, post.user_id, post.role, post.reply_expected)
    tenant = who.tenant_id
    content_type, text, metadata = with_attachments(post.text, post.metadata, post.attachments)
    if post.external_id is not None:
        # Scoped to the author: another user's message with the same key is a new message.
        known = await lookup.message_ref(tenant, post.user_id, post.external_id)
        if known is not None:
            return Acceptance(message_id=known[0], conversation_id=known[1], event=None)
    now = datetime.now(UTC)
    # Retention is at least one day: only older messages need the tenant's policy looked up.
    if post.occurred_at is not None and retention is not None and post.occurred_at < now - timedelta(days=1) \
            and post.occurred_at < await retention.cutoff(tenant, now):
        raise Unacceptable("occurred_at", "older than this tenant's message retention: it would be deleted by the "
                                          "next retention sweep")
    conversation_id = await _conversation_for(conversations, author, post)
    # Derived from the producer's idempotency key, so a retry that raced past the dedupe
    # above still lands on the same ids and the recorder stores it once.
    message_id = (identity.message_id_for_external(tenant, post.user_id, post.external_id)
                  if post.external_id is not None else uuid4())
    if retried is not None and post.external_id is None:
        message_id = retried[0]
        if post.conversation_id is None:
            conversation_id = retried[1]
    event = MessageReceived(
        tenant_id=tenant, user_id=post.user_id, conversation_id=conversation_id, message_id=message_id,
        external_id=post.external_id, channel="http", text=text, role=post.role, content_type=content_type,
        reply_expected=post.reply_expected and post.role == "user",
        occurred_at=post.occurred_at or now, metadata=metadata,
    )
    return Acceptance(message_id=message_id, conversation_id=conversation_id, event=event)


async def _conversation_for(conversations: Conversations, author: Principal, post: PostMessage) -> UUID:
    if post.conversation_id is not None:
        # The unscoped lookup, on purpose: a tenant-scoped one answers "unknown" for another
        # tenant's id, which would be accepted here as a new conversation (202) and then
        # dead-lettered by the recorder as an ownership conflict. An unknown id is a new one.
        known = await conversations.conversation(post.conversation_id)
        if known is not None and not author.sees(known):
            raise conversation_not_found()
        return post.conversation_id
    if post.external_id is not None:
        return identity.conversation_id_for_external(author.tenant_id, author.subject, post.external_id)
    return uuid4()


async def not_yet_stored(lookup: MessageLookup, messages: Sequence[MessageReceived]) -> list[MessageReceived]:
    """Meta redelivers webhooks for days: drop the messages already stored, in order (the
    recorder dedupes whatever slips through, e.g. two redeliveries racing). One lookup per
    tenant in the batch, not one per message."""
    keys: dict[str, list[tuple[str, str]]] = {}
    for m in messages:
        if m.external_id is not None:
            keys.setdefault(m.tenant_id, []).append((m.user_id, m.external_id))
    stored = {tenant: await lookup.known_external_ids(tenant, pairs) for tenant, pairs in keys.items()}
    return [m for m in messages
            if m.external_id is None or (m.user_id, m.external_id) not in stored[m.tenant_id]]
