from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from contracts import MessageReceived
from convmem.errors import PoisonError
from convmem.ports import KeyDisclosure, TenantPolicy
from convmem.privacy.sealing import Sealer, SubjectKeyDestroyed
from services.retention.pii import detect, iban_valid, luhn_valid, scrub
from services.retention.scrubbing import ScrubPolicy


class Keys:
    def __init__(self) -> None:
        self.keys: dict[uuid.UUID, bytes | None] = {}
        self.live: dict[tuple[str, str], uuid.UUID] = {}
        self.lookups = 0

    async def subject_key(self, tenant_id: str, user_id: str) -> tuple[uuid.UUID, bytes]:
        if (tenant_id, user_id) not in self.live:
            key_id = uuid.uuid4()
            self.keys[key_id] = uuid.uuid4().bytes * 2
            self.live[(tenant_id, user_id)] = key_id
        key_id = self.live[(tenant_id, user_id)]
        return key_id, self.keys[key_id]  # type: ignore[return-value]

    async def key_by_id(self, key_id: uuid.UUID) -> bytes | None:
        self.lookups += 1
        return self.keys.get(key_id)

    async def disclose_key(self, key_id: uuid.UUID, tenant_id: str, served_to: str) -> KeyDisclosure | None:
        raise NotImplementedError  # the sealer never discloses keys

    def destroy(self, tenant_id: str, user_id: str) -> None:
        self.keys[self.live.pop((tenant_id, user_id))] = None


def event(text: str, user: str = "ana") -> MessageReceived:
    return MessageReceived(tenant_id="t", user_id=user, conversation_id=uuid.uuid4(), message_id=uuid.uuid4(),
                           text=text, occurred_at=datetime.now(UTC), metadata={"wa_name": "Ana"})


async def test_sealed_events_carry_no_text_and_open_only_while_the_key_lives() -> None:
    keys = Keys()
    sealer = Sealer(keys)
    original = event("my card is 4111 1111 1111 1111")
    sealed = await sealer.seal(original)
    assert sealed.text == "" and sealed.metadata == {} and sealed.sealed is not None
    assert "4111 1111 1111 1111" not in sealed.model_dump_json() and "Ana" not in sealed.model_dump_json()
    assert await sealer.seal(sealed) is sealed
    opened = await sealer.open(sealed)
    assert (opened.text, opened.metadata, opened.sealed) == (original.text, original.metadata, None)
    assert await sealer.open(original) is original  # events from before sealing pass through

    moved = sealed.model_copy(update={"user_id": "mallory"})  # bound to its subject and message
    with pytest.raises(PoisonError):
        await Sealer(keys).open(moved)

    keys.destroy("t", "ana")
    sealer.forget("t", "ana")
    with pytest.raises(SubjectKeyDestroyed):
        await sealer.open(sealed)
    fresh = await sealer.seal(event("hello again"))  # a returning user gets a new key
    assert fresh.sealed is not None and fresh.sealed.key_id != sealed.sealed.key_id


@pytest.mark.parametrize(("text", "region", "expected"), [
    ("call +44 20 7946 0958 today", "US", "call <PHONE> today"),
    ("ruf an: 030 1234567", "DE", "ruf an: <PHONE>"),
    ("meu número é (11) 91234-5678", "BR", "meu número é <PHONE>"),
    ("mail j.smith+shop@mail.example.co.uk now", "US", "mail <EMAIL> now"),
    ("card 5555-5555-5555-4444 exp 12/27", "US", "card <CARD> exp 12/27"),
    ("IBAN GB82 WEST 1234 5698 7654 32 ok", "GB", "IBAN <IBAN> ok"),
    ("from 203.0.113.9 and 2001:db8::1", "US", "from <IP> and <IP>"),
    ("order #4829-1123 on 2025-03-14 costs $1,299.00", "US", "order #4829-1123 on 2025-03-14 costs $1,299.00"),
    ("tracking 1Z999AA10123456784, see you at 10:30", "US", "tracking 1Z999AA10123456784, see you at 10:30"),
    ("4111 1111 1111 1112 is not a card", "US", "4111 1111 1111 1112 is not a card"),
])
def test_pii_is_replaced_by_typed_placeholders_and_look_alikes_are_left(text: str, region: str,
                                                                       expected: str) -> None:
    assert scrub(text, region)[0] == expected


def test_checksums_and_counts() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert iban_valid("DE89 3704 0044 0532 0130 00") and not iban_valid("DE89 3704 0044 0532 0130 01")
    assert scrub("a@b.io and c@d.io, +1 415 555 2671", "US")[1] == {"EMAIL": 2, "PHONE": 1}
    assert [f.kind for f in detect("nothing here", "US")] == []


def test_tenant_policy_overrides_the_defaults_field_by_field() -> None:
    defaults = ScrubPolicy("delayed", 24, "US")
    assert defaults.for_tenant(None) == defaults
    assert defaults.for_tenant(TenantPolicy("t", pii_mode="immediate")) == ScrubPolicy("immediate", 24, "US")
    assert defaults.for_tenant(TenantPolicy("t", pii_delay_hours=0, phone_region="BR")) == ScrubPolicy("delayed", 0, "BR")
