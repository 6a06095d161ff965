"""Fakes of the privacy side: data keys, erasure, tenant policies, retention and scrubbing."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from contracts import TurnRecorded
from convmem.errors import PoisonError, RetryableError
from convmem.ports import (
    ErasureStatus,
    Health,
    KeyDisclosure,
    PrivacyLedger,
    RetentionLedger,
    SubjectKeys,
    TenantPolicies,
    TenantPolicy,
    UserSummary,
)
from tests.fakes.db import FakeDb


class FakeSubjectKeys(SubjectKeys):
    def __init__(self, db: FakeDb) -> None:
        self.db = db

    async def subject_key(self, tenant_id: str, user_id: str) -> tuple[UUID, bytes]:
        for key_id, (tenant, user, secret) in self.db.keys.items():
            if (tenant, user) == (tenant_id, user_id) and secret is not None:
                return key_id, secret
        key_id, secret = uuid.uuid4(), os.urandom(32)
        self.db.keys[key_id] = (tenant_id, user_id, secret)
        return key_id, secret

    async def key_by_id(self, key_id: UUID) -> bytes | None:
        found = self.db.keys.get(key_id)
        return None if found is None else found[2]

    async def disclose_key(self, key_id: UUID, tenant_id: str, served_to: str) -> KeyDisclosure | None:
        found = self.db.keys.get(key_id)
        if found is None or found[0] != tenant_id:
            return None
        if found[2] is not None:
            self.db.disclosures.append((key_id, tenant_id, served_to))
        return KeyDisclosure(key_id, tenant_id, found[1], found[2])


class FakePrivacyLedger(PrivacyLedger):
    def __init__(self, db: FakeDb) -> None:
        self.db = db
        self.compactions = 0  # memory keeps no dead rows; counted so tests see that it was asked

    async def compact_erased(self) -> None:
        self.compactions += 1

    async def request_erasure(self, request_id: UUID, tenant_id: str, user_id: str, requested_by: str,
                              requested_at: datetime) -> ErasureStatus:
        if request_id in self.db.erasures:
            return self.db.erasures[request_id]
        pending = [e for e in self.db.erasures.values()
                   if (e.tenant_id, e.user_id, e.status) == (tenant_id, user_id, "requested")]
        if pending:
            return max(pending, key=lambda e: e.requested_at)
        status = ErasureStatus(request_id, tenant_id, user_id, "requested", requested_at, None, {})
        self.db.erasures[request_id] = status
        return status

    async def erasure_status(self, tenant_id: str, user_id: str) -> ErasureStatus | None:
        mine = [e for e in self.db.erasures.values() if (e.tenant_id, e.user_id) == (tenant_id, user_id)]
        return max(mine, key=lambda e: e.requested_at) if mine else None

    async def erase_subject(self, request_id: UUID, tenant_id: str, user_id: str) -> ErasureStatus:
        db = self.db
        request = db.erasures.get(request_id)
        if request is None:
            raise PoisonError(f"unknown erasure request {request_id}")
        if request.status == "completed":
            return request
        subject = (tenant_id, user_id)
        keys = [k for k, (t, u, s) in db.keys.items() if (t, u) == subject and s is not None]
        for k in keys:
            db.keys[k] = (tenant_id, user_id, None)
        turns = [i for i, t in db.turns.items() if (t.tenant_id, t.user_id) == subject]
        replies = [i for i in db.replies if i in set(turns)]
        conversations = [c for c, info in db.conversations.items() if (info.tenant_id, info.user_id) == subject]
        # Counted by the owner stored with the summary, as Postgres counts them.
        summaries = [c for c, owner in db.summary_owners.items() if owner == subject and c in db.summaries]
        for i in turns:
            del db.turns[i]
            db.reply_facts.pop(i, None)
            db.scrubbed.pop(i, None)
        for i in replies:
            del db.replies[i]
        sends = [part for part, row in db.sends.items() if (row.tenant_id, row.user_id) == subject]
        sent = {(tenant_id, db.sends[part].wamid) for part in sends if db.sends[part].wamid is not None}
        statuses = [s for s in db.statuses if (s.tenant_id, s.external_id) in sent]
        db.statuses[:] = [s for s in db.statuses if (s.tenant_id, s.external_id) not in sent]
        for part in sends:
            del db.sends[part]
        for c in {*conversations, *summaries}:
            db.conversations.pop(c, None)
            db.owners.pop(c, None)
            db.deleted_at.pop(c, None)
            db.summaries.pop(c, None)
            db.summary_owners.pop(c, None)
            db.summary_updated.pop(c, None)
        interaction = 1 if db.user_summaries.pop(subject, None) is not None else 0
        amendments = [i for i, (a, _) in db.amendments.items() if (a.tenant_id, a.user_id) == subject]
        for i in amendments:
            del db.amendments[i]
        aliases = [alias for alias, (user, _) in db.aliases.items() if (alias[0], user) == subject]
        for alias in aliases:
            del db.aliases[alias]
        counts = {"message_amendments": len(amendments), "user_aliases": len(aliases), "messages": len(turns), "conversation_summaries": len(summaries),
                  "conversations": len(conversations), "interaction_summaries": interaction,
                  "replies": len(replies), "keys": len(keys), "reply_sends": len(sends),
                  "delivery_statuses": len(statuses)}
        done = replace(request, status="completed", completed_at=datetime.now(UTC), counts=counts)
        db.erasures[request_id] = done
        return done

    async def mark_erasure_announced(self, request_id: UUID) -> None:
        if (found := self.db.erasures.get(request_id)) is not None:
            self.db.erasures[request_id] = replace(found, announced=True)

    async def user_summary(self, tenant_id: str, user_id: str) -> UserSummary | None:
        return self.db.user_summaries.get((tenant_id, user_id))

    async def export_rows(self, tenant_id: str, user_id: str, what: str,
                          batch: int = 500) -> AsyncIterator[dict[str, Any]]:
        subject = (tenant_id, user_id)
        if what == "conversations":
            for info in sorted((c for c in self.db.conversations.values() if (c.tenant_id, c.user_id) == subject),
                               key=lambda c: (c.created_at, c.conversation_id)):
                row = asdict(info)
                yield {"id": row.pop("conversation_id"), **row}  # Postgres's column names and order
        elif what == "messages":
            for t in sorted((t for t in self.db.turns.values() if (t.tenant_id, t.user_id) == subject),
                            key=lambda t: (str(t.conversation_id), t.seq)):
                yield {"id": t.message_id, "conversation_id": t.conversation_id, "seq": t.seq, "role": t.role,
                       "channel": t.channel, "content_type": t.content_type, "content": t.text,
                       "external_id": t.external_id, "in_reply_to": t.in_reply_to, "occurred_at": t.occurred_at,
                       "recorded_at": t.recorded_at, "metadata": t.metadata, "language": t.language,
                       "intent": t.intent, "intent_confidence": t.intent_confidence,
                       "model": None, "prompt_tokens": None, "completion_tokens": None, "latency_ms": None,
                       **self.db.reply_facts.get(t.message_id, {}),
                       "pii_scrubbed": bool(self.db.scrubbed.get(t.message_id)),
                       "pii_kinds": self.db.scrubbed.get(t.message_id) or None,
                       "deleted_at": self.db.deleted_at.get(t.conversation_id)}
        elif what == "conversation_summaries":
            for conversation_id, s in self.db.summaries.items():
                if self.db.summary_owners.get(conversation_id) == subject:
                    yield {"conversation_id": conversation_id, "summary": s.text, "through_seq": s.through_seq,
                           "method": s.method, "updated_at": self.db.summary_updated.get(conversation_id)}
        else:
            raise KeyError(what)


class FakeTenantPolicies(TenantPolicies):
    def __init__(self, db: FakeDb) -> None:
        self.db = db

    async def tenant_policy(self, tenant_id: str) -> TenantPolicy | None:
        return self.db.policies.get(tenant_id)

    async def set_tenant_policy(self, policy: TenantPolicy) -> TenantPolicy:
        self.db.policies[policy.tenant_id] = policy
        return policy


class FakeRetentionLedger(RetentionLedger):
    def __init__(self, db: FakeDb) -> None:
        self.db = db

    async def purge_expired(self, cutoff: datetime, batch: int,
                            deleted_before: datetime | None = None) -> list[UUID]:
        db = self.db
        now = datetime.now(UTC)

        def expired(t: TurnRecorded) -> bool:
            own = db.policies.get(t.tenant_id)
            days = own.message_retention_days if own is not None else None
            return t.occurred_at < (cutoff if days is None else now - timedelta(days=days))

        gone = [t.message_id for t in sorted(db.turns.values(), key=lambda t: t.occurred_at) if expired(t)][:batch]
        if deleted_before is not None and len(gone) < batch:
            old = {c for c, when in db.deleted_at.items() if when < deleted_before}
            gone += [i for i, t in db.turns.items() if t.conversation_id in old and i not in gone][:batch - len(gone)]
            if len(gone) < batch:
                for c in old:
                    if not any(t.conversation_id == c for i, t in db.turns.items() if i not in gone):
                        db.conversations.pop(c, None)
                        db.owners.pop(c, None)
                        db.deleted_at.pop(c, None)
                        db.summaries.pop(c, None)  # cascades in Postgres
                        db.summary_owners.pop(c, None)
                        db.summary_updated.pop(c, None)
        for i, (a, applied) in list(db.amendments.items()):
            own = db.policies.get(a.tenant_id)
            days = own.message_retention_days if own is not None else None
            if a.message_id in gone or (not applied and a.occurred_at < (
                    cutoff if days is None else now - timedelta(days=days))):
                del db.amendments[i]
        for i in gone:
            del db.turns[i]
            db.reply_facts.pop(i, None)
        return gone

    async def purge_summaries(self, cutoff: datetime) -> tuple[int, int]:
        db = self.db
        now = datetime.now(UTC)

        def expired(tenant_id: str, updated_at: datetime) -> bool:
            own = db.policies.get(tenant_id)
            days = own.summary_retention_days if own is not None else None
            return updated_at < (cutoff if days is None else now - timedelta(days=days))

        # A summary stored without an update time (put there directly by a test) counts as fresh.
        conversations = [c for c in db.summaries if c in db.summary_owners
                         and expired(db.summary_owners[c][0], db.summary_updated.get(c, now))]
        users = [k for k, s in db.user_summaries.items() if expired(k[0], s.updated_at)]
        for c in conversations:
            del db.summaries[c]
            db.summary_owners.pop(c, None)
            db.summary_updated.pop(c, None)
        for k in users:
            del db.user_summaries[k]
        return len(conversations), len(users)

    async def turns_due_for_scrub(self, default_cutoff: datetime, default_mode: str, batch: int
                                  ) -> list[TurnRecorded]:
        db = self.db
        now = datetime.now(UTC)
        hidden = db.deleted

        def due(t: TurnRecorded) -> bool:
            own = db.policies.get(t.tenant_id)
            if ((own.pii_mode if own and own.pii_mode else default_mode) == "off" or t.message_id in db.scrubbed
                    or t.message_id in hidden):
                return False
            delay = own.pii_delay_hours if own is not None else None
            return t.recorded_at < (default_cutoff if delay is None else now - timedelta(hours=delay))

        return sorted((t for t in db.turns.values() if due(t)), key=lambda t: t.recorded_at)[:batch]

    async def record_scrub(self, message_id: UUID, text: str | None, kinds: dict[str, int]) -> bool:
        if message_id in self.db.scrubbed or message_id not in self.db.turns:
            return False
        self.db.scrubbed[message_id] = kinds
        if text is not None:
            self.db.turns[message_id] = self.db.turns[message_id].model_copy(update={"text": text})
        return True

    async def derived_texts(self, conversation_id: UUID) -> tuple[str | None, str | None]:
        info = self.db.conversations.get(conversation_id)
        summary = self.db.summaries.get(conversation_id)
        if info is None:
            return None, None  # Postgres reads the summary through its conversation
        return info.title, None if summary is None else summary.text

    async def replace_derived_texts(self, conversation_id: UUID, title: str | None, summary: str | None) -> None:
        if title is not None and (info := self.db.conversations.get(conversation_id)) is not None:
            self.db.conversations[conversation_id] = replace(info, title=title)
        if summary is not None and (old := self.db.summaries.get(conversation_id)) is not None:
            self.db.summaries[conversation_id] = replace(old, text=summary)


class FakeHealth(Health):
    def __init__(self, db: FakeDb) -> None:
        self.db = db
        self.down = False

    async def ping(self) -> None:
        if self.down:
            raise RetryableError("fake store is down")

