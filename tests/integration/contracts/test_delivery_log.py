"""DeliveryLog: a channel reports a message's states at least once and out of order."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from contracts import DeliveryStatusChanged
from convmem.ports import Storage
from tests.integration.support import unique


async def test_a_reported_state_may_arrive_again_and_out_of_order(storage: Storage) -> None:
    tenant, wamid, now = unique("t"), unique("wamid"), datetime.now(UTC)

    def state(status: str, when: datetime) -> DeliveryStatusChanged:
        return DeliveryStatusChanged.model_validate(
            {"tenant_id": tenant, "user_id": "ana", "conversation_id": uuid.uuid4(), "external_id": wamid,
             "status": status, "occurred_at": when})

    read, delivered = state("read", now), state("delivered", now - timedelta(seconds=5))
    await storage.deliveries.record_delivery_status(read)
    await storage.deliveries.record_delivery_status(delivered)
    await storage.deliveries.record_delivery_status(read)  # a redelivery is not an error
    await storage.deliveries.record_delivery_status(state("read", now + timedelta(seconds=1)))  # nor a repeat
