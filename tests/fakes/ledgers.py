"""Fakes of the write-side ports: turns, delivery states, embeddings, replies, lookups."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from uuid import UUID

from contracts import (
    DeliveryStatusChanged,
    MessageAmended,
    MessageReceived,
    ReplyGenerated,
    TurnRecorded,
    identity,
    is_offline_notice,
)
from convmem.errors import ConversationClosed, OwnershipConflict, PoisonError
from convmem.ports import (
    AmendOutcome,
    ConversationInfo,
    DeliveredPart,
    Delivery,
    DeliveryLog,
    EmbeddingLedger,
    Enrichment,
    MessageLookup,
    RecordOutcome,
    ReplyLedger,
    StoredReply,
    TurnLedger,
    Unit,
    UserAliases,
    UserSummary,
)
from tests.fakes.db import FakeDb


class FakeTurnLedger(TurnLedger):
    def __init__(self, db: FakeDb) -> None:
        self.db = db

    async def record_turn(self, event: MessageReceived | ReplyGenerated,
                          enrichment: Enrichment | None = None) -> RecordOutcome:
        # The checks run before anything changes: Postgres rolls the whole transaction back.
        db = self.db
        if event.message_id in db.turns:
            return RecordOutcome(db.turns[event.message_id], False, event.message_id in db.published)
        owner = db.owners.get(event.conversation_id, (event.tenant_id, event.user_id))
        if owner != (event.tenant_id, event.user_id):
            raise OwnershipConflict("conversation belongs to another user")
        info = db.conversations.get(event.conversation_id)
        if info is not None and info.status == "deleted":
            raise ConversationClosed("deleted")
        key = (event.tenant_id, event.user_id, event.external_id) if isinstance(event, MessageReceived) else None
        if key is not None and key[2] is not None and any(
                (t.tenant_id, t.user_id, t.external_id) == key for t in db.turns.values()):
            raise PoisonError("external_id already used by another message of this user")
        role = event.role if isinstance(event, MessageReceived) else "assistant"
        # As in Postgres: a user turn titles a conversation that has no title yet.
        title = (event.text[:80].strip() or None) if role == "user" else None
        now = datetime.now(UTC)
        new_conversation = info is None
        if info is None:
            info = ConversationInfo(
                event.conversation_id, event.tenant_id, event.user_id, event.channel, None,
                "first_message", "general", "active", 0, event.occurred_at, now, None, {})
        # seq follows the conversation's counter, not the turns left: purged turns keep their numbers.
        seq = info.message_count + 1
        db.conversations[event.conversation_id] = replace(
            info, message_count=seq, updated_at=now, title=info.title if info.title is not None else title,
            last_message_at=max(info.last_message_at or event.occurred_at, event.occurred_at))
        db.owners[event.conversation_id] = owner
        found = enrichment or Enrichment()
        if isinstance(event, MessageReceived):
            turn = TurnRecorded(
                tenant_id=event.tenant_id, user_id=event.user_id, conversation_id=event.conversation_id,
                message_id=event.message_id, seq=seq, role=role, channel=event.channel,
                content_type=event.content_type, text=event.text, external_id=event.external_id,
                reply_expected=event.reply_expected, occurred_at=event.occurred_at, recorded_at=now,
                metadata=event.metadata, language=found.language, intent=found.intent,
                intent_confidence=found.intent_confidence)
        else:
            turn = TurnRecorded(
                tenant_id=event.tenant_id, user_id=event.user_id, conversation_id=event.conversation_id,
                message_id=event.message_id, seq=seq, role=role, channel=event.channel, text=event.text,
                in_reply_to=event.in_reply_to, reply_expected=False, occurred_at=event.occurred_at,
                recorded_at=now, language=found.language, intent=found.intent,
                intent_confidence=found.intent_confidence,
                metadata={"model": event.model, "sources": [str(s) for s in event.sources],
                          "finish_reason": event.finish_reason})
            db.reply_facts[event.message_id] = {
                "model": event.model, "prompt_tokens": event.usage.prompt_tokens,
                "completion_tokens": event.usage.completion_tokens, "latency_ms": event.latency_ms}
        db.turns[event.message_id] = turn
        self._count(turn, new_conversation, found)
        if isinstance(event, MessageReceived) and event.channel == "whatsapp" and self._apply_waiting(turn):
            db.published.add(turn.message_id)  # revoked before it was recorded: never announced
            return RecordOutcome(db.turns[turn.message_id], True, True)
        return RecordOutcome(db.turns[turn.message_id], True, False)

    def _apply_waiting(self, turn: TurnRecorded) -> bool:
        """As convmem.adapters.postgres.amendments.apply_waiting."""
        db = self.db
        waiting = sorted(((a, i) for i, (a, done) in db.amendments.items() if not done
                          and (a.message_id, a.tenant_id, a.user_id) == (turn.message_id, turn.tenant_id, turn.user_id)),
                         key=lambda p: (p[0].occurred_at, p[0].external_id))
        for a, i in waiting:
            db.amendments[i] = (a, True)
            current = db.turns[turn.message_id]
            if a.kind == "revoked":
                db.revoked.add(turn.message_id)
                db.turns[turn.message_id] = current.model_copy(update={"reply_expected": False, "metadata": {
                    **current.metadata, "revoked": {"external_id": a.external_id,
                                                    "occurred_at": a.occurred_at.isoformat()}}})
                continue
            edited = current.metadata.get("edited") or {}
            if turn.message_id in db.revoked or (
                    "occurred_at" in edited and datetime.fromisoformat(edited["occurred_at"]) > a.occurred_at):
                continue
            metadata = dict(current.metadata)
            if isinstance(metadata.get("media"), dict):
                metadata["media"] = {**metadata["media"], "caption": a.text}
            metadata["edited"] = {"external_id": a.external_id, "occurred_at": a.occurred_at.isoformat(),
                                  "count": int(edited.get("count", 0)) + 1}
            text = f"[{current.content_type}] {a.text}" if current.content_type in ("image", "video", "document") \
                else a.text
            db.turns[turn.message_id] = current.model_copy(update={"text": text, "metadata": metadata})
            db.embedded.discard(turn.message_id)
        return turn.message_id in db.revoked

    async def amend_turn(self, amendment: MessageAmended) -> AmendOutcome:
        db = self.db
        db.amendments.setdefault(amendment.amendment_id, (amendment, False))
        turn = db.turns.get(amendment.message_id)
        if turn is None or (turn.tenant_id, turn.user_id) != (amendment.tenant_id, amendment.user_id):
            return AmendOutcome(None)
        revoked = self._apply_waiting(turn)
        return AmendOutcome(db.turns[amendment.message_id], revoked=revoked)

    def _count(self, turn: TurnRecorded, new_conversation: bool, found: Enrichment) -> None:
        key = (turn.tenant_id, turn.user_id)
        old = self.db.user_summaries.get(key) or UserSummary(0, 0, 0, None, None, {}, {}, datetime.now(UTC))
        by_user = turn.role == "user"
        languages, intents = dict(old.languages), dict(old.intents)
        if by_user and found.language:
            languages[found.language] = languages.get(found.language, 0) + 1
        if by_user and found.intent:
            intents[found.intent] = intents.get(found.intent, 0) + 1
        self.db.user_summaries[key] = UserSummary(
            old.conversations + int(new_conversation), old.messages + 1, old.user_messages + int(by_user),
            min(old.first_at or turn.occurred_at, turn.occurred_at), max(old.last_at or turn.occurred_at,
                                                                         turn.occurred_at),
            languages, intents, datetime.now(UTC))

    async def mark_turn_published(self, message_id: UUID) -> None:
        self.db.published.add(message_id)

    async def mark_turns_published(self, message_ids: Sequence[UUID]) -> None:
        self.db.published.update(message_ids)


class FakeDeliveryLog(DeliveryLog):
    def __init__(self, db: FakeDb) -> None:
        self.db = db

    async def record_delivery_status(self, event: DeliveryStatusChanged) -> None:
        # One row per (tenant, message, status), as Postgres's primary key: the first report wins.
        key = (event.tenant_id, event.external_id, event.status)
        if all((s.tenant_id, s.external_id, s.status) != key for s in self.db.statuses):
            self.db.statuses.append(event)
        ours = identity.parse_send_ref(event.callback_data)
        row = None if ours is None else self.db.sends.get(ours)
        if ours is not None and row is not None and row.tenant_id == event.tenant_id:
            self.db.sends[ours] = replace(row, wamid=row.wamid or event.external_id,
                                          state="sent" if row.state in ("sending", "unknown") else row.state)

    async def deliveries(self, tenant_id: str, message_ids: Sequence[UUID]) -> dict[UUID, Delivery]:
        out: dict[UUID, Delivery] = {}
        for (reply_id, part), row in sorted(self.db.sends.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
            if reply_id not in message_ids or row.tenant_id != tenant_id:
                continue
            statuses: dict[str, datetime] = {s.status: s.occurred_at for s in self.db.statuses
                        if (s.tenant_id, s.external_id) == (tenant_id, row.wamid)}
            found = DeliveredPart(part, row.state, row.wamid, row.error_code, row.error,  # type: ignore[arg-type]
                                  statuses)
            before = out.get(reply_id)
            out[reply_id] = Delivery((*(before.parts if before else ()), found))
        return out


class FakeEmbeddingLedger(EmbeddingLedger):
    def __init__(self, db: FakeDb) -> None:
        self.db = db

    async def texts_to_embed(self, message_ids: Sequence[UUID]) -> dict[UUID, str]:
        hidden = self.db.deleted
        return {i: "" if is_offline_notice(self.db.turns[i]) else self.db.turns[i].text
                for i in message_ids if i in self.db.turns and i not in hidden}

    async def mark_embedded(self, message_ids: Sequence[UUID]) -> None:
        self.db.embedded.update(message_ids)

    async def stale_units(self, conversation_ids: Sequence[UUID] | None, limit: int) -> list[Unit]:
        current = {u.unit_id: u for u in self.db.units()}
        # A unit in the index that has since lost its text (or its rows) must leave it.
        gone = [replace(u, text="", version=u.version + 1) for i, u in self.db.units_embedded.items()
                if i not in current or not current[i].text]
        stale = [u for u in current.values() if u.text and self.db.units_embedded.get(u.unit_id) != u] + gone
        wanted = None if conversation_ids is None else set(conversation_ids)
        return [u for u in stale if wanted is None or u.conversation_id in wanted][:limit]

    async def units_embedded(self, units: Sequence[Unit]) -> None:
        for u in units:
            if u.text:
                self.db.units_embedded[u.unit_id] = u
            else:
                self.db.units_embedded.pop(u.unit_id, None)


class FakeReplyLedger(ReplyLedger):
    def __init__(self, db: FakeDb) -> None:
        self.db = db

    async def find_reply(self, in_reply_to: UUID) -> StoredReply | None:
        return self.db.replies.get(in_reply_to)

    async def claim_reply(self, reply: ReplyGenerated) -> StoredReply:
        if (stored := self.db.replies.get(reply.in_reply_to)) is not None:
            return stored
        # A reply's message id is unique in Postgres too: one reply cannot answer two turns.
        if any(r.reply.message_id == reply.message_id for r in self.db.replies.values()):
            raise PoisonError("reply message_id already claimed for another turn")
        return self.db.replies.setdefault(reply.in_reply_to, StoredReply(reply, False))

    async def mark_reply_published(self, in_reply_to: UUID) -> None:
        if (stored := self.db.replies.get(in_reply_to)) is not None:
            self.db.replies[in_reply_to] = StoredReply(stored.reply, True)


class FakeMessageLookup(MessageLookup):
    def __init__(self, db: FakeDb) -> None:
        self.db = db

    async def message_ref(self, tenant_id: str, user_id: str, external_id: str) -> tuple[UUID, UUID] | None:
        for t in self.db.turns.values():
            if (t.tenant_id, t.user_id, t.external_id) == (tenant_id, user_id, external_id):
                return t.message_id, t.conversation_id
        return None

    async def known_external_ids(self, tenant_id: str, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        wanted = set(keys)
        return {(t.user_id, t.external_id) for t in self.db.turns.values()
                if t.tenant_id == tenant_id and t.external_id is not None and (t.user_id, t.external_id) in wanted}


class FakeUserAliases(UserAliases):
    def __init__(self, db: FakeDb) -> None:
        self.db = db

    async def resolve_aliases(self, tenant_id: str, ids: Sequence[str]) -> dict[str, str]:
        return {i: self.db.aliases[(tenant_id, i)][0] for i in ids if (tenant_id, i) in self.db.aliases}

    async def add_aliases(self, tenant_id: str, user_id: str, aliases: Sequence[str], changed_at: datetime) -> str:
        user = self.db.aliases.get((tenant_id, user_id), (user_id, changed_at))[0]
        for alias in aliases:
            known = self.db.aliases.get((tenant_id, alias))
            if alias != user and (known is None or known[1] <= changed_at):
                self.db.aliases[(tenant_id, alias)] = (user, changed_at)
        return user
