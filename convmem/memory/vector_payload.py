"""What a turn's vector carries besides itself: enough to scope and order a hit without a
database round trip. Shared by every writer of vectors (the embedder, the scrubber), so a
point has one shape whoever wrote it."""

from typing import Any

from contracts import TurnRecorded
from convmem.ports import Unit


def turn_payload(turn: TurnRecorded) -> dict[str, Any]:
    """No text: Postgres is the only place content lives."""
    return {
        "tenant_id": turn.tenant_id,
        "user_id": turn.user_id,
        "conversation_id": str(turn.conversation_id),
        "message_id": str(turn.message_id),
        "role": turn.role,
        "seq": turn.seq,
        "occurred_at": turn.occurred_at.timestamp(),
    }


def unit_payload(unit: Unit) -> dict[str, Any]:
    """A burst's point: scoped like a turn's, placed at its first member's time, with its
    members so that a hit maps back to turns without a database round trip."""
    return {
        "tenant_id": unit.tenant_id,
        "user_id": unit.user_id,
        "conversation_id": str(unit.conversation_id),
        "kind": "unit",
        "members": [str(m) for m in unit.members],
        "occurred_at": unit.occurred_at.timestamp(),
    }
