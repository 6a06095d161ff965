"""The tenant's own privacy and retention policy (admins only)."""

from __future__ import annotations

import structlog
from fastapi import APIRouter

from convmem.ports import TenantPolicy
from services.ingest.http.deps import Caller, Ports
from services.ingest.http.errors import ERRORS
from services.ingest.schemas import TenantPolicyView

log = structlog.get_logger("convmem.ingest")
router = APIRouter(tags=["privacy"])


@router.get("/v1/tenant/policy", response_model=TenantPolicyView, responses=ERRORS)
async def get_policy(ports: Ports, caller: Caller) -> TenantPolicyView:
    who = await caller.admin()
    own = await ports.policies.tenant_policy(who.tenant_id)
    return TenantPolicyView.of(own or TenantPolicy(who.tenant_id))


@router.put("/v1/tenant/policy", response_model=TenantPolicyView, responses=ERRORS)
async def put_policy(body: TenantPolicyView, ports: Ports, caller: Caller) -> TenantPolicyView:
    who = await caller.admin()
    saved = await ports.policies.set_tenant_policy(TenantPolicy(
        who.tenant_id, body.pii_mode, body.pii_delay_hours, body.phone_region, body.message_retention_days,
        body.summary_retention_days))
    log.info("tenant_policy_set")
    return TenantPolicyView.of(saved)
