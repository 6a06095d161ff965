"""SigningKeys over an identity provider's JWKS URL (PyJWT's PyJWKClient fetches and parses).

Cached and rotated: the key set is fetched once, again after `cache_s`, and again when a token
names a key id it does not hold (the provider rotated) but at most every `min_refresh_s`, so
tokens with made-up key ids cannot make us hammer the provider. Fetching runs in a thread
(PyJWKClient is blocking) and never more than one at a time. When the provider cannot be
reached the keys already held keep working."""

from __future__ import annotations

import asyncio
import time

import jwt
import structlog

from convmem.errors import RetryableError

log = structlog.get_logger("convmem.jwks")


class JwksSigningKeys:
    def __init__(self, url: str, cache_s: float = 600.0, min_refresh_s: float = 10.0, timeout_s: float = 5.0) -> None:
        # PyJWKClient's own cache is off: this class decides when to fetch.
        self._client = jwt.PyJWKClient(url, cache_jwk_set=False, cache_keys=False, timeout=timeout_s)
        self._cache_s, self._min_refresh_s = cache_s, min_refresh_s
        self._keys: dict[str | None, object] = {}
        self._fetched_at = float("-inf")  # last successful fetch
        self._tried_at = float("-inf")  # last attempt, successful or not
        self._lock = asyncio.Lock()

    async def key(self, kid: str | None) -> object:
        now = time.monotonic()
        wanted = now - self._fetched_at > self._cache_s or kid not in self._keys
        # With no keys yet, wait for the fetch another request may have started.
        if (wanted and now - self._tried_at > self._min_refresh_s) or not self._keys:
            await self._refresh()
        if kid in self._keys:
            return self._keys[kid]
        if kid is None and len(self._keys) == 1:  # a provider with one key may leave kid out
            return next(iter(self._keys.values()))
        if not self._keys:
            raise RetryableError("the identity provider's keys cannot be fetched")
        raise LookupError(kid)

    async def _refresh(self) -> None:
        async with self._lock:
            if time.monotonic() - self._tried_at <= self._min_refresh_s:
                return  # another request refreshed while this one waited
            self._tried_at = time.monotonic()
            try:
                jwk_set = await asyncio.to_thread(self._client.get_jwk_set)
            except (jwt.PyJWKClientError, jwt.PyJWKSetError) as exc:
                log.warning("jwks_fetch_failed", error=type(exc).__name__)
                return  # the keys already held keep working; tried again after min_refresh_s
            keys: dict[str | None, object] = {}
            for jwk in jwk_set.keys:
                if jwk.public_key_use in (None, "sig"):
                    keys[jwk.key_id] = jwk.key
            self._keys, self._fetched_at = keys, time.monotonic()
            log.info("jwks_fetched", keys=len(keys))
