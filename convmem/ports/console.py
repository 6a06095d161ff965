"""What the browser console keeps and reads beyond the read API: its sign-in sessions, the
record of the privacy actions taken through it, and the few tenant-wide reads its pages show
(users found by id, messages per minute, a reply's latency and tokens). Sessions are stored
(hashed), so they survive a restart and work on every ingest process."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID


@dataclass(frozen=True)
class ConsoleSession:
    """A signed-in browser: who the token said it was, until when, and the CSRF token its
    forms must carry. Stored under the hash of the cookie's value, never the value itself."""

    token_hash: str = field(repr=False)
    tenant_id: str
    subject: str
    roles: frozenset[str]
    csrf: str = field(repr=False)
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class ConsoleAction:
    """One action taken through the console: who, what, about whom, when, with its outcome."""

    tenant_id: str
    actor: str
    action: str  # export, erase, delete_conversation, dlq_replay, sign_in, ...
    subject: str | None  # the user acted on (None: not about one user)
    at: datetime
    detail: dict[str, Any] = field(default_factory=dict)  # counts and ids, never message text


@dataclass(frozen=True)
class UserRow:
    user_id: str
    conversations: int
    last_at: datetime | None


@dataclass(frozen=True)
class TurnFacts:
    """What Postgres keeps about a reply beyond its event: how long it took, what it cost."""

    latency_ms: int | None
    prompt_tokens: int | None
    completion_tokens: int | None


class ConsoleLedger(Protocol):
    async def open_session(self, session: ConsoleSession) -> None: ...

    async def session(self, token_hash: str, now: datetime) -> ConsoleSession | None:
        """The session stored under this hash, unless it expired (then None)."""
        ...

    async def close_session(self, token_hash: str) -> None: ...

    async def record_action(self, action: ConsoleAction) -> None: ...

    async def actions(self, tenant_id: str, limit: int, subject: str | None = None,
                      kinds: Sequence[str] | None = None) -> list[ConsoleAction]:
        """The tenant's latest actions first (optionally those about one user, or of these kinds)."""
        ...

    async def find_users(self, tenant_id: str, prefix: str, limit: int) -> list[UserRow]:
        """Users of the tenant whose id starts with `prefix` (any case), latest active first;
        an empty prefix: the latest active users."""
        ...

    async def messages_per_minute(self, tenant_id: str, since: datetime) -> list[tuple[datetime, int]]:
        """Live turns that occurred at or after `since`, counted per minute (minutes with
        none left out), oldest first."""
        ...

    async def turn_facts(self, tenant_id: str, message_ids: Sequence[UUID]) -> dict[UUID, TurnFacts]: ...
