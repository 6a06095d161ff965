"""Fakes of the read side: scoped memory reads and conversations as a resource."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from uuid import UUID

from contracts import TurnRecorded, is_offline_notice
from convmem.errors import PoisonError
from convmem.memory.speakers import vocative
from convmem.ports import (
    ConversationFilter,
    ConversationInfo,
    ConversationRef,
    Conversations,
    ConversationStatus,
    MemoryReader,
    MemoryScope,
    Stats,
    Summary,
    speaker_name,
)
from tests.fakes.db import FakeDb, words


class FakeMemoryReader(MemoryReader):
    def __init__(self, db: FakeDb) -> None:
        self.db = db

    async def recent_turns(self, scope: MemoryScope, before_seq: int, limit: int) -> list[TurnRecorded]:
        if scope.conversation_id is None:
            raise ValueError("recent_turns needs a conversation in its scope")
        # The conversation's history whatever the scope's time bounds, as in Postgres.
        whole = MemoryScope(scope.tenant_id, scope.user_id, scope.conversation_id)
        return sorted((t for t in self.db.mine(whole) if t.seq < before_seq), key=lambda t: t.seq)[-limit:]

    async def turns_by_ids(self, scope: MemoryScope, ids: Sequence[UUID]) -> list[TurnRecorded]:
        wanted = set(ids)
        return [t for t in self.db.mine(scope) if t.message_id in wanted]

    async def conversation_turns(self, scope: MemoryScope, after_seq: int, limit: int) -> list[TurnRecorded] | None:
        info = self.db.conversations.get(scope.conversation_id) if scope.conversation_id else None
        if (info is None or (info.tenant_id, info.user_id) != (scope.tenant_id, scope.user_id)
                or info.status == "deleted"):
            return None
        whole = MemoryScope(scope.tenant_id, scope.user_id, scope.conversation_id)
        return sorted((t for t in self.db.mine(whole) if t.seq > after_seq), key=lambda t: t.seq)[:limit]

    async def search_text(self, scope: MemoryScope, query: str, limit: int,
                          context: float = 0.0) -> list[tuple[UUID, float]]:
        # Share of the query's words a turn contains (Postgres weighs them by rarity); ties go
        # to the later turn, as in Postgres. With context, the previous turn's words count at
        # that weight.
        q = words(query)
        mine = self.db.mine(scope)
        at = {(t.conversation_id, t.seq): t for t in mine}

        def covered(t: TurnRecorded) -> float:
            own = q & words(t.text)
            before = at.get((t.conversation_id, t.seq - 1)) if context > 0 else None
            carried = (q & words(before.text)) - own if before is not None else set()
            return (len(own) + context * len(carried)) / max(1, len(q))

        scored = [(t, covered(t)) for t in mine if not is_offline_notice(t)]
        ranked = sorted((s for s in scored if s[1] > 0), key=lambda s: (-s[1], -s[0].occurred_at.timestamp()))
        return [(t.message_id, score) for t, score in ranked[:limit]]

    async def search_units(self, scope: MemoryScope, query: str, limit: int) -> list[tuple[list[UUID], float]]:
        # As search_text, over the text of bursts placed at their first member.
        q = words(query)
        found = [(u, len(q & words(u.text)) / max(1, len(q))) for u in self.db.units()
                 if u.text and scope.admits(u.tenant_id, u.user_id, u.conversation_id, u.occurred_at)]
        ranked = sorted((f for f in found if f[1] > 0), key=lambda f: (-f[1], -f[0].occurred_at.timestamp()))
        return [(list(u.members), score) for u, score in ranked[:limit]]

    async def people(self, scope: MemoryScope, recent: int = 1000) -> dict[str, int]:
        latest = sorted(self.db.mine(MemoryScope(scope.tenant_id, scope.user_id)),
                        key=lambda t: t.occurred_at, reverse=True)[:recent]
        out: dict[str, int] = {}
        for t in latest:
            if (name := speaker_name(t)) is not None:
                out[name] = out.get(name, 0) + 1
        return out

    async def addressed(self, scope: MemoryScope, names: Sequence[str]) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for name in {n for n in names if n.isalpha()}:
            pattern = re.compile(vocative(name), re.IGNORECASE)
            for t in self.db.mine(MemoryScope(scope.tenant_id, scope.user_id)):
                if pattern.search(t.text):
                    side = speaker_name(t) or t.role
                    out.setdefault(name, {}).setdefault(side, 0)
                    out[name][side] += 1
        return out

    async def neighbours(self, scope: MemoryScope, places: Sequence[tuple[UUID, int]],
                         radius: int) -> list[TurnRecorded]:
        if radius < 1:
            return []
        wanted = {(c, s + d) for c, s in places for d in range(-radius, radius + 1)}
        return [t for t in self.db.mine(MemoryScope(scope.tenant_id, scope.user_id))
                if (t.conversation_id, t.seq) in wanted]

    async def neighbourhood(self, scope: MemoryScope, ids: Sequence[UUID], radius: int) -> list[TurnRecorded]:
        hits = await self.turns_by_ids(scope, ids)
        near = await self.neighbours(scope, [(t.conversation_id, t.seq) for t in hits], max(0, radius)) \
            if radius > 0 else []
        return list({t.message_id: t for t in [*hits, *near]}.values())

    async def last_said_at(self, scope: MemoryScope) -> datetime | None:
        return max((t.occurred_at for t in self.db.mine(MemoryScope(scope.tenant_id, scope.user_id))), default=None)

    async def summary(self, conversation_id: UUID) -> Summary | None:
        return self.db.summaries.get(conversation_id)


class FakeConversations(Conversations):
    def __init__(self, db: FakeDb) -> None:
        self.db = db

    async def conversation(self, conversation_id: UUID) -> ConversationRef | None:
        info = self.db.conversations.get(conversation_id)
        if info is not None:
            return ConversationRef(conversation_id, info.tenant_id, info.user_id, info.status)
        # A test may give a conversation an owner without recording a turn in it.
        owner = self.db.owners.get(conversation_id)
        return None if owner is None else ConversationRef(conversation_id, *owner)

    async def conversation_info(self, tenant_id: str, conversation_id: UUID) -> ConversationInfo | None:
        info = self.db.conversations.get(conversation_id)
        return info if info is not None and info.tenant_id == tenant_id else None

    async def list_conversations(self, where: ConversationFilter, limit: int) -> list[ConversationInfo]:
        rows = [c for c in self.db.conversations.values() if c.tenant_id == where.tenant_id
                and (where.user_id is None or c.user_id == where.user_id)
                and (c.status == where.status if where.status else c.status != "deleted")
                and (where.conversation_type is None or c.conversation_type == where.conversation_type)
                and (where.since is None or c.created_at >= where.since)
                and (where.until is None or c.created_at < where.until)]
        rows.sort(key=lambda c: (c.created_at, c.conversation_id), reverse=True)
        if where.after is not None:
            after = where.after
            rows = [c for c in rows if (c.created_at, c.conversation_id) < after]
        return rows[:limit]

    async def update_conversation(self, tenant_id: str, conversation_id: UUID, *, title: str | None = None,
                                  status: ConversationStatus | None = None) -> ConversationInfo | None:
        info = await self.conversation_info(tenant_id, conversation_id)
        if info is None or info.status == "deleted":
            return None
        info = replace(info, title=info.title if title is None else title,
                       title_source=info.title_source if title is None else "user",
                       status=info.status if status is None else status, updated_at=datetime.now(UTC))
        self.db.conversations[conversation_id] = info
        return info

    async def delete_conversation(self, tenant_id: str, conversation_id: UUID) -> list[UUID]:
        info = await self.conversation_info(tenant_id, conversation_id)
        if info is None:
            return []
        hidden = self.db.deleted
        live = [t.message_id for t in self.db.turns.values() if t.conversation_id == conversation_id
                and t.message_id not in hidden]
        self.db.conversations[conversation_id] = replace(info, status="deleted", updated_at=datetime.now(UTC))
        self.db.deleted_at.setdefault(conversation_id, datetime.now(UTC))
        return live

    async def set_model_title(self, conversation_id: UUID, title: str) -> bool:
        info = self.db.conversations.get(conversation_id)
        if info is None or info.title_source != "first_message" or info.status == "deleted":
            return False
        self.db.conversations[conversation_id] = replace(info, title=title, title_source="model",
                                                         updated_at=datetime.now(UTC))
        return True

    async def save_summary(self, scope: MemoryScope, summary: Summary) -> None:
        # A summary belongs to a conversation (a foreign key in Postgres).
        if summary.conversation_id not in self.db.conversations and summary.conversation_id not in self.db.owners:
            raise PoisonError(f"unknown conversation {summary.conversation_id}")
        # Two workers may race on one conversation: the summary that covers more turns wins.
        old = self.db.summaries.get(summary.conversation_id)
        if old is None or old.through_seq < summary.through_seq:
            self.db.summaries[summary.conversation_id] = summary
            self.db.summary_owners.setdefault(summary.conversation_id, (scope.tenant_id, scope.user_id))
            self.db.summary_updated[summary.conversation_id] = datetime.now(UTC)

    async def stats(self, tenant_id: str, user_id: str | None) -> Stats:
        hidden = self.db.deleted
        turns = [t for t in self.db.turns.values() if t.tenant_id == tenant_id and t.message_id not in hidden
                 and (user_id is None or t.user_id == user_id)]
        expected = [t for t in turns if t.role == "user" and t.reply_expected]
        replied = sum(1 for t in expected if (r := self.db.replies.get(t.message_id)) is not None and r.published)
        return Stats(len({t.user_id for t in turns}), len({t.conversation_id for t in turns}), len(turns),
                     {r: sum(t.role == r for t in turns) for r in ("user", "assistant", "system")},
                     len(expected), replied,
                     min((t.occurred_at for t in turns), default=None),
                     max((t.occurred_at for t in turns), default=None))

