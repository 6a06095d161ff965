"""MessageLookup: a producer's idempotency key (external id) is known per tenant."""

from __future__ import annotations

import uuid

from convmem.ports import Storage
from tests.integration.support import answer, said, unique


async def test_external_ids_are_found_within_their_tenant_only(storage: Storage) -> None:
    tenant, ana, conv = unique("t"), unique("ana"), uuid.uuid4()
    first, second = said(tenant, ana, conv, "one", ext=unique("e")), said(tenant, ana, conv, "two", ext=unique("e"))
    for e in (first, second, answer(first)):
        await storage.turns.record_turn(e)
    assert first.external_id is not None and second.external_id is not None
    assert await storage.lookup.message_ref(tenant, first.external_id) == (first.message_id, conv)
    assert await storage.lookup.message_ref(unique("t"), first.external_id) is None
    assert await storage.lookup.message_ref(tenant, unique("e")) is None
    assert await storage.lookup.known_external_ids(tenant, [first.external_id, second.external_id, "nope"]) == {
        first.external_id, second.external_id}
    assert await storage.lookup.known_external_ids(unique("t"), [first.external_id]) == set()
    assert await storage.lookup.known_external_ids(tenant, []) == set()
