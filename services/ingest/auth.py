"""Bearer JWT (HS256). Claims: sub (user id), tenant (default `default`), roles."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import jwt

DEFAULT_TENANT = "default"
Role = Literal["user", "service", "admin"]
_ROLES = {"user", "service", "admin"}


class AuthError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class Principal:
    subject: str
    tenant_id: str
    roles: frozenset[str]

    def may_act_for(self, user_id: str) -> bool:
        """A user acts only as itself; a service or admin for any user of its tenant."""
        return user_id == self.subject or bool(self.roles & {"service", "admin"})

    def may_read(self, user_id: str) -> bool:
        return user_id == self.subject or "admin" in self.roles


def authenticate(authorization: str | None, secret: str) -> Principal:
    if not authorization or not authorization.startswith("Bearer "):
        raise AuthError(401, "unauthenticated", "missing bearer token in Authorization header")
    token = authorization.removeprefix("Bearer ").strip()
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["sub"]})
    except jwt.ExpiredSignatureError:
        raise AuthError(401, "token_expired", "the bearer token has expired") from None
    except jwt.InvalidTokenError as exc:
        raise AuthError(401, "invalid_token", f"invalid bearer token: {exc}") from None
    roles = claims.get("roles", ["user"])
    if isinstance(roles, str):
        roles = [roles]
    if not isinstance(roles, list) or not roles or not set(roles) <= _ROLES:
        raise AuthError(401, "invalid_token", "claim 'roles' must be a list of user, service, admin")
    tenant = claims.get("tenant") or DEFAULT_TENANT
    if not isinstance(tenant, str) or not isinstance(claims["sub"], str) or not claims["sub"]:
        raise AuthError(401, "invalid_token", "claims 'sub' and 'tenant' must be strings")
    return Principal(claims["sub"], tenant, frozenset(roles))


def issue_token(secret: str, subject: str, tenant: str = DEFAULT_TENANT, roles: tuple[str, ...] = ("user",),
                ttl_s: int = 3600) -> str:
    """For the demo, benchmarks and tests; production tokens come from the user's identity provider."""
    import time

    now = int(time.time())
    return jwt.encode({"sub": subject, "tenant": tenant, "roles": list(roles), "iat": now, "exp": now + ttl_s},
                      secret, algorithm="HS256")
