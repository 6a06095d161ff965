"""Recording a turn: the one write every other stage depends on."""

import structlog

from contracts import MessageReceived, ReplyGenerated, TurnRecorded, identity
from convmem.errors import ConversationClosed
from convmem.ports import TurnLedger
from services.indexer.enrichment import IntentRules, enrich

log = structlog.get_logger("convmem.indexer")


async def record(event: MessageReceived | ReplyGenerated, ledger: TurnLedger,
                 rules: IntentRules | None = None) -> TurnRecorded | None:
    """Store the turn (idempotent on message id) and return the TurnRecorded to publish.

    A redelivered event whose TurnRecorded already went out returns None: nothing is
    published twice. One that was stored but not yet announced (a crash between the write
    and the publish, or the same message twice in one batch) is announced now, under the
    same event id as every other announcement of that turn."""
    try:
        outcome = await ledger.record_turn(event, enrich(event.text, rules))
    except ConversationClosed:
        # Deleted history stays deleted: a late or replayed event for it is dropped.
        log.info("turn_dropped_conversation_deleted", message_id=str(event.message_id),
                 conversation_id=str(event.conversation_id))
        return None
    if outcome.published:
        return None
    return outcome.turn.model_copy(update={"event_id": identity.turn_recorded_event_id(event.message_id)})
