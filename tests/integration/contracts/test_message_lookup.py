"""MessageLookup: a producer's idempotency key (external id) is known per tenant and user."""

from __future__ import annotations

import uuid

from convmem.ports import Storage
from tests.integration.support import answer, said, unique


async def test_external_ids_are_found_within_their_tenant_and_user_only(storage: Storage) -> None:
    tenant, ana, ben, conv = unique("t"), unique("ana"), unique("ben"), uuid.uuid4()
    first, second = said(tenant, ana, conv, "one", ext=unique("e")), said(tenant, ana, conv, "two", ext=unique("e"))
    for e in (first, second, answer(first)):
        await storage.turns.record_turn(e)
    assert first.external_id is not None and second.external_id is not None
    assert await storage.lookup.message_ref(tenant, ana, first.external_id) == (first.message_id, conv)
    assert await storage.lookup.message_ref(unique("t"), ana, first.external_id) is None
    assert await storage.lookup.message_ref(tenant, ben, first.external_id) is None  # ben's key is his own
    assert await storage.lookup.message_ref(tenant, ana, unique("e")) is None
    keys = [(ana, first.external_id), (ana, second.external_id), (ana, "nope"), (ben, first.external_id)]
    assert await storage.lookup.known_external_ids(tenant, keys) == {(ana, first.external_id),
                                                                    (ana, second.external_id)}
    assert await storage.lookup.known_external_ids(unique("t"), [(ana, first.external_id)]) == set()
    assert await storage.lookup.known_external_ids(tenant, []) == set()
