"""TenantPolicies over Postgres: a tenant's own PII and retention settings."""

from __future__ import annotations

from convmem.adapters.postgres.pool import PgPool
from convmem.ports import TenantPolicies, TenantPolicy


class PgTenantPolicies(TenantPolicies):
    def __init__(self, pool: PgPool) -> None:
        self._pool = pool

    async def tenant_policy(self, tenant_id: str) -> TenantPolicy | None:
        row = await self._pool.run(lambda c: c.fetchrow(
            """SELECT tenant_id, pii_mode, pii_delay_hours, phone_region, message_retention_days,
                      summary_retention_days FROM tenant_policies WHERE tenant_id = $1""", tenant_id))
        return None if row is None else TenantPolicy(**dict(row))

    async def set_tenant_policy(self, policy: TenantPolicy) -> TenantPolicy:
        row = await self._pool.run(lambda c: c.fetchrow(
            """INSERT INTO tenant_policies (tenant_id, pii_mode, pii_delay_hours, phone_region,
                                            message_retention_days, summary_retention_days)
               VALUES ($1, $2, $3, $4, $5, $6)
               ON CONFLICT (tenant_id) DO UPDATE SET pii_mode = excluded.pii_mode,
                   pii_delay_hours = excluded.pii_delay_hours, phone_region = excluded.phone_region,
                   message_retention_days = excluded.message_retention_days,
                   summary_retention_days = excluded.summary_retention_days, updated_at = now()
               RETURNING tenant_id, pii_mode, pii_delay_hours, phone_region, message_retention_days,
                         summary_retention_days""",
            policy.tenant_id, policy.pii_mode, policy.pii_delay_hours, policy.phone_region,
            policy.message_retention_days, policy.summary_retention_days))
        return TenantPolicy(**dict(row))
