"""SendLedger: a reply part is claimed by one sender, settled once, and a claim left behind
by a stopped sender becomes "unknown" after its lease, never claimable again."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from contracts import DeliveryStatusChanged, identity
from convmem.ports import SendPart, Storage
from tests.integration.support import unique


def part_of(tenant: str, reply_id: uuid.UUID | None = None, part: int = 0, parts: int = 1) -> SendPart:
    return SendPart(reply_id or uuid.uuid4(), tenant, "ana", uuid.uuid4(), part, parts)


async def test_the_first_claim_is_the_only_one_and_settled_parts_stay_settled(storage: Storage) -> None:
    p = part_of(unique("t"))
    claims = await asyncio.gather(*(storage.sends.claim_send(p, 60) for _ in range(5)))
    assert sorted(claims) == ["busy"] * 4 + ["claimed"]
    await storage.sends.record_sent(p, "wamid.1")
    await storage.sends.record_failed(p, 131026, "too late")  # a settled part does not change
    assert await storage.sends.claim_send(p, 60) == "sent"
    [found] = (await storage.deliveries.deliveries(p.tenant_id, [p.reply_id]))[p.reply_id].parts
    assert (found.state, found.wamid, found.error_code) == ("sent", "wamid.1", None)


async def test_a_part_given_back_is_claimed_again_and_a_refusal_is_kept(storage: Storage) -> None:
    p = part_of(unique("t"))
    assert await storage.sends.claim_send(p, 60) == "claimed"
    await storage.sends.release_send(p, "HTTP 429")
    assert await storage.sends.claim_send(p, 60) == "claimed"
    await storage.sends.record_failed(p, 131047, "24-hour window closed")
    assert await storage.sends.claim_send(p, 60) == "failed"
    delivery = (await storage.deliveries.deliveries(p.tenant_id, [p.reply_id]))[p.reply_id]
    assert (delivery.state, delivery.error, delivery.parts[0].error_code) == ("failed", "24-hour window closed",
                                                                              131047)


async def test_an_expired_claim_becomes_unknown_and_a_status_settles_it(storage: Storage) -> None:
    tenant = unique("t")
    p = part_of(tenant, part=1, parts=2)
    assert await storage.sends.claim_send(p, 60) == "claimed"
    await asyncio.sleep(0.05)
    assert await storage.sends.claim_send(p, 0.01) == "unknown"  # its sender stopped mid-request
    assert await storage.sends.claim_send(p, 0.01) == "unknown"  # and stays so: never sent twice
    status = DeliveryStatusChanged(tenant_id=tenant, user_id="ana", conversation_id=p.conversation_id,
                                   external_id="wamid.late", status="delivered", occurred_at=datetime.now(UTC),
                                   callback_data=identity.send_ref(p.reply_id, 1))
    await storage.deliveries.record_delivery_status(status)  # Meta had it after all
    [found] = (await storage.deliveries.deliveries(tenant, [p.reply_id]))[p.reply_id].parts
    assert (found.part, found.state, found.wamid, set(found.statuses)) == (1, "sent", "wamid.late", {"delivered"})
    assert (await storage.deliveries.deliveries(unique("t"), [p.reply_id])) == {}  # other tenants see nothing


async def test_statuses_attach_to_the_parts_they_report_on(storage: Storage) -> None:
    tenant = unique("t")
    reply_id = uuid.uuid4()
    first, second = part_of(tenant, reply_id, 0, 2), part_of(tenant, reply_id, 1, 2)
    for p, wamid in ((first, "wamid.a"), (second, "wamid.b")):
        assert await storage.sends.claim_send(p, 60) == "claimed"
        await storage.sends.record_sent(p, wamid)
    for wamid, status in (("wamid.a", "read"), ("wamid.a", "delivered"), ("wamid.b", "delivered"),
                          ("wamid.a", "sent"), ("wamid.b", "sent")):
        await storage.deliveries.record_delivery_status(DeliveryStatusChanged(
            tenant_id=tenant, user_id="ana", conversation_id=first.conversation_id, external_id=wamid,
            status=status, occurred_at=datetime.now(UTC)))  # type: ignore[arg-type]
    delivery = (await storage.deliveries.deliveries(tenant, [reply_id, uuid.uuid4()]))[reply_id]
    assert [p.part for p in delivery.parts] == [0, 1]
    assert (delivery.state, delivery.status) == ("sent", "delivered")  # read only when all of it was


async def test_a_skipped_reply_says_why(storage: Storage) -> None:
    p = part_of(unique("t"))
    await storage.sends.record_skipped(p, "offline mode")
    await storage.sends.record_skipped(p, "again")  # the first reason stays
    assert await storage.sends.claim_send(p, 60) == "skipped"
    delivery = (await storage.deliveries.deliveries(p.tenant_id, [p.reply_id]))[p.reply_id]
    assert (delivery.state, delivery.error) == ("skipped", "offline mode")
