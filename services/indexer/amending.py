"""Applying an edit or a revoke to a recorded turn, in Postgres and in the vector index."""

import structlog

from contracts import MessageAmended
from convmem.memory.units import refresh_units
from convmem.ports import Embedder, EmbeddingLedger, TurnLedger, VectorIndex
from services.indexer.embedding import embed_turns

log = structlog.get_logger("convmem.indexer")


async def amend(event: MessageAmended, ledger: TurnLedger, embedder: Embedder, index: VectorIndex,
                embeddings: EmbeddingLedger) -> None:
    """Keep the amendment and apply it: an edit re-embeds the turn's new text, a revoke drops
    its vector (as a conversation delete does; reads skip it in Postgres already). Idempotent:
    a redelivery applies nothing new and writes the same vector, or deletes it again. An
    amendment of a turn not recorded yet waits; recording the turn applies it."""
    outcome = await ledger.amend_turn(event)
    if outcome.turn is None:
        log.info("amendment_waiting", kind=event.kind, message_id=str(event.message_id),
                 conversation_id=str(event.conversation_id))
        return
    if outcome.revoked:
        await index.delete([event.message_id])
        # The burst it belonged to (a unit) is made again from what is left, or its point goes.
        await refresh_units(embeddings, embedder, index, [event.conversation_id])
    else:
        # Read from Postgres, not the event: the latest edit wins whatever order they came in.
        await embed_turns([outcome.turn], embedder, index, embeddings)
    log.info("turn_amended", kind=event.kind, message_id=str(event.message_id),
             conversation_id=str(event.conversation_id), revoked=outcome.revoked)
