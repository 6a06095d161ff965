"""One exception tree. Adapters translate library errors into it; the delivery layer
(convmem.delivery) is the only place that decides to retry or dead-letter."""


class ConvmemError(Exception):
    """Base of every error convmem raises on purpose."""


class RetryableError(ConvmemError):
    """A dependency (Postgres, Kafka, the vector index, the LLM) is unavailable or
    overloaded. The same input will succeed later: back off, never commit past it."""


class PoisonError(ConvmemError):
    """The input itself is wrong (bad JSON, unknown schema version, failed validation,
    a conversation that belongs to someone else). Retrying cannot help: dead-letter it."""


class OwnershipConflict(PoisonError):
    """An event names a conversation that belongs to a different tenant or user."""


class ConversationClosed(ConvmemError):
    """A turn arrived for a conversation that was deleted: it is dropped, not stored, so a
    redelivered or late event cannot bring deleted history back."""
