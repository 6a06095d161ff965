"""Kafka adapter of the indexer: thin subscribers around record() and embed_turns()."""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage

from contracts import DeliveryStatusChanged, MessageReceived, ReplyGenerated, TurnRecorded, topics
from convmem.delivery import DeliveryPolicy, decode_event, open_or_drop
from convmem.errors import PoisonError
from convmem.resources import Resources
from services.indexer.embedding import embed_turns
from services.indexer.enrichment import IntentRules
from services.indexer.recording import record

Recordable = TypeVar("Recordable", MessageReceived, ReplyGenerated)
_COMMON: dict[str, Any] = {"ack_policy": AckPolicy.NACK_ON_ERROR, "auto_offset_reset": "earliest"}


async def _raw(msg: KafkaMessage) -> Any:
    # Batch subscribers decode each record themselves, so one bad record in a batch is
    # dead-lettered alone instead of taking its neighbours with it.
    return msg.body


def register(broker: KafkaBroker, res: Resources, policy: DeliveryPolicy, group_prefix: str,
             batch_size: int = 64, rules: IntentRules | None = None) -> None:
    turns_out = broker.publisher(
        topics.TURNS, schema=TurnRecorded, title="indexer.record -> conv.turns.v1",
        description="A turn is durably stored in Postgres with its sequence number.")

    async def record_batch(records: tuple[Any, ...], model: type[Recordable]) -> None:
        """Record each event of a batch in order (one short transaction each, so a poison
        record is dead-lettered alone), then announce the new turns together: the publishes
        overlap and one UPDATE marks them, instead of a round trip per turn. Consumers order
        turns by `seq`, not by arrival."""
        new: list[TurnRecorded] = []
        for rec in records:
            try:
                event = await open_or_drop(res.sealer, decode_event(model, rec))
                turn = None if event is None else await record(event, res.store, rules)
            except PoisonError as exc:
                await policy.dead_letter(rec, str(exc))
                continue
            if turn is not None:
                new.append(turn)
        if new:
            sealed = [await res.sealer.seal(t) for t in new]
            await asyncio.gather(*(turns_out.publish(t, key=t.key) for t in sealed))
            await res.store.mark_turns_published([t.message_id for t in new])

    batched: dict[str, Any] = {**_COMMON, "batch": True, "max_records": batch_size, "batch_timeout_ms": 10,
                               "decoder": _raw}

    @broker.subscriber(topics.INBOUND, group_id=f"{group_prefix}.indexer.record-inbound", **batched,
                       title="indexer.record <- conv.inbound.v1",
                       description="Records each accepted message as a turn.")
    async def record_inbound(msg: KafkaMessage) -> None:
        await record_batch(msg.raw_message, MessageReceived)

    @broker.subscriber(topics.REPLIES, group_id=f"{group_prefix}.indexer.record-replies", **batched,
                       title="indexer.record <- conv.replies.v1",
                       description="Records each generated reply as an assistant turn.")
    async def record_reply(msg: KafkaMessage) -> None:
        await record_batch(msg.raw_message, ReplyGenerated)

    @broker.subscriber(topics.STATUSES, group_id=f"{group_prefix}.indexer.statuses", **_COMMON,
                       title="indexer.statuses <- conv.statuses.v1",
                       description="Keeps every delivery state a channel reported.")
    async def record_status(event: DeliveryStatusChanged) -> None:
        await res.store.record_delivery_status(event)

    @broker.subscriber(topics.TURNS, group_id=f"{group_prefix}.indexer.embed", **_COMMON,
                       batch=True, max_records=batch_size, batch_timeout_ms=20, decoder=_raw,
                       title="indexer.embed <- conv.turns.v1",
                       description="Embeds recorded turns in batches into the vector index.")
    async def embed(msg: KafkaMessage) -> None:
        turns: list[TurnRecorded] = []
        for rec in msg.raw_message:
            try:
                opened = await open_or_drop(res.sealer, decode_event(TurnRecorded, rec))
            except PoisonError as exc:
                await policy.dead_letter(rec, str(exc))
                continue
            if opened is not None:
                turns.append(opened)
        await embed_turns(turns, res.embedder, res.index, res.store)
