"""Sending a reply to its WhatsApp user, each part at most once.

Meta has no idempotency key: a request sent twice delivers twice. So every part of a reply
is claimed in the send ledger (Postgres) before its request and its outcome recorded after:

- a redelivered reply, or the same reply in a second sender, finds its parts claimed or
  settled and sends nothing again;
- the crash window: a sender that stops between the request and the record leaves the part
  claimed. Whoever meets that claim after `lease` finds it "unknown" and never sends it
  again (at most once, never twice). The request carried the part's reference as callback
  data, so if Meta did take it, its first status callback settles the part as sent with
  its wamid (indexer.statuses); if Meta did not, the part stays "unknown" in the read API.
  A claim younger than the lease may belong to a sender still waiting for Meta's answer:
  the reply is retried later (its conversation waits, the others go on).

Rate limits and server errors give the part back and retry the reply with backoff (the
delivery policy); a refusal for good (closed 24-hour window, undeliverable recipient, bad
token) is recorded on the part and the reply is dead-lettered with the reason."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog

from contracts import OFFLINE_MODEL, ReplyGenerated, identity
from convmem.errors import PoisonError, RetryableError, SendOutcomeUnknown, SendRejected
from convmem.ports import OutgoingText, SendLedger, SendPart, WhatsAppApi

log = structlog.get_logger("convmem.sender")

TEXT_LIMIT = 4096  # WhatsApp's limit for a text body, in characters


@dataclass(frozen=True)
class SendPolicy:
    send_offline: bool = False  # offline-mode replies are assembled from memory, not a model's answer
    max_age: timedelta = timedelta(hours=1)  # an older reply is not sent (a new group replaying the log)
    lease: timedelta = timedelta(seconds=60)  # a claim older than this was left by a sender that stopped
    limit: int = TEXT_LIMIT


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Pieces of at most `limit` characters, in order, each cut at the last paragraph break,
    line break, sentence end or space in its second half, hard only when there is none."""
    pieces: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[:limit]
        cut = -1
        for mark in ("\n\n", "\n", ". ", "! ", "? ", " "):
            at = window.rfind(mark, limit // 2)
            if at >= 0:
                cut = at + len(mark)
                break
        cut = cut if cut > 0 else limit
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces


@dataclass(frozen=True)
class Route:
    phone_number_id: str
    to: str


def route_of(reply: ReplyGenerated) -> Route | None:
    found = reply.metadata.get("whatsapp")
    if not isinstance(found, dict) or not found.get("phone_number_id") or not found.get("to"):
        return None
    return Route(str(found["phone_number_id"]), str(found["to"]))


def _part(reply: ReplyGenerated, i: int, n: int) -> SendPart:
    return SendPart(reply.message_id, reply.tenant_id, reply.user_id, reply.conversation_id, i, n)


def _unsendable(reply: ReplyGenerated, route: Route | None, policy: SendPolicy, now: datetime) -> str | None:
    if route is None:
        return "no WhatsApp route in the reply (answered before the sender existed?)"
    if reply.model == OFFLINE_MODEL and not policy.send_offline:
        return "offline mode: no language model answered (CONVMEM_WHATSAPP_SEND_OFFLINE is off)"
    if now - reply.occurred_at > policy.max_age:
        return f"older than {int(policy.max_age.total_seconds())} s when it reached the sender"
    if not reply.text.strip():
        return "empty reply"
    return None


async def send_reply(reply: ReplyGenerated, *, sends: SendLedger, api: WhatsAppApi, policy: SendPolicy,
                     now: datetime | None = None) -> int:
    """Send a WhatsApp reply's parts in order, each at most once; returns how many parts
    this call sent. Replies of other channels are not this sender's."""
    if reply.channel != "whatsapp":
        return 0
    route = route_of(reply)
    why_not = _unsendable(reply, route, policy, now or datetime.now(UTC))
    if why_not is not None or route is None:
        await sends.record_skipped(_part(reply, 0, 1), why_not or "no route")
        log.info("reply_not_sent", reply_id=str(reply.message_id), reason=why_not)
        return 0
    pieces = split_text(reply.text, policy.limit)
    sent = 0
    for i, body in enumerate(pieces):
        part = _part(reply, i, len(pieces))
        claim = await sends.claim_send(part, policy.lease.total_seconds())
        if claim == "busy":
            raise RetryableError(f"reply {reply.message_id} part {i} is being sent by another sender")
        if claim in ("failed", "skipped"):
            return sent  # settled for good earlier: nothing after it goes out
        if claim != "claimed":
            continue  # sent, or unknown (never sent twice)
        message = OutgoingText(route.phone_number_id, route.to, body, identity.send_ref(reply.message_id, i))
        try:
            wamid = await api.send_text(message)
        except RetryableError as exc:
            await sends.release_send(part, str(exc))
            raise
        except SendRejected as exc:
            await sends.record_failed(part, exc.code, exc.detail)
            raise PoisonError(f"whatsapp refused reply {reply.message_id} part {i + 1}/{len(pieces)}: "
                              f"code {exc.code}: {exc.detail}") from exc
        except SendOutcomeUnknown as exc:
            await sends.record_unknown(part)
            log.warning("reply_part_outcome_unknown", reply_id=str(reply.message_id), part=i, error=str(exc))
            continue
        await sends.record_sent(part, wamid)
        sent += 1
    return sent
