"""TenantPolicies: a tenant's own settings round-trip; unset fields stay unset."""

from __future__ import annotations

from convmem.ports import Storage, TenantPolicy
from tests.integration.support import unique


async def test_a_tenant_policy_round_trips_and_is_replaced_whole(storage: Storage) -> None:
    tenant = unique("t")
    assert await storage.policies.tenant_policy(tenant) is None
    policy = TenantPolicy(tenant, "immediate", 0, "GB", 30, None)
    assert await storage.policies.set_tenant_policy(policy) == policy
    assert await storage.policies.tenant_policy(tenant) == policy
    replaced = TenantPolicy(tenant, "delayed", 12, None, None, 400)
    assert await storage.policies.set_tenant_policy(replaced) == replaced
    assert await storage.policies.tenant_policy(tenant) == replaced
    assert await storage.policies.tenant_policy(unique("t")) is None
