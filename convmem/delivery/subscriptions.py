"""Subscribers and publishers with the delivery concerns done once, here, for every role:

- on the way in: each record is decoded strictly into its contract (a record that cannot be
  is dead-lettered alone, its batch neighbours go on) and its sealed text is opened; an event
  whose subject was erased is acknowledged and dropped, which is what erasure means for the
  event log; a replayed dead letter is handled by the group it was replayed for and
  acknowledged unread by every other group of its topic;
- on the way out: events that carry personal text are sealed, published keyed by their
  conversation (in order per key, without waiting for one acknowledgement before sending the
  next), and only once Kafka acknowledged them all is the effect marked as published
  (publish, then mark).

A subscriber written with this module is its typed event, a call to a domain function, and
the event that function returns. A new subscriber cannot forget to open or seal: it never
sees a sealed event and never publishes one unsealed."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import structlog
from aiokafka.structs import ConsumerRecord
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from pydantic import BaseModel

from convmem.delivery import headers
from convmem.delivery.keyed import KeyedConsumer
from convmem.delivery.policy import DeliveryPolicy, decode_event
from convmem.errors import PoisonError, PublishUnconfirmed, RetryableError
from convmem.privacy.sealing import SEALABLE, Sealer, SubjectKeyDestroyed

log = structlog.get_logger("convmem.delivery")

In = TypeVar("In", bound=BaseModel)
Out = TypeVar("Out", bound=BaseModel)
# Commit only after the handler finished; start from the oldest record when a group is new.
_CONSUMER: dict[str, Any] = {"ack_policy": AckPolicy.NACK_ON_ERROR, "auto_offset_reset": "earliest"}


async def _raw(msg: KafkaMessage) -> Any:
    # FastStream hands us the records untouched; decoding is ours, one record at a time.
    return msg.body


def _key(event: BaseModel) -> bytes:
    key = getattr(event, "key", None)
    if not isinstance(key, bytes):
        raise TypeError(f"{type(event).__name__} has no Kafka key")
    return key


async def open_or_drop(sealer: Sealer, event: In) -> In | None:
    """The event with its sealed text opened, or None when its subject was erased."""
    if not isinstance(event, SEALABLE):
        return event
    sealable: Any = event  # one of SEALABLE, which the type checker cannot narrow a TypeVar to
    try:
        opened: In = await sealer.open(sealable)
        return opened
    except SubjectKeyDestroyed:
        log.info("event_dropped_subject_erased", event_id=str(event.event_id), message_id=str(event.message_id))
        return None


def _settle_quietly(futures: Sequence[asyncio.Future[Any]]) -> None:
    """Whoever gave up on these acknowledgements retrieves their outcome, whenever it comes, so
    a late failure is not reported as an exception nobody retrieved."""
    for future in futures:
        future.add_done_callback(lambda f: f.cancelled() or f.exception())


@dataclass
class Outlet(Generic[Out]):
    """A topic we publish one kind of event to."""

    publisher: Any  # FastStream's publisher: declared (and documented) before the broker connects
    sealer: Callable[[], Sealer]
    # How long the producer's hand-off and Kafka's acknowledgement may take together (None: no
    # bound). The HTTP edge answers its client within this.
    confirm_timeout_s: float | None = None

    async def publish(self, events: Sequence[Out]) -> None:
        """Seal what must be sealed and publish; returns once every event was acknowledged
        (acks=all), raising otherwise (some events may then be in the log: every consumer is
        idempotent, so the caller's retry is harmless).

        Every event is handed to the producer in the order given, and only then are the
        acknowledgements awaited: events with the same key go to one partition in that order
        (the idempotent producer keeps it through retries), and a batch of 500 costs about one
        round trip instead of 500 in a row.

        With `confirm_timeout_s`, what failed before any event was handed over was not
        published (a hand-off cancelled in time adds nothing to the producer's buffer), and
        raises as it came; once an event is in the producer's buffer it may go out later, so a
        missing or failed acknowledgement is PublishUnconfirmed."""
        sealed = await self._sealed(events)
        loop = asyncio.get_running_loop()
        deadline = None if self.confirm_timeout_s is None else loop.time() + self.confirm_timeout_s
        pending: list[asyncio.Future[Any]] = []
        try:
            for event, item in zip(events, sealed, strict=True):
                handing = self.publisher.publish(item, key=_key(event), no_confirm=True)
                pending.append(await (handing if deadline is None
                                      else asyncio.wait_for(handing, max(deadline - loop.time(), 0.001))))
        except Exception as exc:
            if pending:
                _settle_quietly(pending)
                raise PublishUnconfirmed(f"{len(pending)} of {len(events)} events handed to the producer, "
                                         f"then {type(exc).__name__}") from exc
            raise
        if deadline is None:
            results = await asyncio.gather(*pending, return_exceptions=True)
            failures = [r for r in results if isinstance(r, BaseException)]
            if failures:
                raise failures[0]
            return
        done, waiting = await asyncio.wait(pending, timeout=max(deadline - loop.time(), 0.001))
        _settle_quietly(pending)
        failed = [f for f in done if f.cancelled() or f.exception() is not None]
        if waiting or failed:
            raise PublishUnconfirmed(f"{len(waiting)} of {len(events)} events not acknowledged within "
                                     f"{self.confirm_timeout_s:g} s, {len(failed)} failed")

    async def _sealed(self, events: Sequence[Out]) -> list[BaseModel]:
        """The events with their text sealed, one subject's after another (its key is fetched
        once, then cached), different subjects' concurrently."""
        out: list[BaseModel] = list(events)
        by_subject: dict[tuple[str, str], list[int]] = defaultdict(list)
        for i, event in enumerate(events):
            if isinstance(event, SEALABLE):
                by_subject[(event.tenant_id, event.user_id)].append(i)

        async def seal(indexes: list[int]) -> None:
            for i in indexes:
                sealable: Any = events[i]
                out[i] = await self.sealer().seal(sealable)

        await asyncio.gather(*(seal(indexes) for indexes in by_subject.values()))
        return out


@dataclass
class Subscriptions:
    """Declares a role's subscribers on the broker, with the delivery policy around them."""

    broker: KafkaBroker
    policy: DeliveryPolicy
    sealer: Callable[[], Sealer]
    group_prefix: str
    bootstrap: str | None = None  # for the concurrent subscriptions' own consumers
    # Declaring for the AsyncAPI document only: concurrent subscriptions are declared as
    # FastStream subscribers (never started) so the document describes them too.
    document_only: bool = False
    # title -> contract of the records it consumes, for the AsyncAPI document
    consumed: dict[str, type[BaseModel]] = field(default_factory=dict)
    keyed: list[KeyedConsumer] = field(default_factory=list)  # started and stopped by the runtime
    groups: list[tuple[str, str]] = field(default_factory=list)  # (consumer group, topic) of each subscription
    # The groups (without the prefix) this process consumes as, when it runs only some of its
    # roles' groups (`convmem run ROLE --groups ...`, one Deployment per group); None: all.
    selected: frozenset[str] | None = None

    def outlet(self, topic: str, schema: type[Out] | None, title: str, description: str,
               confirm_timeout_s: float | None = None) -> Outlet[Out]:
        return Outlet(self.broker.publisher(topic, schema=schema, title=title, description=description),
                      self.sealer, confirm_timeout_s)

    def each(self, topic: str, *, group: str, event: type[In], title: str, description: str,
             publish_to: Outlet[Out] | None = None,
             mark: Callable[[Sequence[Out]], Awaitable[None]] | None = None,
             max_records: int | None = None, batch_timeout_ms: int = 10, concurrency: int = 1,
             wants: Callable[[In], bool] | None = None,
             ) -> Callable[[Callable[[In], Awaitable[Out | None]]], Callable[[In], Awaitable[Out | None]]]:
        """A handler of one event that returns the event to publish (or None).

        With `max_records` the records come in batches: a poison record is dead-lettered
        alone, then everything returned is published together (an event returned twice, same
        event id, goes out once) and marked with one call. `concurrency` > 1 handles up to
        that many records at once, in order per key: within each batch when batched (the
        batch is committed once all of it is done), otherwise from a key-ordered consumer of
        its own (convmem.delivery.keyed). With `wants`, an event it refuses is acknowledged
        without being opened or handled (opening costs a key and a decryption)."""

        def register(handler: Callable[[In], Awaitable[Out | None]]) -> Callable[[In], Awaitable[Out | None]]:
            full = f"{self.group_prefix}.{group}"

            async def one(record: ConsumerRecord, single: bool) -> Out | None:
                try:
                    opened = await self._open(event, record, full, wants)
                    return None if opened is None else await handler(opened)
                except PoisonError as exc:
                    if single:
                        raise  # the delivery policy dead-letters a single record itself
                    await self.policy.dead_letter(record, str(exc), full)
                    return None

            async def process(records: Sequence[ConsumerRecord]) -> None:
                single = len(records) == 1 and max_records is None
                results = await in_key_order(records, lambda r: one(r, single),
                                             concurrency if max_records is not None else 1)
                outs: dict[object, Out] = {}
                for out in results:
                    if out is not None:
                        outs.setdefault(getattr(out, "event_id", id(out)), out)
                if outs and publish_to is not None:
                    await publish_to.publish(list(outs.values()))
                    if mark is not None:
                        await mark(list(outs.values()))

            if concurrency > 1 and max_records is None and not self.document_only:
                self._run_keyed(topic, group, event, title, process, concurrency)
            else:
                async def consume(msg: KafkaMessage) -> None:
                    await process(_as_records(msg.raw_message))

                self._subscribe(topic, group, event, title, description, consume, max_records, batch_timeout_ms)
            return handler

        return register

    def _run_keyed(self, topic: str, group: str, event: type[In], title: str,
                   process: Callable[[Sequence[ConsumerRecord]], Awaitable[None]], concurrency: int) -> None:
        if self.selected is not None and group not in self.selected:
            return
        if self.bootstrap is None:
            raise ValueError("concurrent subscriptions need the Kafka bootstrap servers")

        full = f"{self.group_prefix}.{group}"

        async def handle(record: ConsumerRecord) -> None:
            await self.policy.run(lambda: process((record,)), (record,), full)

        self.consumed[title] = event
        self.groups.append((full, topic))
        self.keyed.append(KeyedConsumer(self.bootstrap, topic, full, handle,
                                        max_in_flight=concurrency, client_id=self.group_prefix))

    def batch(self, topic: str, *, group: str, event: type[In], title: str, description: str,
              max_records: int, batch_timeout_ms: int = 20,
              ) -> Callable[[Callable[[list[In]], Awaitable[object]]], Callable[[list[In]], Awaitable[object]]]:
        """A handler of a whole batch (for work that is cheaper in bulk, like embedding)."""

        def register(handler: Callable[[list[In]], Awaitable[object]]) -> Callable[[list[In]], Awaitable[object]]:
            full = f"{self.group_prefix}.{group}"

            async def consume(msg: KafkaMessage) -> None:
                events: list[In] = []
                for record in _as_records(msg.raw_message):
                    try:
                        opened = await self._open(event, record, full)
                    except PoisonError as exc:
                        await self.policy.dead_letter(record, str(exc), full)
                        continue
                    if opened is not None:
                        events.append(opened)
                await handler(events)

            self._subscribe(topic, group, event, title, description, consume, max_records, batch_timeout_ms)
            return handler

        return register

    async def _open(self, model: type[In], record: ConsumerRecord, group: str,
                    wants: Callable[[In], bool] | None = None) -> In | None:
        """The record as its event, opened; None when it is not this group's to handle: a
        replay of a dead letter meant for another group of the topic (acknowledged and
        skipped here, before decoding, so a poison replay fails only the group it was sent
        back to), or an event whose subject was erased."""
        if not headers.addressed_to(record, group):
            log.debug("replay_skipped", group=group, topic=record.topic, partition=record.partition,
                      offset=record.offset)
            self.policy.settled(record, group, "skipped")
            return None
        decoded = decode_event(model, record)
        if wants is not None and not wants(decoded):
            return None
        opened = await open_or_drop(self.sealer(), decoded)
        if opened is None:
            self.policy.settled(record, group, "dropped")
        return opened

    def _subscribe(self, topic: str, group: str, event: type[In], title: str, description: str,
                   consume: Callable[[KafkaMessage], Awaitable[None]], max_records: int | None,
                   batch_timeout_ms: int) -> None:
        if self.selected is not None and group not in self.selected:
            return
        batching: dict[str, Any] = ({} if max_records is None else
                                    {"batch": True, "max_records": max_records, "batch_timeout_ms": batch_timeout_ms})
        full = f"{self.group_prefix}.{group}"
        self.consumed[title] = event
        self.groups.append((full, topic))

        async def delivered(msg: KafkaMessage) -> None:
            await self.policy.run(lambda: consume(msg), _as_records(msg.raw_message), full)

        self.broker.subscriber(topic, group_id=full, decoder=_raw, title=title,
                               description=description, **_CONSUMER, **batching)(delivered)


async def in_key_order(records: Sequence[ConsumerRecord], handle: Callable[[ConsumerRecord], Awaitable[Out | None]],
                       concurrency: int) -> list[Out | None]:
    """Each record's result, in the records' order; with `concurrency` > 1 records of
    different keys run at once (at most that many), records of one key one after another.
    If one fails, the others are cancelled and its error is raised as it is, so the delivery
    policy sees a RetryableError as such and re-runs the batch (its effects are idempotent)."""
    results: list[Out | None] = [None] * len(records)
    if concurrency <= 1 or len(records) <= 1:
        for i, record in enumerate(records):
            results[i] = await handle(record)
        return results
    lanes: dict[object, list[int]] = {}
    for i, record in enumerate(records):
        lanes.setdefault((record.partition, record.key if record.key is not None else i), []).append(i)
    room = asyncio.Semaphore(concurrency)

    async def lane(indexes: list[int]) -> None:
        for i in indexes:
            async with room:
                results[i] = await handle(records[i])

    try:
        async with asyncio.TaskGroup() as tasks:
            for indexes in lanes.values():
                tasks.create_task(lane(indexes))
    except BaseExceptionGroup as failed:
        # A dependency being down says most about the batch: retry it rather than fail it.
        retryable = [e for e in failed.exceptions if isinstance(e, RetryableError)]
        raise (retryable or failed.exceptions)[0]  # noqa: B904 - the group adds nothing to its member
    return results


def _as_records(raw: Any) -> tuple[ConsumerRecord, ...]:
    return tuple(raw) if isinstance(raw, tuple | list) else (raw,)
