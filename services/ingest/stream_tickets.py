"""Stream tickets: how a browser's native EventSource (or a WebSocket) opens an event stream
without an Authorization header, and without a long-lived token in a URL.

A client holding a bearer token asks for a ticket for one stream (a conversation's events or
a user's events); the ticket is 32 random bytes, lives a few seconds, opens that stream once
(`?ticket=`) and stands for the principal that asked for it. The store keeps only its
SHA-256, so neither a database read nor a log line of the store gives a usable ticket.

Why a stored ticket rather than a signed one: single use has to hold across every edge
process, so a used-ticket set shared by all of them is needed anyway (Postgres); a stored
random ticket needs nothing more, no signing key to share or rotate (a JWKS-only deployment
has no shared secret), and can be revoked by deleting its row."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

from convmem.ports import StreamTickets, TicketGrant
from services.ingest.principal import AuthError, Principal

TICKET_BYTES = 32
MAX_TICKET_CHARS = 100  # what a ticket query parameter may be; ours are 43


@dataclass(frozen=True)
class StreamRef:
    """One event stream: a conversation's, or all of a user's (in the caller's tenant)."""

    kind: Literal["conversation", "user"]
    key: str  # the conversation id, or the user id

    @classmethod
    def conversation(cls, conversation_id: UUID) -> StreamRef:
        return cls("conversation", str(conversation_id))

    @classmethod
    def user(cls, user_id: str) -> StreamRef:
        return cls("user", user_id)

    def __str__(self) -> str:
        return f"{self.kind}:{self.key}"


def digest(ticket: str) -> bytes:
    return hashlib.sha256(ticket.encode()).digest()


async def issue_ticket(tickets: StreamTickets, who: Principal, stream: StreamRef, ttl_s: float) -> str:
    """A new ticket for `stream`, standing for `who`. The caller has checked that `who` may
    open that stream; the stream checks again when the ticket is used."""
    ticket = secrets.token_urlsafe(TICKET_BYTES)
    grant = TicketGrant(who.subject, who.tenant_id, tuple(sorted(who.roles)), str(stream))
    await tickets.issue_ticket(digest(ticket), grant, ttl_s)
    return ticket


async def redeem_ticket(tickets: StreamTickets, ticket: str, stream: StreamRef) -> Principal:
    """The principal the ticket stands for; the ticket is used up. 401 when it is unknown,
    expired, already used or for another stream (all alike: nothing to learn by probing)."""
    if not ticket or len(ticket) > MAX_TICKET_CHARS:
        raise _invalid()
    grant = await tickets.redeem_ticket(digest(ticket), str(stream))
    if grant is None:
        raise _invalid()
    return Principal(grant.subject, grant.tenant_id, frozenset(grant.roles))


def _invalid() -> AuthError:
    return AuthError(401, "invalid_ticket", "the stream ticket is unknown, expired, used, or for another stream: "
                                            "ask POST /v1/stream-tickets for a new one")
