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

Every run is counted here too (convmem.telemetry.metrics): records processed, retried, dead-lettered
or dropped per consumer group and topic, and each attempt's handler time. Each attempt also
stamps the group's last activity, which liveness reads to tell a stuck consumer from an idle one.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import structlog
from aiokafka.structs import ConsumerRecord
from faststream.kafka import KafkaBroker
from pydantic import BaseModel, ValidationError

from contracts import topics
from convmem.delivery import headers
from convmem.errors import PoisonError, RetryableError
from convmem.telemetry import metrics

log = structlog.get_logger("convmem.delivery")


@dataclass
class _Run:
    """One run of the policy, seen by everything its call does (the tasks a batch fans out
    to copy the context, and so share this object)."""

    # Records of the current attempt settled alone (dead-lettered or dropped inside a batch
    # that otherwise succeeded): they are not counted again as processed.
    settled: int = 0
    # Positions dead-lettered over all attempts: a batch retried after one of its records
    # went to the DLQ alone must not send that record there again.
    dead: set[tuple[str, int, int]] = field(default_factory=set)


_run: ContextVar[_Run | None] = ContextVar("convmem_delivery_run", default=None)

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
    # consumer group -> time.monotonic() of its last handler attempt (start or end), for liveness
    active_at: dict[str, float] = field(default_factory=dict)

    def backoff(self, attempt: int) -> float:
        delay = min(self.backoff_max_s, self.backoff_base_s * 2.0 ** min(attempt, 16))
        return delay * (0.5 + random.random() / 2)

    async def dead_letter(self, record: ConsumerRecord, reason: str, group: str) -> None:
        """To `<topic>.dlq`, with the headers of convmem.delivery.headers (the record's own
        headers travel along, so a replay restores them)."""
        assert self.broker is not None, "DeliveryPolicy.broker must be set before consuming"
        dlq = topics.dead_letter_topic(record.topic)
        run = _run.get()
        where = (record.topic, record.partition, record.offset)
        if run is not None and where in run.dead:
            _settle_alone()  # a retried batch meets its poison record again: it is in the DLQ once
            return
        await self.broker.publish(record.value or b"", topic=dlq, key=record.key,
                                  headers=headers.dead_letter(record, reason, group))
        if run is not None:
            run.dead.add(where)
        self.dead_lettered += 1
        metrics.events(group, record.topic, "dead_lettered")
        _settle_alone()
        log.warning("dead_lettered", topic=record.topic, partition=record.partition,
                    offset=record.offset, dlq=dlq, group=group, reason=reason)
        for hook in self.on_dead_letter:
            hook(record.topic, reason)

    def settled(self, record: ConsumerRecord, group: str, outcome: Literal["dropped", "skipped"]) -> None:
        """A record acknowledged without effect: `dropped`, its subject was erased; `skipped`,
        a dead letter replayed for another group of the topic."""
        metrics.events(group, record.topic, outcome)
        _settle_alone()

    async def run(self, call: Callable[[], Awaitable[Any]], records: Sequence[ConsumerRecord], group: str) -> Any:
        run = _Run()
        token = _run.set(run)
        try:
            return await self._attempts(call, records, group, run)
        finally:
            _run.reset(token)

    async def _attempts(self, call: Callable[[], Awaitable[Any]], records: Sequence[ConsumerRecord], group: str,
                        run: _Run) -> Any:
        attempt = 0
        topic = records[0].topic if records else ""
        while True:
            run.settled = 0  # a retried batch settles its poison records again
            started = self.active_at[group] = time.monotonic()
            try:
                result = await call()
            except RetryableError as exc:
                self._attempted(group, started)
                metrics.events(group, topic, "retried", len(records))
                delay = self.backoff(attempt)
                log.warning("retrying", error=str(exc), attempt=attempt + 1, delay_s=round(delay, 2), group=group,
                            **_where(records))
            except PoisonError as exc:
                self._attempted(group, started)
                for record in records:
                    await self.dead_letter(record, reason(exc), group)
                return None
            except Exception as exc:
                self._attempted(group, started)
                if attempt + 1 >= self.max_attempts:
                    log.exception("attempts_exhausted", attempts=attempt + 1, group=group, **_where(records))
                    for record in records:
                        await self.dead_letter(record, f"exhausted {attempt + 1} attempts: {reason(exc)}", group)
                    return None
                metrics.events(group, topic, "retried", len(records))
                delay = self.backoff(attempt)
                log.warning("handler_failed", error=reason(exc), attempt=attempt + 1, group=group, **_where(records))
            else:
                self._attempted(group, started)
                metrics.events(group, topic, "processed", len(records) - run.settled)
                return result
            attempt += 1
            await asyncio.sleep(delay)

    def _attempted(self, group: str, started: float) -> None:
        now = self.active_at[group] = time.monotonic()
        metrics.event_seconds(group, now - started)


def _settle_alone() -> None:
    run = _run.get()
    if run is not None:
        run.settled += 1


def _where(records: Sequence[ConsumerRecord]) -> dict[str, Any]:
    first = records[0] if records else None
    if first is None:
        return {}
    return {"topic": first.topic, "partition": first.partition, "offset": first.offset, "records": len(records)}
