"""Embedding recorded turns into the vector index, one point per turn."""

from collections.abc import Sequence

from contracts import TurnRecorded
from convmem.memory.units import refresh_units
from convmem.memory.vector_payload import turn_payload
from convmem.ports import Embedder, EmbeddingLedger, VectorIndex, VectorPoint


async def embed_turns(turns: Sequence[TurnRecorded], embedder: Embedder, index: VectorIndex,
                      ledger: EmbeddingLedger, units: bool = True) -> int:
    """Embed and upsert; the point id is the message id, so a redelivery overwrites the same
    point instead of adding one. The text is read from the store, not the event: a turn
    scrubbed or deleted meanwhile is embedded as it is now, or skipped. Returns how many
    points were written."""
    unique = {t.message_id: t for t in turns}
    current = await ledger.texts_to_embed(list(unique))
    batch = [t for t in unique.values() if current.get(t.message_id, "").strip()]
    if batch:
        vectors = await embedder.embed([current[t.message_id] for t in batch])
        await index.upsert([VectorPoint(t.message_id, v, turn_payload(t))
                            for t, v in zip(batch, vectors, strict=True)])
    # A live turn with nothing to embed (empty, an offline notice) is done too, so that
    # "not embedded" means only work still to do.
    await ledger.mark_embedded(list(current))
    # The bursts these turns joined or started, after the turns themselves: a unit grown by
    # a turn of this batch is embedded once, with all of it.
    if units:
        await refresh_units(ledger, embedder, index, list({t.conversation_id for t in unique.values()}))
    return len(batch)
