"""Recording a turn: the one write every other stage depends on."""

from contracts import MessageReceived, ReplyGenerated, TurnRecorded
from convmem.ports import Store


async def record(event: MessageReceived | ReplyGenerated, store: Store) -> TurnRecorded | None:
    """Store the turn (idempotent on message id) and return the TurnRecorded to publish.

    A redelivered event whose TurnRecorded already went out returns None: nothing is
    published twice. One that was stored but not yet announced (a crash between the write
    and the publish) is announced now."""
    outcome = await store.record_turn(event)
    return None if outcome.published else outcome.turn
