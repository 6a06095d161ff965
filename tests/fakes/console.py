"""Fake of the console's ledger: sessions and actions kept in lists, the reads answered from
the fake database's turns and interaction summaries, as Postgres answers them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from uuid import UUID

from convmem.ports.console import ConsoleAction, ConsoleLedger, ConsoleSession, TurnFacts, UserRow
from tests.fakes.db import FakeDb


class FakeConsoleLedger(ConsoleLedger):
    def __init__(self, db: FakeDb) -> None:
        self.db = db
        self.sessions: dict[str, ConsoleSession] = {}
        self.log: list[ConsoleAction] = []

    async def open_session(self, session: ConsoleSession) -> None:
        self.sessions[session.token_hash] = replace(session)

    async def session(self, token_hash: str, now: datetime) -> ConsoleSession | None:
        found = self.sessions.get(token_hash)
        return found if found is not None and found.expires_at > now else None

    async def close_session(self, token_hash: str) -> None:
        self.sessions.pop(token_hash, None)

    async def record_action(self, action: ConsoleAction) -> None:
        self.log.append(action)

    async def actions(self, tenant_id: str, limit: int, subject: str | None = None,
                      kinds: Sequence[str] | None = None) -> list[ConsoleAction]:
        mine = [a for a in reversed(self.log) if a.tenant_id == tenant_id and (subject is None or a.subject == subject)
                and (kinds is None or a.action in kinds)]
        return sorted(mine, key=lambda a: a.at, reverse=True)[:limit]

    async def find_users(self, tenant_id: str, prefix: str, limit: int) -> list[UserRow]:
        rows = [UserRow(user, s.conversations, s.last_at) for (tenant, user), s in self.db.user_summaries.items()
                if tenant == tenant_id and user.lower().startswith(prefix.lower())]
        rows.sort(key=lambda r: r.user_id)
        rows.sort(key=lambda r: (r.last_at is None, -(r.last_at.timestamp() if r.last_at else 0)))
        return rows[:limit]

    async def messages_per_minute(self, tenant_id: str, since: datetime) -> list[tuple[datetime, int]]:
        hidden = self.db.deleted
        counts: dict[datetime, int] = {}
        for t in self.db.turns.values():
            if t.tenant_id == tenant_id and t.occurred_at >= since and t.message_id not in hidden:
                minute = t.occurred_at.replace(second=0, microsecond=0)
                counts[minute] = counts.get(minute, 0) + 1
        return sorted(counts.items())

    async def turn_facts(self, tenant_id: str, message_ids: Sequence[UUID]) -> dict[UUID, TurnFacts]:
        out: dict[UUID, TurnFacts] = {}
        for mid in message_ids:
            turn = self.db.turns.get(mid)
            if turn is None or turn.tenant_id != tenant_id:
                continue
            facts = self.db.reply_facts.get(mid, {})
            out[mid] = TurnFacts(facts.get("latency_ms"), facts.get("prompt_tokens"), facts.get("completion_tokens"))
        return out
