"""Reading convmem's events from outside convmem: the client a downstream consumer uses.

Events that carry text (ReplyGenerated on conv.replies.v1, and MessageReceived,
TurnRecorded, ReplyTokensGenerated, MessageAmended, and their dead-letter copies) carry it sealed with the
user's data key. An EventOpener fetches that key from convmem's key endpoint
(`GET /v1/keys/{key_id}`, a `service` token of the tenant), caches it for as long as the
endpoint's Cache-Control allows, and opens the event. Once the user is erased the endpoint
answers 410 and `open` returns None: nothing of that user can be read again.

    async with EventOpener("https://convmem.example", service_token) as opener:
        reply = await opener.open(ReplyGenerated.model_validate_json(record.value))
"""

from __future__ import annotations

import base64
import re
import time
from types import TracebackType
from typing import Any
from uuid import UUID

import httpx
from pydantic import BaseModel

from contracts import MessageAmended, MessageReceived, ReplyGenerated, ReplyTokensGenerated, TurnRecorded, topics
from convmem.privacy.sealing import E, open_with

# The contract of each topic that carries sealed text, for `read`.
CONTRACTS: dict[str, type[BaseModel]] = {topics.INBOUND: MessageReceived, topics.TURNS: TurnRecorded,
                                         topics.REPLIES: ReplyGenerated, topics.TOKENS: ReplyTokensGenerated,
                                         topics.AMENDMENTS: MessageAmended}
_MAX_AGE = re.compile(r"max-age=(\d+)")


class KeyUnavailable(Exception):
    """The key endpoint would not serve a key (not a service token of its tenant, no such
    key, or convmem unreachable): nothing was decided about the event; try again later."""


class EventOpener:
    def __init__(self, base_url: str, service_token: str, *, timeout_s: float = 10.0,
                 client: httpx.AsyncClient | None = None) -> None:
        self._client = client or httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout_s)
        self._own_client = client is None
        self._headers = {"Authorization": f"Bearer {service_token}"}
        self._keys: dict[UUID, tuple[float, bytes | None]] = {}  # key id -> (expires, secret or None: erased)

    async def __aenter__(self) -> EventOpener:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own_client:
            await self._client.aclose()

    async def open(self, event: E) -> E | None:
        """The event with its text and metadata readable, or None when its user was erased."""
        if event.sealed is None:
            return event
        secret = await self._key(event.sealed.key_id)
        return None if secret is None else open_with(event, secret)

    async def read(self, topic: str, value: bytes) -> Any:
        """Decode a record of one of convmem's topics (or its .dlq) and open it; None when
        its user was erased."""
        model: Any = CONTRACTS.get(topic.removesuffix(topics.DLQ_SUFFIX))
        if model is None:
            raise ValueError(f"{topic} carries no sealed text: decode it with its contract directly")
        return await self.open(model.model_validate_json(value))

    async def _key(self, key_id: UUID) -> bytes | None:
        now = time.monotonic()
        cached = self._keys.get(key_id)
        if cached is not None and (cached[0] > now or cached[1] is None):
            return cached[1]  # an erased key never comes back: remembered for good
        try:
            resp = await self._client.get(f"/v1/keys/{key_id}", headers=self._headers)
        except httpx.HTTPError as exc:
            raise KeyUnavailable(f"key endpoint unreachable: {type(exc).__name__}") from exc
        if resp.status_code == 410:
            self._keys[key_id] = (now, None)
            return None
        if resp.status_code != 200:
            raise KeyUnavailable(f"key endpoint answered {resp.status_code}: {resp.text[:200]}")
        found = _MAX_AGE.search(resp.headers.get("cache-control", ""))
        secret = base64.b64decode(resp.json()["key"])
        self._keys[key_id] = (now + (int(found[1]) if found else 0), secret)
        return secret
