"""Retry and dead-lettering, in one place: every subscription of convmem.delivery runs its
handler through `DeliveryPolicy.run`, named by its consumer group.

- RetryableError (a dependency is down): back off and run the handler again, in place. The
  offset is not committed, the partition waits, per-conversation order is kept: nothing lost.
- PoisonError (our own validation says the input can never succeed: undecodable bytes, an
  event that fails its contract, a conversation owned by someone else): the original bytes go
  to `<topic>.dlq` with the reason in headers at once, and the partition moves on.
- Anything else (a bug, a library error we did not translate) is retried with backoff and
  logged; once it has failed `max_attempts` times it is dead-lettered with its reason, so a
  programming error is reported and retried, never silently treated as bad input.
- Anything that still escapes (the DLQ itself unreachable) is nacked by FastStream's
  NACK_ON_ERROR policy: the consumer seeks back and the record is delivered again.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog
from aiokafka.structs import ConsumerRecord
from faststream.kafka import KafkaBroker
from pydantic import BaseModel, ValidationError

from contracts import topics
from convmem.delivery import headers
from convmem.errors import PoisonError, RetryableError

log = structlog.get_logger("convmem.delivery")

E = TypeVar("E", bound=BaseModel)


def decode_event(model: type[E], record: ConsumerRecord) -> E:
    """Strictly decode one record into its contract; PoisonError says why it cannot be."""
    try:
        return model.model_validate_json(record.value or b"")
    except ValidationError as exc:
        raise PoisonError(f"invalid {model.__name__}: {reason(exc)}") from exc


def reason(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        return f"validation failed at {where}: {first['msg']}"
    return f"{type(exc).__name__}: {exc}"[:1000]


@dataclass
class DeliveryPolicy:
    """Shared by every subscription of a broker. Each run names the consumer group it runs
    for, so a dead-lettered record says which of a topic's groups failed it (replay re-sends
    it to that group only)."""

    max_attempts: int = 3
    backoff_max_s: float = 30.0
    backoff_base_s: float = 0.2
    broker: KafkaBroker | None = None
    dead_lettered: int = field(default=0, init=False)
    on_dead_letter: list[Callable[[str, str], None]] = field(default_factory=list)

    def backoff(self, attempt: int) -> float:
        delay = min(self.backoff_max_s, self.backoff_base_s * 2.0 ** min(attempt, 16))
        return delay * (0.5 + random.random() / 2)

    async def dead_letter(self, record: ConsumerRecord, reason: str, group: str) -> None:
        """To `<topic>.dlq`, with the headers of convmem.delivery.headers (the record's own
        headers travel along, so a replay restores them)."""
        assert self.broker is not None, "DeliveryPolicy.broker must be set before consuming"
        dlq = topics.dead_letter_topic(record.topic)
        await self.broker.publish(record.value or b"", topic=dlq, key=record.key,
                                  headers=headers.dead_letter(record, reason, group))
        self.dead_lettered += 1
        log.warning("dead_lettered", topic=record.topic, partition=record.partition,
                    offset=record.offset, dlq=dlq, group=group, reason=reason)
        for hook in self.on_dead_letter:
            hook(record.topic, reason)

    async def run(self, call: Callable[[], Awaitable[Any]], records: Sequence[ConsumerRecord], group: str) -> Any:
        attempt = 0
        while True:
            try:
                return await call()
            except RetryableError as exc:
                delay = self.backoff(attempt)
                log.warning("retrying", error=str(exc), attempt=attempt + 1, delay_s=round(delay, 2), group=group,
                            **_where(records))
            except PoisonError as exc:
                for record in records:
                    await self.dead_letter(record, reason(exc), group)
                return None
            except Exception as exc:
                if attempt + 1 >= self.max_attempts:
                    log.exception("attempts_exhausted", attempts=attempt + 1, group=group, **_where(records))
                    for record in records:
                        await self.dead_letter(record, f"exhausted {attempt + 1} attempts: {reason(exc)}", group)
                    return None
                delay = self.backoff(attempt)
                log.warning("handler_failed", error=reason(exc), attempt=attempt + 1, group=group, **_where(records))
            attempt += 1
            await asyncio.sleep(delay)


def _where(records: Sequence[ConsumerRecord]) -> dict[str, Any]:
    first = records[0] if records else None
    if first is None:
        return {}
    return {"topic": first.topic, "partition": first.partition, "offset": first.offset, "records": len(records)}
