"""ConsoleLedger: sessions found by the hash of their cookie until they expire, the action
record newest first per tenant, and the console's reads (users by id prefix, messages per
minute, a reply's latency and tokens), on the fake and on Postgres alike."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from convmem.adapters.postgres import PostgresStorage
from convmem.adapters.postgres.console import PgConsoleLedger
from convmem.ports import Storage
from convmem.ports.console import ConsoleAction, ConsoleLedger, ConsoleSession, TurnFacts
from tests.fakes import FakeDb, fake_storage
from tests.fakes.console import FakeConsoleLedger
from tests.integration.support import answer, said, unique


@pytest.fixture(params=["fake", pytest.param("postgres", marks=pytest.mark.stack)])
def pair(request: pytest.FixtureRequest) -> tuple[Storage, ConsoleLedger]:
    if request.param == "fake":
        db = FakeDb()
        return fake_storage(db), FakeConsoleLedger(db)
    store: PostgresStorage = request.getfixturevalue("store")
    return store, PgConsoleLedger(store.pool)


def session(tenant: str, subject: str, lives: timedelta) -> ConsoleSession:
    now = datetime.now(UTC)
    return ConsoleSession(secrets.token_hex(32), tenant, subject, frozenset({"admin"}), secrets.token_urlsafe(16),
                          now, now + lives)


async def test_a_session_is_found_by_its_hash_until_it_expires_or_ends(pair: tuple[Storage, ConsoleLedger]) -> None:
    _, ledger = pair
    tenant = unique("t")
    live, old = session(tenant, "root", timedelta(hours=1)), session(tenant, "root", timedelta(seconds=-1))
    await ledger.open_session(old)
    await ledger.open_session(live)
    now = datetime.now(UTC)
    found = await ledger.session(live.token_hash, now)
    assert found is not None
    assert (found.tenant_id, found.subject, found.roles, found.csrf) == (tenant, "root", frozenset({"admin"}),
                                                                         live.csrf)
    assert await ledger.session(old.token_hash, now) is None
    assert await ledger.session(secrets.token_hex(32), now) is None
    assert await ledger.session(live.token_hash, live.expires_at + timedelta(seconds=1)) is None
    await ledger.close_session(live.token_hash)
    assert await ledger.session(live.token_hash, now) is None


async def test_actions_are_listed_newest_first_per_tenant(pair: tuple[Storage, ConsoleLedger]) -> None:
    _, ledger = pair
    tenant, other = unique("t"), unique("t")
    start = datetime.now(UTC)
    for i, (who, what, about) in enumerate([("root", "export", "ana"), ("root", "erase", "ana"),
                                            ("boss", "dlq_replay", None)]):
        await ledger.record_action(ConsoleAction(tenant, who, what, about, start + timedelta(seconds=i), {"n": i}))
    await ledger.record_action(ConsoleAction(other, "x", "export", "ana", start, {}))
    listed = await ledger.actions(tenant, 10)
    assert [(a.actor, a.action, a.subject, a.detail) for a in listed] == [
        ("boss", "dlq_replay", None, {"n": 2}), ("root", "erase", "ana", {"n": 1}), ("root", "export", "ana", {"n": 0})]
    assert [a.action for a in await ledger.actions(tenant, 1)] == ["dlq_replay"]
    assert [a.action for a in await ledger.actions(tenant, 10, subject="ana")] == ["erase", "export"]
    assert [a.action for a in await ledger.actions(tenant, 10, kinds=["export", "dlq_replay"])] == ["dlq_replay",
                                                                                                 "export"]
    assert await ledger.actions(tenant, 10, kinds=[]) == []


async def test_users_are_found_by_prefix_and_turns_counted_per_minute(pair: tuple[Storage, ConsoleLedger]) -> None:
    storage, ledger = pair
    tenant = unique("t")
    ana, anabel, ben = "Ana_1", "ana%2", "ben"
    now = datetime.now(UTC).replace(second=30, microsecond=0)
    for user, minutes_ago in ((ana, 5), (anabel, 1), (ben, 3)):
        conv = uuid.uuid4()
        await storage.turns.record_turn(said(tenant, user, conv, "hello", when=now - timedelta(minutes=minutes_ago)))
    await storage.turns.record_turn(said(unique("t"), "ana-elsewhere", uuid.uuid4(), "hi"))

    assert [u.user_id for u in await ledger.find_users(tenant, "ana", 10)] == [anabel, ana]  # latest first
    assert [u.user_id for u in await ledger.find_users(tenant, "ANA_", 10)] == [ana]  # _ is a character here
    assert [u.user_id for u in await ledger.find_users(tenant, "ana%", 10)] == [anabel]
    everyone = await ledger.find_users(tenant, "", 10)
    assert [u.user_id for u in everyone] == [anabel, ben, ana] and everyone[0].conversations == 1
    assert len(await ledger.find_users(tenant, "", 2)) == 2

    counts = await ledger.messages_per_minute(tenant, now - timedelta(minutes=4))
    assert [(at.astimezone(UTC), n) for at, n in counts] == [
        (now.replace(second=0) - timedelta(minutes=3), 1), (now.replace(second=0) - timedelta(minutes=1), 1)]


async def test_a_reply_carries_its_latency_and_tokens(pair: tuple[Storage, ConsoleLedger]) -> None:
    storage, ledger = pair
    tenant, conv = unique("t"), uuid.uuid4()
    asked = said(tenant, "ana", conv, "how long?")
    told = answer(asked)
    await storage.turns.record_turn(asked)
    await storage.turns.record_turn(told)
    facts = await ledger.turn_facts(tenant, [told.message_id, asked.message_id, uuid.uuid4()])
    assert facts[told.message_id] == TurnFacts(42, 11, 5)
    assert facts[asked.message_id] == TurnFacts(None, None, None)
    assert set(facts) == {told.message_id, asked.message_id}
    assert await ledger.turn_facts(unique("t"), [told.message_id]) == {}
    assert await ledger.turn_facts(tenant, []) == {}
