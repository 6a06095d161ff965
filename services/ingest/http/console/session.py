"""Signing in to the console: the page posts a token the API would take (checked by the
API's own verifier, rate limits included), and gets a session cookie in exchange: HttpOnly,
SameSite=Strict, Secure except over plain http on this machine. The session is stored in
Postgres under the cookie's SHA-256, so it survives a restart and works on every ingest
process; it ends when the token would have expired, at the latest. Forms that change data
carry the session's CSRF token, and a POST from another origin is refused outright. The
token itself is never stored, logged or put in a URL."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated
from urllib.parse import parse_qs, urlsplit

import structlog
from fastapi import Depends, Request

from convmem.ports.console import ConsoleAction, ConsoleLedger, ConsoleSession
from services.ingest.http.deps import client_address, edge_of
from services.ingest.principal import AuthError, Principal, Refused
from services.ingest.tokens import principal_of

log = structlog.get_logger("convmem.console")

COOKIE = "convmem_console"
MAX_SESSION = timedelta(hours=12)  # even a token that lives longer signs in for at most this long
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
MAX_FORM_BYTES = 16_384


class SignInNeeded(Exception):
    """No live session: the page answers with the sign-in form (a redirect)."""


@dataclass(frozen=True)
class Viewer:
    """Who is looking: the principal the token named, and the session (its CSRF token)."""

    who: Principal
    session: ConsoleSession

    @property
    def csrf(self) -> str:
        return self.session.csrf

    @property
    def is_admin(self) -> bool:
        return self.who.is_admin


def ledger_of(request: Request) -> ConsoleLedger:
    found = edge_of(request).ports().console
    if found is None:
        raise Refused(503, "unavailable", "the console is not served by this node")
    return found


def token_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def secure_cookie(request: Request) -> bool:
    """Secure always, except plain http to this machine (a developer's laptop)."""
    return request.url.scheme == "https" or (request.url.hostname or "") not in LOOPBACK


async def form(request: Request) -> dict[str, str]:
    """An urlencoded form's fields (first value of each); a POST from another origin is
    refused before anything is read (the browser names the origin of every POST)."""
    origin = request.headers.get("origin")  # "null" (a sandboxed or file page) matches no host
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host", ""):
        raise Refused(403, "cross_origin", "this form must be posted from the console's own pages")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise Refused(422, "invalid_request", "form too large")
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True, max_num_fields=50)
    return {k: v[0] for k, v in fields.items()}


async def changing(request: Request, viewer: Viewer) -> dict[str, str]:
    """The form of an action that changes data, once its CSRF token matched the session's."""
    fields = await form(request)
    if not hmac.compare_digest(fields.get("csrf", "").encode(), viewer.csrf.encode()):
        raise Refused(403, "csrf", "this form is stale or was not sent by the console; reload the page")
    return fields


async def sign_in(request: Request, token: str) -> tuple[str, ConsoleSession]:
    """Check the token as the API would and open a session; the cookie's value and the
    session. AuthError for a token the API would refuse, Refused for one that cannot read."""
    edge = edge_of(request)
    address = client_address(request)
    await edge.limits.before_auth(address)
    try:
        claims = await edge.tokens.claims(f"Bearer {token.strip()}")
        who = principal_of(claims)
    except AuthError:
        await edge.limits.auth_failed(address)
        raise
    if not who.roles & {"admin", "user"}:
        raise Refused(403, "forbidden", "a service token reads nothing: sign in with a user or admin token")
    now = datetime.now(UTC)
    expires = min(datetime.fromtimestamp(float(claims["exp"]), UTC), now + MAX_SESSION)
    value = secrets.token_urlsafe(32)
    session = ConsoleSession(token_hash(value), who.tenant_id, who.subject, who.roles, secrets.token_urlsafe(32),
                             now, expires)
    ledger = ledger_of(request)
    await ledger.open_session(session)
    await ledger.record_action(ConsoleAction(who.tenant_id, who.subject, "sign_in", who.subject, now,
                                             {"roles": sorted(who.roles)}))
    log.info("console_signed_in", roles=sorted(who.roles))
    return value, session


async def current(request: Request) -> Viewer:
    value = request.cookies.get(COOKIE)
    if not value:
        raise SignInNeeded
    session = await ledger_of(request).session(token_hash(value), datetime.now(UTC))
    if session is None:
        raise SignInNeeded
    return Viewer(Principal(session.subject, session.tenant_id, session.roles), session)


async def current_admin(request: Request) -> Viewer:
    viewer = await current(request)
    if not viewer.is_admin:
        raise Refused(403, "forbidden", "this page is for admins of the tenant; your own data is under My data")
    return viewer


async def sign_out(request: Request) -> None:
    value = request.cookies.get(COOKIE)
    if value:
        await ledger_of(request).close_session(token_hash(value))


Signed = Annotated[Viewer, Depends(current)]
Admin = Annotated[Viewer, Depends(current_admin)]
