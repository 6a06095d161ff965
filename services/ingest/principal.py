"""Who is calling, and what they may do: the few authorization rules every route uses. One
module, so a reviewer reads the whole access model in one place. No FastAPI here: the rules
are plain functions the ingest service's business code (accepting.py) applies too; the HTTP
layer maps the two errors to responses. Tokens are checked in services.ingest.tokens.

Tokens carry `sub` (the user id), `tenant` (default `default`) and `roles`:
- user: acts and reads only as itself;
- service: posts turns for any user of its tenant, reads nothing else (a bot backend);
- admin: posts and reads for any user of its tenant, whole-tenant views, tenant policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from convmem.ports import ConversationRef, Conversations

DEFAULT_TENANT = "default"


class AuthError(Exception):
    """401: the caller could not be identified (answered with WWW-Authenticate: Bearer)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Refused(Exception):
    """403 or 404: the caller is known but may not do this. 404 where even saying "it exists,
    not yours" would leak another user's data (conversations). Also what a read refuses for
    other reasons (422: not enough to go on, 503: not served by this node)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def conversation_not_found() -> Refused:
    return Refused(404, "conversation_not_found", "no such conversation for this user")


@dataclass(frozen=True)
class Principal:
    subject: str
    tenant_id: str
    roles: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    def may_act_for(self, user_id: str) -> bool:
        """A user acts only as itself; a service or admin for any user of its tenant."""
        return user_id == self.subject or bool(self.roles & {"service", "admin"})

    def may_read(self, user_id: str) -> bool:
        """A user reads only its own data; an admin any user's of its tenant."""
        return user_id == self.subject or self.is_admin

    def sees(self, conversation: ConversationRef) -> bool:
        """THE ownership rule: a conversation is visible iff it is in this principal's tenant,
        not deleted, and this principal may read its user. Every route that names a
        conversation applies it, reading and posting alike."""
        return (conversation.tenant_id == self.tenant_id and conversation.status != "deleted"
                and self.may_read(conversation.user_id))


# ----------------------------------------------------------------------------- the rules


def require_admin(who: Principal) -> Principal:
    """Tenant-wide settings are an admin's."""
    if not who.is_admin:
        raise Refused(403, "forbidden", "only an admin of the tenant may read or change its policy")
    return who


def author_for(who: Principal, user_id: str, role: str, reply_expected: bool = True) -> Principal:
    """Posting a turn as `user_id`: returns the author, the identity the turn is posted as.
    The conversation rule is checked against the author, not the caller, so a service
    posting for ben sees exactly ben's conversations."""
    if not who.may_act_for(user_id):
        raise Refused(403, "forbidden", "a user token may post only as its own user_id")
    if role != "user" and not who.roles & {"service", "admin"}:
        raise Refused(403, "forbidden", "only a service or admin token may post assistant turns")
    if not reply_expected and not who.roles & {"service", "admin"}:
        # History from another system; a user asking a question always gets an answer.
        raise Refused(403, "forbidden", "only a service or admin token may post with reply_expected: false")
    return Principal(user_id, who.tenant_id, frozenset({"user"}))


def memory_owner(who: Principal, user_id: str | None) -> str:
    """Whose memory a read covers: the caller's own unless it names another user, which
    only an admin may."""
    if user_id is None or user_id == who.subject:
        return who.subject
    if not who.may_read(user_id):
        raise Refused(403, "forbidden", "a user token may read only its own memory")
    return user_id


def memory_owner_or_tenant(who: Principal, user_id: str | None) -> str | None:
    """As memory_owner, except that an admin naming no user reads the whole tenant (None)."""
    return user_id if who.is_admin else memory_owner(who, user_id)


def data_subject(who: Principal, user_id: str) -> str:
    """A user's data as a whole (erasure, summary, export): the user itself or an admin."""
    if not who.may_read(user_id):
        raise Refused(403, "forbidden", "only the user itself or an admin of its tenant may do this")
    return user_id


async def visible_conversation(conversations: Conversations, who: Principal, conversation_id: UUID
                               ) -> ConversationRef:
    """The conversation if `who` sees it; unknown and not visible answer alike (404). Built on
    the unscoped lookup, so the answer for another tenant's id is "exists, not yours", never
    "unknown" (see accepting.accept_message for why that matters)."""
    found = await conversations.conversation(conversation_id)
    if found is None or not who.sees(found):
        raise conversation_not_found()
    return found


def key_reader(who: Principal) -> Principal:
    """Data keys open the text of events: they go to `service` principals (downstream
    consumers, audited) and to no one else, not even the user whose key it is."""
    if "service" not in who.roles:
        raise Refused(403, "forbidden", "only a service token of the tenant may read data keys")
    return who


async def followed_conversation(conversations: Conversations, who: Principal, conversation_id: UUID
                                ) -> ConversationRef:
    """The conversation whose live events `who` may follow: one it sees (the read API's rule),
    or, for a user, one that does not exist yet, followed as its own: a web client opens the
    stream before posting a new conversation's first message. Events are matched to this
    owner, so a stranger's later use of the id shows nothing."""
    found = await conversations.conversation(conversation_id)
    if found is None and not who.roles & {"service", "admin"}:
        return ConversationRef(conversation_id, who.tenant_id, who.subject)
    if found is None or not who.sees(found):
        raise conversation_not_found()
    return found
