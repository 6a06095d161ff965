"""The sender's rules on fakes: each part at most once, order, splitting, backoff, refusals,
the crash window, and what is never sent."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from contracts import ReplyGenerated, identity
from convmem.errors import PoisonError, RetryableError, SendOutcomeUnknown, SendRejected
from convmem.ports import SendPart
from services.sender.sending import SendPolicy, send_reply, split_text
from tests.fakes import FakeDb, FakeSendLedger, FakeWhatsAppApi

POLICY = SendPolicy(lease=timedelta(seconds=30))


def reply(text: str = "Hello! We deliver on Sundays.", *, channel: str = "whatsapp", model: str = "gpt",
          age: timedelta = timedelta(0)) -> ReplyGenerated:
    turn = uuid.uuid4()
    return ReplyGenerated(tenant_id="acme", user_id="ana", conversation_id=uuid.uuid4(),
                          message_id=identity.reply_id_for(turn), in_reply_to=turn, channel=channel,  # type: ignore[arg-type]
                          text=text, model=model, occurred_at=datetime.now(UTC) - age,
                          metadata={"whatsapp": {"phone_number_id": "555000111", "to": "34600111222"}})


def test_long_text_is_split_at_boundaries_within_the_limit() -> None:
    paragraph = "word " * 300  # 1,500 characters
    text = "\n\n".join(paragraph.strip() for _ in range(4))
    pieces = split_text(text, 4096)
    assert len(pieces) == 2 and all(len(p) <= 4096 for p in pieces)
    assert " ".join(" ".join(pieces).split()) == " ".join(text.split())  # nothing lost, nothing added
    assert pieces[0].endswith("word")  # cut at a paragraph break, not inside a word
    assert split_text("x" * 9000, 4096) == ["x" * 4096, "x" * 4096, "x" * 808]  # no boundary: hard cuts
    assert split_text("short", 4096) == ["short"]


async def test_a_reply_is_sent_once_however_often_it_arrives() -> None:
    db, api = FakeDb(), FakeWhatsAppApi()
    sends, r = FakeSendLedger(db), reply()
    assert await send_reply(r, sends=sends, api=api, policy=POLICY) == 1
    assert await send_reply(r, sends=sends, api=api, policy=POLICY) == 0  # a redelivery
    [sent] = api.sent
    assert (sent.phone_number_id, sent.to, sent.body) == ("555000111", "34600111222", r.text)
    assert identity.parse_send_ref(sent.callback_data) == (r.message_id, 0)
    assert db.sends[(r.message_id, 0)].state == "sent" and db.sends[(r.message_id, 0)].wamid == "wamid.fake1"


async def test_two_senders_at_once_send_it_once() -> None:
    db, api = FakeDb(), FakeWhatsAppApi()
    r = reply()
    outcomes = await asyncio.gather(send_reply(r, sends=FakeSendLedger(db), api=api, policy=POLICY),
                                    send_reply(r, sends=FakeSendLedger(db), api=api, policy=POLICY),
                                    return_exceptions=True)
    assert len(api.sent) == 1  # the other found it sent, or being sent (and retries later)
    assert all(o in (0, 1) or isinstance(o, RetryableError) for o in outcomes)


async def test_long_replies_go_in_parts_in_order_and_a_redelivery_sends_only_what_is_missing() -> None:
    db, api = FakeDb(), FakeWhatsAppApi(script=[])
    sends, r = FakeSendLedger(db), reply(("sentence. " * 500).strip())  # about 5,000 characters
    api.script = [RetryableError("429")]  # the first part is refused for now
    with pytest.raises(RetryableError):
        await send_reply(r, sends=sends, api=api, policy=POLICY)
    assert db.sends[(r.message_id, 0)].state == "pending" and not api.sent
    assert await send_reply(r, sends=sends, api=api, policy=POLICY) == 2  # the retry sends both, in order
    assert [identity.parse_send_ref(m.callback_data) for m in api.sent] == [(r.message_id, 0), (r.message_id, 1)]
    assert "".join(m.body for m in api.sent).replace(" ", "") == r.text.replace(" ", "")
    assert await send_reply(r, sends=sends, api=api, policy=POLICY) == 0 and len(api.sent) == 2


async def test_a_refusal_for_good_is_recorded_and_dead_lettered() -> None:
    db = FakeDb()
    api = FakeWhatsAppApi(script=[SendRejected(131047, "Re-engagement message")])
    r = reply()
    with pytest.raises(PoisonError, match="131047"):
        await send_reply(r, sends=FakeSendLedger(db), api=api, policy=POLICY)
    row = db.sends[(r.message_id, 0)]
    assert (row.state, row.error_code, row.error) == ("failed", 131047, "Re-engagement message")
    assert await send_reply(r, sends=FakeSendLedger(db), api=api, policy=POLICY) == 0  # redelivered: settled
    assert api.attempts == 1


async def test_an_interrupted_send_is_never_repeated() -> None:
    db = FakeDb()
    api = FakeWhatsAppApi(script=[SendOutcomeUnknown("read timeout")])
    r = reply()
    assert await send_reply(r, sends=FakeSendLedger(db), api=api, policy=POLICY) == 0
    assert db.sends[(r.message_id, 0)].state == "unknown"
    assert await send_reply(r, sends=FakeSendLedger(db), api=api, policy=POLICY) == 0
    assert api.attempts == 1


async def test_a_claim_left_by_a_stopped_sender_waits_for_its_lease_then_is_never_sent() -> None:
    db, api = FakeDb(), FakeWhatsAppApi()
    r = reply()
    sends = FakeSendLedger(db)
    part = SendPart(r.message_id, r.tenant_id, r.user_id, r.conversation_id, 0, 1)
    assert await sends.claim_send(part, 30) == "claimed"  # a sender claims, sends, and dies before recording
    with pytest.raises(RetryableError):  # within the lease it may still be waiting for Meta: later
        await send_reply(r, sends=sends, api=api, policy=POLICY)
    assert await send_reply(r, sends=sends, api=api, policy=SendPolicy(lease=timedelta(0))) == 0
    assert db.sends[(r.message_id, 0)].state == "unknown" and api.attempts == 0


async def test_offline_old_and_other_channel_replies_are_not_sent() -> None:
    db, api = FakeDb(), FakeWhatsAppApi()
    sends = FakeSendLedger(db)
    offline = reply("[offline mode: ...] What I remember ...", model="offline")
    assert await send_reply(offline, sends=sends, api=api, policy=POLICY) == 0
    assert db.sends[(offline.message_id, 0)].state == "skipped"
    assert "offline" in (db.sends[(offline.message_id, 0)].error or "")
    assert await send_reply(reply(model="offline"), sends=sends, api=api,
                            policy=SendPolicy(send_offline=True)) == 1  # when the operator asks for them
    old = reply(age=timedelta(hours=2))
    assert await send_reply(old, sends=sends, api=api, policy=POLICY) == 0
    assert db.sends[(old.message_id, 0)].state == "skipped"
    web = reply(channel="http")
    assert await send_reply(web, sends=sends, api=api, policy=POLICY) == 0 and (web.message_id, 0) not in db.sends
    assert len(api.sent) == 1
