"""Embedding recorded turns into the vector index, one point per turn."""

from collections.abc import Sequence
from typing import Any

from contracts import TurnRecorded
from convmem.ports import Embedder, Store, VectorIndex, VectorPoint


def turn_payload(turn: TurnRecorded) -> dict[str, Any]:
    """What a vector carries besides itself: enough to scope and order a hit without a
    database round trip. No text: Postgres is the only place content lives."""
    return {
        "tenant_id": turn.tenant_id,
        "user_id": turn.user_id,
        "conversation_id": str(turn.conversation_id),
        "message_id": str(turn.message_id),
        "role": turn.role,
        "seq": turn.seq,
        "occurred_at": turn.occurred_at.timestamp(),
    }


async def embed_turns(turns: Sequence[TurnRecorded], embedder: Embedder, index: VectorIndex,
                      store: Store) -> int:
    """Embed and upsert; the point id is the message id, so a redelivery overwrites the same
    point instead of adding one. The text is read from the store, not the event: a turn
    scrubbed or deleted meanwhile is embedded as it is now, or skipped. Returns how many
    points were written."""
    unique = {t.message_id: t for t in turns}
    current = await store.texts_to_embed(list(unique))
    batch = [t for t in unique.values() if current.get(t.message_id, "").strip()]
    if not batch:
        return 0
    vectors = await embedder.embed([current[t.message_id] for t in batch])
    await index.upsert([VectorPoint(t.message_id, v, turn_payload(t)) for t, v in zip(batch, vectors, strict=True)])
    await store.mark_embedded([t.message_id for t in batch])
    return len(batch)
