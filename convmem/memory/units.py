"""Keeping the vectors of bursts (units, migration 010) in step with their turns. Postgres
grows a unit as its burst grows and rewrites it when a member is scrubbed, deleted, purged
or revoked; each change leaves the unit stale. Stale units are embedded again or, once
fewer than two members are left (empty text), their points deleted. Shared by every writer
of vectors: the indexer after each batch, the retention sweep and scrubber, the rebuild."""

from collections.abc import Mapping, Sequence
from uuid import UUID

from convmem.memory.vector_payload import unit_payload
from convmem.ports import Embedder, EmbeddingLedger, Unit, VectorIndex, VectorPoint

UNIT_BATCH = 256


async def write_units(index: VectorIndex, embedder: Embedder, units: Sequence[Unit]) -> int:
    """A unit with text is embedded under its own id (a redelivery overwrites the same
    point); an emptied one's point is removed. Returns the points written."""
    live = [u for u in units if u.text.strip()]
    if live:
        vectors = await embedder.embed([u.text for u in live])
        await index.upsert([VectorPoint(u.unit_id, v, unit_payload(u)) for u, v in zip(live, vectors, strict=True)])
    if gone := [u.unit_id for u in units if not u.text.strip()]:
        await index.delete(gone)
    return len(live)


async def refresh_units(ledger: EmbeddingLedger, embedder: Embedder, index: VectorIndex,
                        conversation_ids: Sequence[UUID] | None = None, batch: int = UNIT_BATCH) -> int:
    """Bring the stale units of these conversations (or of all) into the index; a unit that
    grew meanwhile stays stale for the next call. Returns how many units were handled."""
    done = 0
    while units := await ledger.stale_units(conversation_ids, batch):
        await write_units(index, embedder, units)
        await ledger.units_embedded(units)
        done += len(units)
        if len(units) < batch:
            break
    return done


def unit_members(units: Sequence[tuple[list[UUID], float, float]], turns: Sequence[UUID],
                 turn_scores: Mapping[UUID, float], member_weight: float) -> tuple[list[UUID], dict[UUID, float]]:
    """A retriever's ranked units (members, score, confidence) as a ranked list of turns, for
    fusion. A unit only counts where it knows more than its lines: its score (coverage, or
    cosine) above that of its best member in the same retriever's turn list (a member not
    listed scores below the list's last). Then its members take its place, the best-ranked
    first (else the first said), voting with the unit's confidence, the others with
    `member_weight` of it ("lol" in the burst that holds the fact is rarely the evidence)."""
    rank = {i: r for r, i in enumerate(turns)}
    floor = min((turn_scores[i] for i in turns if i in turn_scores), default=0.0) if len(turns) else 0.0
    order: list[UUID] = []
    weights: dict[UUID, float] = {}
    for members, score, conf in units:
        best = max((turn_scores.get(m, floor) if m in rank else floor for m in members), default=floor)
        if score <= best:
            continue
        ranked = sorted(members, key=lambda m: rank.get(m, len(rank) + members.index(m)))
        for n, m in enumerate(ranked):
            if m not in weights:
                order.append(m)
                weights[m] = conf if n == 0 else conf * member_weight
    return order, weights
