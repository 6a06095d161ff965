"""convmem's published contracts: events, topics, derived ids. One source of truth."""

from contracts import identity, topics
from contracts.events import (
    OFFLINE_MODEL,
    SCHEMA_VERSION,
    ConversationEvent,
    DeliveryStatusChanged,
    ErasureRequested,
    Event,
    MessageAmended,
    MessageReceived,
    PiiScrubbed,
    ReplyGenerated,
    ReplyTokensGenerated,
    RetentionPurged,
    Sealed,
    SubjectErased,
    TokenUsage,
    TurnRecorded,
    is_offline_notice,
)

__all__ = [
    "OFFLINE_MODEL",
    "SCHEMA_VERSION",
    "ConversationEvent",
    "DeliveryStatusChanged",
    "ErasureRequested",
    "Event",
    "MessageAmended",
    "MessageReceived",
    "PiiScrubbed",
    "ReplyGenerated",
    "ReplyTokensGenerated",
    "RetentionPurged",
    "Sealed",
    "SubjectErased",
    "TokenUsage",
    "TurnRecorded",
    "identity",
    "is_offline_notice",
    "topics",
]
