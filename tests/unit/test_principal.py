"""The access model of the HTTP edge (services.ingest.principal): who may post, read and
administer what, and the one ownership rule for conversations."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from contracts import MessageReceived
from convmem.ports import ConversationRef, Storage
from services.ingest.principal import (
    Principal,
    Refused,
    author_for,
    data_subject,
    memory_owner,
    memory_owner_or_tenant,
    require_admin,
    visible_conversation,
)
from tests.fakes import fake_storage

SECRET = "unit-secret-0123456789-0123456789-abc"
ANA = Principal("ana", "default", frozenset({"user"}))
BOT = Principal("bot", "default", frozenset({"service"}))
BOSS = Principal("boss", "default", frozenset({"admin"}))
OTHER_BOSS = Principal("boss", "acme", frozenset({"admin"}))


def refused(status: int, call: Callable[[], object]) -> Refused:
    with pytest.raises(Refused) as caught:
        call()
    assert caught.value.status == status
    return caught.value


def test_who_may_post_as_whom() -> None:
    assert author_for(ANA, "ana", "user") == ANA
    assert refused(403, lambda: author_for(ANA, "ben", "user")).message == \
        "a user token may post only as its own user_id"
    assert refused(403, lambda: author_for(ANA, "ana", "assistant")).message == \
        "only a service or admin token may post assistant turns"
    # a service or admin posts for anyone of its tenant, and the author is that user, not the caller
    for caller in (BOT, BOSS):
        assert author_for(caller, "ben", "assistant") == Principal("ben", "default", frozenset({"user"}))


def test_whose_memory_a_read_covers() -> None:
    assert memory_owner(ANA, None) == memory_owner(ANA, "ana") == "ana"
    assert refused(403, lambda: memory_owner(ANA, "ben")).message == "a user token may read only its own memory"
    refused(403, lambda: memory_owner(BOT, "ben"))  # a service posts for users, it does not read them
    assert memory_owner(BOSS, "ben") == "ben" and memory_owner(BOSS, None) == "boss"
    # only an admin reads a whole tenant
    assert memory_owner_or_tenant(BOSS, None) is None and memory_owner_or_tenant(BOSS, "ben") == "ben"
    assert memory_owner_or_tenant(ANA, None) == "ana"
    refused(403, lambda: memory_owner_or_tenant(ANA, "ben"))


def test_a_users_data_as_a_whole_and_the_tenant_policy() -> None:
    assert data_subject(ANA, "ana") == "ana" and data_subject(BOSS, "ana") == "ana"
    assert refused(403, lambda: data_subject(ANA, "ben")).message == \
        "only the user itself or an admin of its tenant may do this"
    refused(403, lambda: data_subject(BOT, "ben"))
    assert require_admin(BOSS) == BOSS
    refused(403, lambda: require_admin(ANA))
    refused(403, lambda: require_admin(BOT))


def test_the_ownership_rule() -> None:
    mine = ConversationRef(uuid.uuid4(), "default", "ana")
    bens = ConversationRef(uuid.uuid4(), "default", "ben")
    assert ANA.sees(mine) and not ANA.sees(bens)
    assert BOSS.sees(bens) and not BOT.sees(bens)
    # another tenant's: not even its admin, nor a user with the same name there
    assert not OTHER_BOSS.sees(mine) and not Principal("ana", "acme", frozenset({"user"})).sees(mine)
    # deleted: nobody
    gone = ConversationRef(mine.conversation_id, "default", "ana", "deleted")
    assert not ANA.sees(gone) and not BOSS.sees(gone)
    assert ANA.sees(ConversationRef(mine.conversation_id, "default", "ana", "archived"))


async def _seed(storage: Storage, tenant: str, user: str) -> uuid.UUID:
    conv = uuid.uuid4()
    await storage.turns.record_turn(MessageReceived(tenant_id=tenant, user_id=user, conversation_id=conv,
                                                    message_id=uuid.uuid4(), text="hi",
                                                    occurred_at=datetime.now(UTC)))
    return conv


async def test_visible_conversation_answers_404_alike_for_unknown_and_not_yours() -> None:
    storage = fake_storage()
    conv = await _seed(storage, "default", "ana")
    assert (await visible_conversation(storage.conversations, ANA, conv)).user_id == "ana"
    assert (await visible_conversation(storage.conversations, BOSS, conv)).user_id == "ana"
    await storage.conversations.delete_conversation("default", conv)
    for who, cid in [(Principal("ben", "default", frozenset({"user"})), conv), (OTHER_BOSS, conv),
                     (ANA, conv), (ANA, uuid.uuid4())]:
        with pytest.raises(Refused) as caught:
            await visible_conversation(storage.conversations, who, cid)
        assert (caught.value.status, caught.value.code) == (404, "conversation_not_found")
