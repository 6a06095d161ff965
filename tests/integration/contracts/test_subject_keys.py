"""SubjectKeys: one data key per user, the same until the user is erased, gone after."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from convmem.ports import Storage
from tests.integration.support import unique


async def test_a_subjects_key_is_stable_until_erasure_and_gone_after(storage: Storage) -> None:
    tenant, ana, ben = unique("t"), unique("ana"), unique("ben")
    key_id, secret = await storage.keys.subject_key(tenant, ana)
    assert len(secret) == 32
    assert await storage.keys.subject_key(tenant, ana) == (key_id, secret)
    assert await storage.keys.key_by_id(key_id) == secret
    ben_key = await storage.keys.subject_key(tenant, ben)
    assert ben_key[0] != key_id and ben_key[1] != secret
    assert (await storage.keys.subject_key(unique("t"), ana))[0] != key_id  # same name, other tenant
    assert await storage.keys.key_by_id(uuid.uuid4()) is None

    request = await storage.privacy.request_erasure(uuid.uuid4(), tenant, ana, ana, datetime.now(UTC))
    await storage.privacy.erase_subject(request.request_id, tenant, ana)
    assert await storage.keys.key_by_id(key_id) is None  # shredded: sealed events cannot be opened
    fresh_id, fresh = await storage.keys.subject_key(tenant, ana)  # a returning user starts afresh
    assert fresh_id != key_id and fresh != secret and await storage.keys.key_by_id(fresh_id) == fresh
    assert await storage.keys.subject_key(tenant, ben) == ben_key  # nobody else's key changed


async def test_a_key_is_disclosed_only_within_its_tenant_and_not_after_erasure(storage: Storage) -> None:
    tenant, ana = unique("t"), unique("ana")
    key_id, secret = await storage.keys.subject_key(tenant, ana)
    found = await storage.keys.disclose_key(key_id, tenant, "analytics")
    assert found is not None and (found.tenant_id, found.user_id, found.secret) == (tenant, ana, secret)
    assert await storage.keys.disclose_key(key_id, unique("t"), "analytics") is None  # another tenant's key
    assert await storage.keys.disclose_key(uuid.uuid4(), tenant, "analytics") is None

    request = await storage.privacy.request_erasure(uuid.uuid4(), tenant, ana, ana, datetime.now(UTC))
    await storage.privacy.erase_subject(request.request_id, tenant, ana)
    gone = await storage.keys.disclose_key(key_id, tenant, "analytics")
    assert gone is not None and gone.secret is None  # known, and shredded
