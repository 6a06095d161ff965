"""Rate limits of the HTTP edge, over the `limits` library (sliding window counters in process
memory: two counters per key, dropped when their window ends, so memory follows the number of
active callers, not the number of requests). Each limit is a setting; off when unset.

- per client address, every request but health checks (`rate_limit_per_ip`);
- per principal, tenant and subject of a valid token (`rate_limit_per_principal`);
- rejected tokens per address (`rate_limit_failed_auth`, on by default): once over it, the
  address gets 429 before its tokens are even checked;
- failed webhook verifications (wrong verify token, bad signature) per address
  (`rate_limit_webhook_verify`, on by default), likewise.

Answers 429 with Retry-After (seconds until the window lets one more through)."""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from convmem.settings import IngestSettings
from services.ingest.http.errors import ApiError
from services.ingest.principal import Principal


def _items(rate: str | None) -> list[RateLimitItem]:
    return parse_many(rate) if rate else []


class EdgeLimits:
    def __init__(self, settings: IngestSettings) -> None:
        self._limiter = SlidingWindowCounterRateLimiter(MemoryStorage())
        self.per_ip = _items(settings.rate_limit_per_ip)
        self.per_principal = _items(settings.rate_limit_per_principal)
        self.failed_auth = _items(settings.rate_limit_failed_auth)
        self.webhook_verify = _items(settings.rate_limit_webhook_verify)

    async def _refuse(self, item: RateLimitItem, key: tuple[str, ...], what: str) -> None:
        reset = (await self._limiter.get_window_stats(item, *key)).reset_time
        wait = max(1, math.ceil(reset - time.time()))
        raise ApiError(429, "rate_limited", f"too many {what}; retry in {wait} s", headers={"Retry-After": str(wait)})

    async def _hit(self, items: list[RateLimitItem], key: tuple[str, ...], what: str) -> None:
        for item in items:
            if not await self._limiter.hit(item, *key):
                await self._refuse(item, key, what)

    async def _test(self, items: list[RateLimitItem], key: tuple[str, ...], what: str) -> None:
        for item in items:
            if not await self._limiter.test(item, *key):
                await self._refuse(item, key, what)

    async def request_from(self, address: str) -> None:
        await self._hit(self.per_ip, ("ip", address), "requests from this address")

    async def before_auth(self, address: str) -> None:
        await self._test(self.failed_auth, ("auth", address), "rejected tokens from this address")

    async def auth_failed(self, address: str) -> None:
        # The counting itself never refuses: this request already gets its 401.
        for item in self.failed_auth:
            await self._limiter.hit(item, "auth", address)

    async def authenticated(self, who: Principal) -> None:
        await self._hit(self.per_principal, ("principal", who.tenant_id, who.subject), "requests for this token")

    async def before_verify(self, address: str) -> None:
        await self._test(self.webhook_verify, ("verify", address), "failed webhook verifications from this address")

    async def verify_failed(self, address: str) -> None:
        for item in self.webhook_verify:
            await self._limiter.hit(item, "verify", address)
