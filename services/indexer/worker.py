"""Kafka side of the indexer: which topics it consumes, under which consumer groups, and the
domain function that handles each. Decoding, opening, sealing, dead-lettering and
publish-then-mark are the delivery layer's."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from contracts import DeliveryStatusChanged, MessageAmended, MessageReceived, ReplyGenerated, TurnRecorded, topics
from convmem.delivery import Subscriptions
from convmem.ports import DeliveryLog, Embedder, EmbeddingLedger, TurnLedger, VectorIndex
from services.indexer.amending import amend
from services.indexer.embedding import embed_turns
from services.indexer.enrichment import IntentRules
from services.indexer.recording import record


@dataclass(frozen=True)
class IndexerDeps:
    turns: TurnLedger
    deliveries: DeliveryLog
    embeddings: EmbeddingLedger
    # Taken when a batch is embedded: the recording groups run where there is no index too
    # (composition.companion).
    embedder: Callable[[], Embedder]
    index: Callable[[], VectorIndex]
    rules: IntentRules | None
    units: bool = True  # embed bursts (units) after each batch's turns


def register(subs: Subscriptions, deps: Callable[[], IndexerDeps], batch_size: int = 64,
             record_concurrency: int = 1, embed_batch: int = 64) -> None:
    turns_out = subs.outlet(topics.TURNS, TurnRecorded, "indexer.record -> conv.turns.v1",
                            "A turn is durably stored in Postgres with its sequence number.")

    async def announced(turns: Sequence[TurnRecorded]) -> None:
        # One UPDATE for the batch's new turns; consumers order turns by `seq`, not by arrival.
        await deps().turns.mark_turns_published([t.message_id for t in turns])

    async def record_turn(event: MessageReceived | ReplyGenerated) -> TurnRecorded | None:
        d = deps()
        return await record(event, d.turns, d.rules)

    # Each event of a batch is recorded in its own short transaction (a poison record is
    # dead-lettered alone), several conversations at once and each conversation's turns in
    # order; the batch's new turns are then announced together.
    subs.each(topics.INBOUND, group="indexer.record-inbound", event=MessageReceived,
              title="indexer.record <- conv.inbound.v1", description="Records each accepted message as a turn.",
              publish_to=turns_out, mark=announced, max_records=batch_size,
              concurrency=record_concurrency)(record_turn)
    subs.each(topics.REPLIES, group="indexer.record-replies", event=ReplyGenerated,
              title="indexer.record <- conv.replies.v1",
              description="Records each generated reply as an assistant turn.",
              publish_to=turns_out, mark=announced, max_records=batch_size,
              concurrency=record_concurrency)(record_turn)

    @subs.each(topics.STATUSES, group="indexer.statuses", event=DeliveryStatusChanged,
               title="indexer.statuses <- conv.statuses.v1",
               description="Keeps every delivery state a channel reported.")
    async def record_status(event: DeliveryStatusChanged) -> None:
        await deps().deliveries.record_delivery_status(event)

    @subs.each(topics.AMENDMENTS, group="indexer.amend", event=MessageAmended,
               title="indexer.amend <- conv.amendments.v1",
               description="Applies edits and revokes to recorded turns: text, full-text and vector index.")
    async def amend_turn(event: MessageAmended) -> None:
        d = deps()
        await amend(event, d.turns, d.embedder(), d.index(), d.embeddings)

    @subs.batch(topics.TURNS, group="indexer.embed", event=TurnRecorded, max_records=embed_batch,
                title="indexer.embed <- conv.turns.v1",
                description="Embeds recorded turns in batches into the vector index.")
    async def embed(turns: list[TurnRecorded]) -> None:
        d = deps()
        await embed_turns(turns, d.embedder(), d.index(), d.embeddings, units=d.units)
