"""One exception tree. Adapters translate library errors into it; the delivery layer
(convmem.delivery) is the only place that decides to retry or dead-letter."""


class ConvmemError(Exception):
    """Base of every error convmem raises on purpose."""


class RetryableError(ConvmemError):
    """A dependency (Postgres, Kafka, the vector index, the LLM) is unavailable or
    overloaded. The same input will succeed later: back off, never commit past it."""


class PublishUnconfirmed(RetryableError):
    """Events were handed to the Kafka producer but not acknowledged in time (or their
    acknowledgement failed): they may be in the log now or later (the idempotent producer keeps
    retrying what it holds until the broker takes it). Whoever retries must land on the same
    ids, so that the consumers' dedupe makes the second copy harmless."""


class PoisonError(ConvmemError):
    """The input itself is wrong (bad JSON, unknown schema version, failed validation,
    a conversation that belongs to someone else). Retrying cannot help: dead-letter it."""


class OwnershipConflict(PoisonError):
    """An event names a conversation that belongs to a different tenant or user."""


class ConversationClosed(ConvmemError):
    """A turn arrived for a conversation that was deleted: it is dropped, not stored, so a
    redelivered or late event cannot bring deleted history back."""


class SendRejected(PoisonError):
    """A channel refused a message for good (the recipient cannot receive it, the 24-hour
    window is closed, our token is invalid): sending it again cannot help."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"channel refused the message: code {code}: {detail}")
        self.code, self.detail = code, detail


class SendOutcomeUnknown(ConvmemError):
    """The request may have reached the channel but no answer came back (a timeout after it
    was written, a dropped connection). With no idempotency key, sending again could deliver
    it twice, so it is not sent again."""


class IndexUnavailable(ConvmemError):
    """The vector index cannot be used as asked: another process holds the embedded index,
    it was built with another embedding model, or another rebuild of it is running. The
    message is one line for the operator; retrying as is cannot help."""
