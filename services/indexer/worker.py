"""Kafka adapter of the indexer: thin subscribers around record() and embed_turns()."""

from __future__ import annotations

from typing import Any

from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage

from contracts import DeliveryStatusChanged, MessageReceived, ReplyGenerated, TurnRecorded, topics
from convmem.delivery import DeliveryPolicy, decode_event, open_or_drop
from convmem.errors import PoisonError
from convmem.resources import Resources
from services.indexer.embedding import embed_turns
from services.indexer.enrichment import IntentRules
from services.indexer.recording import record

_COMMON: dict[str, Any] = {"ack_policy": AckPolicy.NACK_ON_ERROR, "auto_offset_reset": "earliest"}


async def _raw(msg: KafkaMessage) -> Any:
    # The embed subscriber decodes each record itself, so one bad record in a batch is
    # dead-lettered alone instead of taking its neighbours with it.
    return msg.body


def register(broker: KafkaBroker, res: Resources, policy: DeliveryPolicy, group_prefix: str,
             batch_size: int = 64, rules: IntentRules | None = None) -> None:
    turns_out = broker.publisher(
        topics.TURNS, schema=TurnRecorded, title="indexer.record -> conv.turns.v1",
        description="A turn is durably stored in Postgres with its sequence number.")

    async def announce(turn: TurnRecorded | None) -> None:
        if turn is None:
            return
        await turns_out.publish(await res.sealer.seal(turn), key=turn.key)
        await res.store.mark_turn_published(turn.message_id)

    @broker.subscriber(topics.INBOUND, group_id=f"{group_prefix}.indexer.record-inbound", **_COMMON,
                       title="indexer.record <- conv.inbound.v1",
                       description="Records each accepted message as a turn.")
    async def record_inbound(event: MessageReceived) -> None:
        if (opened := await open_or_drop(res.sealer, event)) is not None:
            await announce(await record(opened, res.store, rules))

    @broker.subscriber(topics.REPLIES, group_id=f"{group_prefix}.indexer.record-replies", **_COMMON,
                       title="indexer.record <- conv.replies.v1",
                       description="Records each generated reply as an assistant turn.")
    async def record_reply(event: ReplyGenerated) -> None:
        if (opened := await open_or_drop(res.sealer, event)) is not None:
            await announce(await record(opened, res.store, rules))

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
