"""Retry and dead-lettering, in one place, as a FastStream middleware on every subscriber.

- RetryableError (a dependency is down): back off and run the handler again, in place. The
  offset is not committed, the partition waits, per-conversation order is kept: nothing lost.
- PoisonError, a validation error, undecodable bytes, or any other error that persists for
  `max_attempts`: the original bytes go to `<topic>.dlq` with the reason in headers, and the
  partition moves on.
- Anything that still escapes (the DLQ itself unreachable) is nacked by FastStream's
  NACK_ON_ERROR policy: the consumer seeks back and the record is delivered again.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TypeVar

import structlog
from aiokafka.structs import ConsumerRecord
from faststream import BaseMiddleware
from faststream.kafka import KafkaBroker
from pydantic import BaseModel, ValidationError

from contracts import MessageReceived, ReplyGenerated, TurnRecorded, topics
from convmem.errors import PoisonError, RetryableError
from convmem.sealing import Sealer, SubjectKeyDestroyed

log = structlog.get_logger("convmem.delivery")

E = TypeVar("E", bound=BaseModel)
Sealable = TypeVar("Sealable", MessageReceived, ReplyGenerated, TurnRecorded)

_POISON = (PoisonError, ValidationError, UnicodeDecodeError, ValueError)


def decode_event(model: type[E], record: ConsumerRecord) -> E:
    """Strictly decode one record into its contract; PoisonError says why it cannot be."""
    try:
        return model.model_validate_json(record.value or b"")
    except ValidationError as exc:
        raise PoisonError(f"invalid {model.__name__}: {_reason(exc)}") from exc


async def open_or_drop(sealer: Sealer, event: Sealable) -> Sealable | None:
    """The event with its sealed text opened, or None when its subject was erased: such an
    event is acknowledged and dropped, which is what erasure means for the event log."""
    try:
        return await sealer.open(event)
    except SubjectKeyDestroyed:
        log.info("event_dropped_subject_erased", event_id=str(event.event_id), message_id=str(event.message_id))
        return None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        return f"validation failed at {where}: {first['msg']}"
    return f"{type(exc).__name__}: {exc}"[:1000]


@dataclass
class DeliveryPolicy:
    """Shared by every subscriber of a broker; FastStream calls it to make a per-message
    middleware."""

    group: str
    max_attempts: int = 3
    backoff_max_s: float = 30.0
    backoff_base_s: float = 0.2
    broker: KafkaBroker | None = None
    dead_lettered: int = field(default=0, init=False)
    on_dead_letter: list[Callable[[str, str], None]] = field(default_factory=list)

    def __call__(self, msg: Any, /, *, context: Any) -> _Delivery:
        return _Delivery(msg, context=context, policy=self)

    def backoff(self, attempt: int) -> float:
        delay = min(self.backoff_max_s, self.backoff_base_s * 2 ** min(attempt, 16))
        return delay * (0.5 + random.random() / 2)

    async def dead_letter(self, record: ConsumerRecord, reason: str) -> None:
        assert self.broker is not None, "DeliveryPolicy.broker must be set before consuming"
        dlq = topics.dead_letter_topic(record.topic)
        await self.broker.publish(
            record.value or b"", topic=dlq, key=record.key,
            headers={
                "x-error": reason,
                "x-original-topic": record.topic,
                "x-original-partition": str(record.partition),
                "x-original-offset": str(record.offset),
                "x-consumer-group": self.group,
                "x-failed-at": datetime.now(UTC).isoformat(),
            },
        )
        self.dead_lettered += 1
        log.warning("dead_lettered", topic=record.topic, partition=record.partition,
                    offset=record.offset, dlq=dlq, reason=reason)
        for hook in self.on_dead_letter:
            hook(record.topic, reason)

    async def run(self, call: Callable[[], Awaitable[Any]], records: tuple[ConsumerRecord, ...]) -> Any:
        attempt = 0
        while True:
            try:
                return await call()
            except RetryableError as exc:
                delay = self.backoff(attempt)
                log.warning("retrying", error=str(exc), attempt=attempt + 1, delay_s=round(delay, 2),
                            **_where(records))
            except _POISON as exc:
                for record in records:
                    await self.dead_letter(record, _reason(exc))
                return None
            except Exception as exc:
                if attempt + 1 >= self.max_attempts:
                    log.exception("attempts_exhausted", attempts=attempt + 1, **_where(records))
                    for record in records:
                        await self.dead_letter(record, f"exhausted {attempt + 1} attempts: {_reason(exc)}")
                    return None
                delay = self.backoff(attempt)
                log.warning("handler_failed", error=_reason(exc), attempt=attempt + 1, **_where(records))
            attempt += 1
            await asyncio.sleep(delay)


def _where(records: tuple[ConsumerRecord, ...]) -> dict[str, Any]:
    first = records[0] if records else None
    if first is None:
        return {}
    return {"topic": first.topic, "partition": first.partition, "offset": first.offset, "records": len(records)}


def _records(raw: Any) -> tuple[ConsumerRecord, ...]:
    return tuple(raw) if isinstance(raw, tuple | list) else (raw,)


class _Delivery(BaseMiddleware):
    def __init__(self, msg: Any, /, *, context: Any, policy: DeliveryPolicy) -> None:
        super().__init__(msg, context=context)
        self.policy = policy

    async def consume_scope(self, call_next: Callable[[Any], Awaitable[Any]], msg: Any) -> Any:
        return await self.policy.run(lambda: call_next(msg), _records(msg.raw_message))

    async def after_processed(
        self, exc_type: type[BaseException] | None = None, exc_val: BaseException | None = None,
        exc_tb: TracebackType | None = None,
    ) -> bool | None:
        # Decoding failures happen before consume_scope: bytes that are not JSON at all.
        if exc_val is not None and isinstance(exc_val, Exception) and not isinstance(exc_val, RetryableError):
            for record in _records(self.msg):
                await self.policy.dead_letter(record, f"undecodable: {_reason(exc_val)}")
            return True
        return False
