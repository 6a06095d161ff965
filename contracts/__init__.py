"""convmem's published contracts: events, topics, derived ids. One source of truth."""

from contracts import identity, topics
from contracts.events import (
    SCHEMA_VERSION,
    ConversationEvent,
    DeliveryStatusChanged,
    Event,
    MessageReceived,
    ReplyGenerated,
    TokenUsage,
    TurnRecorded,
)

__all__ = [
    "SCHEMA_VERSION",
    "ConversationEvent",
    "DeliveryStatusChanged",
    "Event",
    "MessageReceived",
    "ReplyGenerated",
    "TokenUsage",
    "TurnRecorded",
    "identity",
    "topics",
]
