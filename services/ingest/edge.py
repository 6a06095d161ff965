"""What the HTTP edge may touch: the few storage ports its routes read or write, the event
sink, the retriever for search and the context builder. The composition root builds one;
routes receive it."""

from __future__ import annotations

from dataclasses import dataclass

from convmem.memory.context import ContextBuilder
from convmem.memory.retrieval import Retriever
from convmem.ports import (
    Conversations,
    DeliveryLog,
    Health,
    MemoryReader,
    MessageLookup,
    PrivacyLedger,
    ReplyFeed,
    ReplyLedger,
    StreamTickets,
    SubjectKeys,
    TenantPolicies,
    UserAliases,
)
from convmem.ports.analytics import Analytics
from convmem.ports.console import ConsoleLedger
from services.ingest.sink import EventSink


@dataclass(frozen=True)
class EdgePorts:
    lookup: MessageLookup
    conversations: Conversations
    memory: MemoryReader
    privacy: PrivacyLedger
    policies: TenantPolicies
    health: Health
    sink: EventSink
    retriever: Retriever | None = None  # None: search is not served by this node
    # Replies reaching people: `wait` and event streams (feed, replies), delivery states in
    # the history (deliveries), data keys for downstream consumers (keys). None: not served.
    feed: ReplyFeed | None = None
    replies: ReplyLedger | None = None
    deliveries: DeliveryLog | None = None
    keys: SubjectKeys | None = None
    context: ContextBuilder | None = None  # the responder's context block, for GET /v1/context
    aliases: UserAliases | None = None  # WhatsApp users' changed numbers; None: not followed
    console: ConsoleLedger | None = None  # the browser console's sessions and action record; None: no console
    tickets: StreamTickets | None = None  # stream tickets for browsers' EventSource and sockets
    analytics: Analytics | None = None  # GET /v1/analytics and the console's overview; None: not served
