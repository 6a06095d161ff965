"""The WhatsAppApi port over Meta's Graph API (WhatsApp Cloud API), with httpx.

`POST {base}/{phone_number_id}/messages` with a bearer token sends a text; the answer holds
the message's id (wamid). Errors are classified by the Graph API's `error.code`, as Meta
asks, and by HTTP status when there is no code:
- not sent, retry later: 429 and 5xx, throughput and transient codes, no connection;
- refused for good: the recipient, the 24-hour window, the request, the token;
- may have been sent: the request went out and no answer came back (a read timeout, a
  dropped connection). Meta has no idempotency key, so that one is never sent again.
Each call is counted by that outcome (sent, retried, failed, unknown) and timed."""

from __future__ import annotations

import time
from typing import Any

import httpx

from convmem.errors import RetryableError, SendOutcomeUnknown, SendRejected
from convmem.ports import OutgoingText, WhatsAppApi
from convmem.telemetry import metrics

DEFAULT_BASE_URL = "https://graph.facebook.com/v23.0"
# Meta's codes for "not now": throughput (130429, 80007, 4), too many messages to one user
# in a short time (131056), transient and unknown server-side conditions (131000, 1, 2).
RETRY_LATER = frozenset({1, 2, 4, 80007, 130429, 131000, 131056})
# Never: undeliverable (131026), the 24-hour customer-service window is closed (131047),
# a bad request (100, 131008), an invalid or expired token (190). Other codes go by status.
FINAL = frozenset({100, 190, 131008, 131026, 131047})


class GraphWhatsAppApi(WhatsAppApi):
    def __init__(self, base_url: str, access_token: str, timeout_s: float = 10.0, max_connections: int = 32) -> None:
        # Retries belong to the delivery policy (one place): the client makes none itself.
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), headers={"Authorization": f"Bearer {access_token}"},
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections))

    async def close(self) -> None:
        await self._client.aclose()

    async def send_text(self, message: OutgoingText) -> str:
        started = time.perf_counter()
        try:
            wamid = await self._send(message)
        except RetryableError:
            metrics.send("retried", time.perf_counter() - started)
            raise
        except SendRejected:
            metrics.send("failed", time.perf_counter() - started)
            raise
        except BaseException:  # no answer, an answer without an id, or the caller gave up waiting
            metrics.send("unknown", time.perf_counter() - started)
            raise
        metrics.send("sent", time.perf_counter() - started)
        return wamid

    async def _send(self, message: OutgoingText) -> str:
        body = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": message.to, "type": "text",
                "text": {"preview_url": False, "body": message.body},
                "biz_opaque_callback_data": message.callback_data}
        try:
            resp = await self._client.post(f"/{message.phone_number_id}/messages", json=body)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise RetryableError(f"whatsapp api unreachable: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:  # written, then no answer: Meta may have it
            raise SendOutcomeUnknown(f"no answer from the whatsapp api: {type(exc).__name__}") from exc
        if resp.is_success:
            return _wamid(resp)
        code, detail = _error(resp)
        later = code in RETRY_LATER or (code not in FINAL and (resp.status_code == 429 or resp.status_code >= 500))
        if later:
            raise RetryableError(f"whatsapp api: not now (HTTP {resp.status_code}, code {code}): {detail}")
        raise SendRejected(resp.status_code if code is None else code, detail)


def _wamid(resp: httpx.Response) -> str:
    try:
        found: Any = resp.json()["messages"][0]["id"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise SendOutcomeUnknown(f"whatsapp api accepted the message without an id (HTTP {resp.status_code})") from exc
    if not isinstance(found, str) or not found:
        raise SendOutcomeUnknown("whatsapp api accepted the message without an id")
    return found


def _error(resp: httpx.Response) -> tuple[int | None, str]:
    """(Graph API error code, a short description) of a refused request."""
    try:
        error = resp.json().get("error") or {}
    except ValueError:
        return None, f"HTTP {resp.status_code}"
    code = error.get("code")
    details = (error.get("error_data") or {}).get("details") if isinstance(error.get("error_data"), dict) else None
    text = str(details or error.get("message") or f"HTTP {resp.status_code}")[:300]
    return (code if isinstance(code, int) else None), text
