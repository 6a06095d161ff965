"""What /metrics, /healthz and /readyz answer, for every role: the ingest edge serves them on
its own port, worker-only processes on the ops listener (convmem.ops.listener); both call the
functions here, so the answers are the same wherever they are read.

- readiness: each dependency the process uses (Kafka, Postgres, the vector index) answers
  within a few seconds; one JSON field and one `convmem_ready{check}` per dependency;
- liveness: no consumer is stuck (convmem.ops.liveness);
- metrics: the lag and index size are refreshed (cached, cheap), then everything rendered."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from convmem.ops.lag import LagReader
from convmem.ops.liveness import Consumer, Liveness
from convmem.telemetry import metrics

if TYPE_CHECKING:  # overview reads readiness from here
    from convmem.ops.overview import PipelineWatch

Check = Callable[[], Awaitable[object]]  # raises, times out or returns False: not ready
CHECK_TIMEOUT_S = 3.0


async def readiness(checks: Mapping[str, Check], timeout_s: float = CHECK_TIMEOUT_S) -> dict[str, bool]:
    """Each check's result, run at once; recorded as convmem_ready{check}."""

    async def one(check: Check) -> bool:
        try:
            return await asyncio.wait_for(check(), timeout_s) is not False
        except Exception:
            return False

    results = await asyncio.gather(*(one(c) for c in checks.values()))
    out = dict(zip(checks, results, strict=True))
    for name, ok in out.items():
        metrics.ready(name, ok)
    return out


@dataclass
class Probes:
    checks: Mapping[str, Check]
    consumers: Sequence[Consumer] = ()
    lag: LagReader | None = None
    active_at: Mapping[str, float] = field(default_factory=dict)  # DeliveryPolicy.active_at
    stall_s: float = 300.0
    index_size: Callable[[], Awaitable[int]] | None = None
    # The whole pipeline's groups and dead letters, whichever process consumes: GET /v1/overview.
    pipeline: PipelineWatch | None = None
    _liveness: Liveness | None = None

    async def ready(self) -> dict[str, bool]:
        return await readiness(self.checks)

    async def problems(self) -> list[str]:
        if self._liveness is None:
            self._liveness = Liveness(self.stall_s)
        lag = await self.lag.read() if self.lag is not None and self.consumers else None
        return self._liveness.problems(self.consumers, lag, self.active_at)

    async def scrape(self) -> bytes:
        await self.ready()  # convmem_ready as of this scrape, whether or not anything probes /readyz
        if self.lag is not None:
            await self.lag.read()
        if self.index_size is not None:
            try:
                metrics.vector_points(await asyncio.wait_for(self.index_size(), CHECK_TIMEOUT_S))
            except Exception:  # noqa: S110 - the gauge keeps its last value; readiness reports the index
                pass
        return metrics.render()

    async def close(self) -> None:
        if self.lag is not None:
            await self.lag.close()


async def ready_answer(checks: Mapping[str, Check]) -> tuple[int, dict[str, object]]:
    """/readyz: 200 when every check passed, else 503; the checks by name either way."""
    results = await readiness(checks)
    ok = all(results.values())
    return (200 if ok else 503), {"status": "ready" if ok else "unavailable", "checks": results}


async def live_answer(probes: Probes | None) -> tuple[int, dict[str, object]]:
    """/healthz: 200 while no consumer is stuck, else 503 with the reasons."""
    found = [] if probes is None else await probes.problems()
    if found:
        return 503, {"status": "stuck", "problems": found}
    return 200, {"status": "ok"}
