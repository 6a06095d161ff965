"""Messages: posting a turn (202 once Kafka has it) and reading a conversation's turns."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any
from uuid import UUID

import structlog
from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter, ValidationError

from contracts import TurnRecorded
from contracts.values import ExternalId
from convmem.ports import MemoryScope
from services.ingest.accepting import Acceptance, RetentionWindow, accept_message
from services.ingest.edge import EdgePorts
from services.ingest.http.deps import AfterSeq, Caller, Ports, Settings
from services.ingest.http.errors import ERRORS, ApiError, PublishUnknown, publish, unknown_outcome
from services.ingest.http.views import Deliveries, messages_page, reply_view
from services.ingest.principal import conversation_not_found, visible_conversation
from services.ingest.schemas import Accepted, Answered, ConversationMessages, OutcomeUnknown, PostMessage
from services.ingest.streaming import reply_within
from services.ingest.unconfirmed import fingerprint

log = structlog.get_logger("convmem.ingest")
router = APIRouter()


_ANSWERED: dict[int | str, dict[str, Any]] = {
    200: {"model": Answered, "description": "the reply, ready within `wait` seconds"}}


_UNKNOWN: dict[int | str, dict[str, Any]] = {
    503: {"model": OutcomeUnknown, "description": "a backing service is unavailable (`unavailable`: nothing was "
          "published), or the event log did not confirm the message in time (`outcome_unknown`, with the ids it "
          "has if it is recorded): retry, with the same Idempotency-Key"}}
_KEY = TypeAdapter(ExternalId)
# The document states the key's shape (1-256 characters once unquoted, no NUL), so every
# header it calls valid is a key the edge takes.
KEY_PATTERN = r'^[ \t]*("([^"\\\x00]|\\["\\]){1,256}"|[^"\x00 \t]([^\x00]{0,254}[^\x00 \t])?)[ \t]*$'
IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key", pattern=KEY_PATTERN, description="the producer's idempotency key (IETF httpapi "
    "draft: a Structured Field string, quoted; a bare token is taken too); the same as `external_id`: a "
    "different one is a 409")]


def idempotency_key(raw: str | None, body: PostMessage) -> PostMessage:
    """The message with the Idempotency-Key header as its external_id."""
    if raw is None:
        return body
    key = raw.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':  # an sf-string: \" and \\ are its only escapes
        key = re.sub(r'\\(["\\])', r"\1", key[1:-1])
    try:
        key = _KEY.validate_python(key)
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", "request failed validation",
                       fields=[{"field": "Idempotency-Key", "message": exc.errors()[0]["msg"]}]) from None
    if body.external_id is not None and body.external_id != key:
        # Each is valid alone; together they conflict (a 409, as a key reused for another message).
        raise ApiError(409, "conflicting_keys", "Idempotency-Key and external_id name different keys",
                       fields=[{"field": "Idempotency-Key", "message": "differs from external_id"}])
    return body.model_copy(update={"external_id": key})


@router.post("/v1/messages", status_code=202, response_model=Accepted,
             responses={**ERRORS, **_ANSWERED, **_UNKNOWN}, tags=["messages"])
async def post_message(
    body: PostMessage,
    ports: Ports,
    caller: Caller,
    settings: Settings,
    wait: Annotated[float, Query(ge=0, le=60, description="seconds to wait for the reply: 200 with it when "
                                                           "ready in time, else the usual 202")] = 0,
    key: IdempotencyKey = None,
) -> Accepted | JSONResponse:
    body = idempotency_key(key, body)
    who = await caller.principal()
    # A keyless message is known by what it says only while an attempt's outcome is unknown.
    said = None if body.external_id is not None else fingerprint(who.tenant_id, body)
    unconfirmed = caller.edge.unconfirmed
    retention = RetentionWindow(ports.policies, settings.message_retention_days)
    accepted = await accept_message(ports.lookup, ports.conversations, who, body, retention,
                                    retried=None if said is None else unconfirmed.recall(said))
    answers = body.role == "user" and body.reply_expected
    result: Accepted | JSONResponse
    try:
        if wait > 0 and answers and ports.feed is not None and ports.replies is not None:
            result = await _answer(accepted, ports, wait)
        else:
            await _publish(accepted, ports)
            result = Accepted(message_id=accepted.message_id, conversation_id=accepted.conversation_id,
                              duplicate=accepted.duplicate)
    except ApiError as exc:
        if said is not None and exc.code == "outcome_unknown":
            unconfirmed.remember(said, accepted.message_id, accepted.conversation_id)
        raise  # any other failure keeps what is remembered: an earlier attempt may still go out
    if said is not None:
        unconfirmed.forget(said)  # published: the same words sent again are a new message
    return result


async def _publish(accepted: Acceptance, ports: EdgePorts) -> None:
    if accepted.event is None:
        return
    try:
        await publish(ports.sink.publish_inbound([accepted.event]))
    except PublishUnknown:
        log.warning("message_outcome_unknown", message_id=str(accepted.message_id),
                    keyed=accepted.event.external_id is not None)
        raise unknown_outcome("the message", {"message_id": str(accepted.message_id),
                                              "conversation_id": str(accepted.conversation_id)}) from None
    log.info("message_accepted", message_id=str(accepted.message_id), conversation_id=str(accepted.conversation_id),
             event_id=str(accepted.event.event_id), channel="http")


async def _answer(accepted: Acceptance, ports: EdgePorts, wait: float) -> Accepted | JSONResponse:
    assert ports.feed is not None and ports.replies is not None
    # Following starts before the message is published, so its reply cannot slip past.
    async with ports.feed.follow(accepted.conversation_id) as items:
        await _publish(accepted, ports)
        reply = await reply_within(items, ports.replies, accepted.message_id, wait)
    if reply is None:
        return Accepted(message_id=accepted.message_id, conversation_id=accepted.conversation_id,
                        duplicate=accepted.duplicate)
    answered = Answered(message_id=accepted.message_id, conversation_id=accepted.conversation_id,
                        duplicate=accepted.duplicate, reply=reply_view(reply))
    return JSONResponse(answered.model_dump(mode="json"), status_code=200)


@router.get("/v1/conversations/{conversation_id}/messages", response_model=ConversationMessages,
            responses=ERRORS, tags=["history"])
async def conversation_messages(
    conversation_id: UUID,
    ports: Ports,
    caller: Caller,
    after_seq: AfterSeq = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> ConversationMessages:
    owner = await visible_conversation(ports.conversations, await caller.principal(), conversation_id)
    turns = await ports.memory.conversation_turns(
        MemoryScope(owner.tenant_id, owner.user_id, conversation_id), after_seq, limit + 1)
    if turns is None:  # deleted between the two reads
        raise conversation_not_found()
    return messages_page(conversation_id, turns, limit, await deliveries_of(ports, owner.tenant_id, turns))


async def deliveries_of(ports: EdgePorts, tenant_id: str, turns: Sequence[TurnRecorded]) -> Deliveries:
    """How the assistant turns among `turns` travelled to the user (channels that send them)."""
    replies = [t.message_id for t in turns if t.role == "assistant" and t.channel == "whatsapp"]
    if not replies or ports.deliveries is None:
        return {}
    return await ports.deliveries.deliveries(tenant_id, replies)
