"""The ports domain code depends on: records (plain values), storage ports (one per role)
and compute ports (vector index, embedder, chat model). Adapters implement them over
asyncpg, Qdrant, ONNX and the openai client; tests implement them with fakes."""

from convmem.ports.compute import ChatModel, Embedder, SigningKeys, TokenCounter, VectorIndex
from convmem.ports.records import (
    ChatMessage,
    Completion,
    ConversationFilter,
    ConversationInfo,
    ConversationRef,
    ConversationStatus,
    Enrichment,
    ErasureStatus,
    MemoryScope,
    RecordOutcome,
    Speaker,
    Stats,
    StoredReply,
    Summary,
    TenantPolicy,
    UserSummary,
    VectorHit,
    VectorPoint,
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
    Storage,
    SubjectKeys,
    TenantPolicies,
    TurnLedger,
)

__all__ = [
    "ChatMessage", "ChatModel", "Completion", "ConversationFilter", "ConversationInfo", "ConversationRef",
    "ConversationStatus", "Conversations", "DeliveryLog", "Embedder", "EmbeddingLedger", "Enrichment",
    "ErasureStatus", "Health", "MemoryReader", "MemoryScope", "MessageLookup", "PrivacyLedger", "RecordOutcome",
    "ReplyLedger", "RetentionLedger", "SigningKeys", "Speaker", "Stats", "Storage", "StoredReply", "SubjectKeys",
    "Summary", "TenantPolicies", "TenantPolicy", "TokenCounter", "TurnLedger", "UserSummary", "VectorHit",
    "VectorIndex", "VectorPoint",
]
