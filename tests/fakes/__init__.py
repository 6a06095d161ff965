"""Hand-written fakes of our own ports, one per port, each declared against its protocol so
the type checker flags a method it forgot. The storage fakes share one FakeDb, the way the
Postgres adapters share one database. tests/integration runs the same contract suite
against each fake and its Postgres adapter."""

from __future__ import annotations

from convmem.ports import Storage
from tests.fakes.compute import FakeChatModel, FakeEmbedder, FakeIndex, FakeSigningKeys, FakeTokenCounter
from tests.fakes.db import FakeDb
from tests.fakes.ledgers import (
    FakeDeliveryLog,
    FakeEmbeddingLedger,
    FakeMessageLookup,
    FakeReplyLedger,
    FakeTurnLedger,
    FakeUserAliases,
)
from tests.fakes.operations import FakeBacklog, FakeReplayLog, FakeStreamTickets
from tests.fakes.privacy import FakeHealth, FakePrivacyLedger, FakeRetentionLedger, FakeSubjectKeys, FakeTenantPolicies
from tests.fakes.reading import FakeConversations, FakeMemoryReader
from tests.fakes.sending import FakeSendLedger, FakeWhatsAppApi


def fake_storage(db: FakeDb | None = None) -> Storage:
    """Every storage port over one in-memory database (a new one unless given)."""
    db = db if db is not None else FakeDb()
    return Storage(
        turns=FakeTurnLedger(db), deliveries=FakeDeliveryLog(db), embeddings=FakeEmbeddingLedger(db),
        memory=FakeMemoryReader(db), replies=FakeReplyLedger(db), conversations=FakeConversations(db),
        lookup=FakeMessageLookup(db), keys=FakeSubjectKeys(db), privacy=FakePrivacyLedger(db),
        policies=FakeTenantPolicies(db), retention=FakeRetentionLedger(db), health=FakeHealth(db),
        sends=FakeSendLedger(db), backlog=FakeBacklog(db), replays=FakeReplayLog(db),
        aliases=FakeUserAliases(db),
        tickets=FakeStreamTickets(db),
    )


__all__ = [
    "FakeBacklog", "FakeChatModel", "FakeConversations", "FakeDb", "FakeDeliveryLog", "FakeEmbedder", "FakeEmbeddingLedger",
    "FakeHealth", "FakeIndex", "FakeMemoryReader", "FakeMessageLookup", "FakePrivacyLedger", "FakeReplayLog",
    "FakeReplyLedger", "FakeRetentionLedger", "FakeSendLedger", "FakeSigningKeys", "FakeSubjectKeys", "FakeTenantPolicies",
    "FakeTokenCounter", "FakeTurnLedger", "FakeUserAliases", "FakeWhatsAppApi", "fake_storage",
]
