"""GET /v1/overview: what the console's overview shows an admin. The pipeline's state
(readiness, lag and oldest pending record per consumer group, dead-letter counts: the same
for every tenant, counts only) and the tenant's turns recorded per minute over the last hour."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from convmem.ops.overview import PipelineWatch
from services.ingest.analytics import turns_per_minute
from services.ingest.http.deps import Caller, EdgeOf, Ports, PortsProvider
from services.ingest.http.errors import ERRORS, unavailable
from services.ingest.http.ops import readiness_checks

router = APIRouter(tags=["analytics"])


class GroupLagView(BaseModel):
    group: str
    topic: str
    lag: int = Field(description="records written and not yet handled")
    oldest_pending_at: datetime | None = Field(description="when the oldest of them was written")
    partitions: int
    committed: bool = Field(description="false: the group never committed an offset")


class MinuteView(BaseModel):
    minute: datetime
    total: int
    by_role: dict[str, int]


class OverviewView(BaseModel):
    checked_at: datetime
    ready: dict[str, bool] = Field(description="each dependency of this process: kafka, postgres, vector_index")
    consumer_groups: list[GroupLagView]
    dead_letters: dict[str, int] = Field(description="records each dead-letter topic holds")
    kafka_error: str | None = Field(description="set when lag and dead letters could not be read")
    turns_per_minute: list[MinuteView] = Field(description="the tenant's turns recorded in each of the last 60 minutes")


@router.get("/v1/overview", response_model=OverviewView, responses=ERRORS)
async def overview(edge: EdgeOf, ports: Ports, provider: PortsProvider, caller: Caller) -> OverviewView:
    """The pipeline at a glance, for an admin of a tenant."""
    who = await caller.admin()
    if ports.analytics is None:
        raise unavailable("the overview")
    watch = edge.probes.pipeline if edge.probes is not None else None
    if watch is None:  # an edge without the process's probes (its own tests): no groups to follow
        watch = PipelineWatch(edge.settings.kafka_bootstrap, ())
    pipeline = await watch.read(readiness_checks(edge, provider))
    minutes = await turns_per_minute(ports.analytics, who, now=datetime.now(UTC))
    return OverviewView(
        checked_at=pipeline.checked_at, ready=pipeline.ready, kafka_error=pipeline.kafka_error,
        consumer_groups=[GroupLagView(group=g.group, topic=g.topic, lag=g.lag, oldest_pending_at=g.oldest_pending_at,
                                      partitions=g.partitions, committed=g.committed)
                         for g in pipeline.consumer_groups],
        dead_letters=pipeline.dead_letters, turns_per_minute=[MinuteView.model_validate(m) for m in minutes])
