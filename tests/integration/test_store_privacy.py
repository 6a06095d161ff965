"""The privacy side of the Postgres adapter on the real database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from contracts import DeliveryStatusChanged, MessageReceived, ReplyGenerated
from convmem.adapters.postgres import PostgresStorage
from convmem.ports import Enrichment, MemoryScope, SendPart, Summary, TenantPolicy
from tests.integration.support import unique

pytestmark = pytest.mark.stack


async def said(store: PostgresStorage, tenant: str, user: str, conv: uuid.UUID, text: str,
               found: Enrichment | None = None, when: datetime | None = None) -> MessageReceived:
    e = MessageReceived(tenant_id=tenant, user_id=user, conversation_id=conv, message_id=uuid.uuid4(), text=text,
                        occurred_at=when or datetime.now(UTC))
    await store.turns.record_turn(e, found)
    return e


async def test_interaction_summary_moves_with_each_recorded_turn(store: PostgresStorage) -> None:
    tenant, ana = unique("t"), unique("ana")
    c1, c2 = uuid.uuid4(), uuid.uuid4()
    t0 = datetime(2026, 5, 1, tzinfo=UTC)
    first = await said(store, tenant, ana, c1, "hola", Enrichment("es", "greeting", 0.6), t0)
    await said(store, tenant, ana, c1, "book it", Enrichment("en", "booking", 0.6), t0 + timedelta(days=1))
    await said(store, tenant, ana, c2, "book again", Enrichment("en", "booking", 0.6), t0 + timedelta(days=2))
    await store.turns.record_turn(first, Enrichment("es", "greeting", 0.6))  # a redelivery counts nothing
    s = await store.privacy.user_summary(tenant, ana)
    assert s is not None and (s.conversations, s.messages, s.user_messages) == (2, 3, 3)
    assert (s.first_at, s.last_at) == (t0, t0 + timedelta(days=2))
    assert s.preferred_language == "en" and s.common_intents() == [("booking", 2), ("greeting", 1)]
    assert await store.privacy.user_summary(tenant, unique("nobody")) is None


async def test_erasure_removes_one_subject_only_and_is_idempotent(store: PostgresStorage) -> None:
    tenant, ana, ben = unique("t"), unique("ana"), unique("ben")
    conv = uuid.uuid4()
    await said(store, tenant, ana, conv, "mine")
    await said(store, tenant, ben, uuid.uuid4(), "his")
    await store.conversations.save_summary(MemoryScope(tenant, ana, conv), Summary(conv, "s", 1, "extractive"))
    wamids = {ana: unique("wamid"), ben: unique("wamid")}
    for user, wamid in wamids.items():  # a reply sent to each, and what Meta said of it
        part = SendPart(uuid.uuid4(), tenant, user, conv, 0, 1)
        await store.sends.claim_send(part, 60)
        await store.sends.record_sent(part, wamid)
        await store.deliveries.record_delivery_status(DeliveryStatusChanged(
            tenant_id=tenant, user_id=user, conversation_id=conv, external_id=wamid, status="read",
            occurred_at=datetime.now(UTC)))
    key_id, _ = await store.keys.subject_key(tenant, ana)
    assert (await store.keys.subject_key(tenant, ana))[0] == key_id
    request = await store.privacy.request_erasure(uuid.uuid4(), tenant, ana, ana, datetime.now(UTC))
    again = await store.privacy.request_erasure(uuid.uuid4(), tenant, ana, "admin", datetime.now(UTC))
    assert again.request_id == request.request_id  # one pending request per subject
    done = await store.privacy.erase_subject(request.request_id, tenant, ana)
    assert done.status == "completed" and done.counts["messages"] == 1 and done.counts["keys"] == 1
    assert done.counts["conversation_summaries"] == 1 and done.counts["interaction_summaries"] == 1
    assert done.counts["reply_sends"] == 1 and done.counts["delivery_statuses"] == 1  # the sender's records too
    statuses = await store.pool.run(lambda c: c.fetch(
        "SELECT external_id FROM delivery_statuses WHERE tenant_id = $1", tenant))
    assert [r["external_id"] for r in statuses] == [wamids[ben]]
    assert await store.keys.key_by_id(key_id) is None
    assert (await store.privacy.erase_subject(request.request_id, tenant, ana)).counts == done.counts
    assert (await store.conversations.stats(tenant, ana)).messages == 0 and (await store.conversations.stats(tenant, ben)).messages == 1
    assert (await store.privacy.erasure_status(tenant, ana)).status == "completed"  # type: ignore[union-attr]
    assert (await store.keys.subject_key(tenant, ana))[0] != key_id  # a returning user starts afresh


async def test_policies_scrub_marks_and_exports(store: PostgresStorage) -> None:
    tenant, ana = unique("t"), unique("ana")
    saved = await store.policies.set_tenant_policy(TenantPolicy(tenant, "immediate", 0, "GB", 30, None))
    assert saved == TenantPolicy(tenant, "immediate", 0, "GB", 30, None) == await store.policies.tenant_policy(tenant)
    conv = uuid.uuid4()
    e = await said(store, tenant, ana, conv, "call 020 7946 0958")
    await store.conversations.save_summary(MemoryScope(tenant, ana, conv), Summary(conv, "2026: call 020 7946 0958", 1, "extractive"))
    assert await store.retention.derived_texts(conv) == ("call 020 7946 0958", "2026: call 020 7946 0958")
    await store.retention.replace_derived_texts(conv, "call <PHONE>", "2026: call <PHONE>")
    assert await store.retention.derived_texts(conv) == ("call <PHONE>", "2026: call <PHONE>")
    due = await store.retention.turns_due_for_scrub(datetime.now(UTC) - timedelta(hours=24), "delayed", 1000)
    assert e.message_id in {t.message_id for t in due}  # delay 0 for this tenant: due at once
    assert await store.retention.record_scrub(e.message_id, "call <PHONE>", {"PHONE": 1})
    assert not await store.retention.record_scrub(e.message_id, "call <PHONE>", {"PHONE": 1})
    assert (await store.embeddings.texts_to_embed([e.message_id])) == {e.message_id: "call <PHONE>"}
    rows = [r async for r in store.privacy.export_rows(tenant, ana, "messages", batch=1)]
    assert [r["content"] for r in rows] == ["call <PHONE>"] and rows[0]["pii_kinds"] == {"PHONE": 1}
    assert len([r async for r in store.privacy.export_rows(tenant, ana, "conversations")]) == 1


async def test_purging_a_reply_past_retention_takes_what_the_sender_kept_of_it(store: PostgresStorage) -> None:
    tenant, ana, wamid = unique("t"), unique("ana"), unique("wamid")
    conv, long_ago = uuid.uuid4(), datetime(1999, 6, 1, tzinfo=UTC)
    question = await said(store, tenant, ana, conv, "an old question", when=long_ago)
    reply = ReplyGenerated(tenant_id=tenant, user_id=ana, conversation_id=conv, message_id=uuid.uuid4(),
                           in_reply_to=question.message_id, text="an old answer", model="m", occurred_at=long_ago)
    await store.turns.record_turn(reply, None)
    part = SendPart(reply.message_id, tenant, ana, conv, 0, 1)
    await store.sends.claim_send(part, 60)
    await store.sends.record_sent(part, wamid)
    await store.deliveries.record_delivery_status(DeliveryStatusChanged(
        tenant_id=tenant, user_id=ana, conversation_id=conv, external_id=wamid, status="delivered",
        occurred_at=long_ago))
    purged = await store.retention.purge_expired(datetime(2000, 1, 1, tzinfo=UTC), 10_000)
    assert {question.message_id, reply.message_id} <= set(purged)
    left = await store.pool.run(lambda c: c.fetchval(
        """SELECT (SELECT count(*) FROM reply_sends WHERE message_id = $1)
                + (SELECT count(*) FROM delivery_statuses WHERE tenant_id = $2)""", reply.message_id, tenant))
    assert left == 0
