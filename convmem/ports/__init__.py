"""The ports domain code depends on: records (plain values), storage ports (one per role)
and compute ports (vector index, embedder, chat model). Adapters implement them over
asyncpg, Qdrant, ONNX and the openai client; tests implement them with fakes."""

from convmem.ports.channels import OutgoingText, WhatsAppApi
from convmem.ports.compute import ChatModel, Embedder, SigningKeys, TokenCounter, VectorIndex
from convmem.ports.operations import Backlog, LetterFilter, Pending, Pipeline, Position, ReplayLog
from convmem.ports.records import (
    AmendOutcome,
    ChatMessage,
    ClaimOutcome,
    Completion,
    ConversationFilter,
    ConversationInfo,
    ConversationRef,
    ConversationStatus,
    DeliveredPart,
    Delivery,
    Enrichment,
    ErasureStatus,
    KeyDisclosure,
    MemoryScope,
    PartState,
    PointKind,
    RecordOutcome,
    SendPart,
    Speaker,
    Stats,
    StoredReply,
    Summary,
    TenantPolicy,
    TicketGrant,
    Unit,
    UserSummary,
    VectorHit,
    VectorPoint,
    speaker_name,
)
from convmem.ports.storage import (
    Conversations,
    DeliveryLog,
    EmbeddingLedger,
    Health,
    MemoryReader,
    MessageLookup,
    PrivacyLedger,
    ReplyLedger,
    RetentionLedger,
    SendLedger,
    Storage,
    StreamTickets,
    SubjectKeys,
    TenantPolicies,
    TurnLedger,
    UserAliases,
)
from convmem.ports.streams import FeedItem, ReplyFeed, TextStream, TokenSink

__all__ = [
    "AmendOutcome", "Backlog", "ChatMessage", "ChatModel", "ClaimOutcome", "Completion", "ConversationFilter", "ConversationInfo",
    "ConversationRef", "ConversationStatus", "Conversations", "DeliveredPart", "Delivery", "DeliveryLog",
    "Embedder", "EmbeddingLedger", "Enrichment", "ErasureStatus", "FeedItem", "Health", "KeyDisclosure", "LetterFilter",
    "MemoryReader", "MemoryScope", "MessageLookup", "OutgoingText", "PartState", "Pending", "Pipeline", "PointKind", "Position", "PrivacyLedger",
    "RecordOutcome", "ReplayLog", "ReplyFeed", "ReplyLedger", "RetentionLedger", "SendLedger", "SendPart", "SigningKeys", "Speaker", "Stats",
    "Storage", "StoredReply", "StreamTickets", "SubjectKeys", "Summary", "TenantPolicies", "TenantPolicy", "TextStream", "TicketGrant",
    "TokenCounter", "TokenSink", "TurnLedger", "Unit", "UserAliases", "UserSummary", "VectorHit", "VectorIndex", "VectorPoint",
    "WhatsAppApi", "speaker_name",
]
