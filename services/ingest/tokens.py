"""Checking bearer tokens (JWT): which keys sign them, which claims they must carry, and what a
valid token says about its bearer (a Principal). Plain code over one port (SigningKeys, the
identity provider's published keys); the HTTP layer asks, and maps AuthError to 401.

- HS256 with the shared secret (CONVMEM_JWT_SECRET), and RS256 or ES256 with the key the
  token's `kid` names in the identity provider's JWKS (CONVMEM_JWT_JWKS_URL). A token's `alg`
  picks the key kind, and only that algorithm is accepted with that key, so an HS256 token can
  never be checked against a public key.
- `exp` and `sub` are required; `iss` and `aud` when configured. A token may live at most
  `max_lifetime_s` (from `iat`, or from now when it has none).
- Claims are strict: `exp`, `iat` and `nbf` numbers (PyJWT takes `"exp": "9999999999"`, as
  `int()` would), `sub` a storable id, `tenant` (default `default`) in tenant syntax,
  `roles` (default ["user"]) a non-empty list of user, service, admin.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import jwt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contracts.values import TenantId, UserId
from convmem.ports import SigningKeys
from services.ingest.principal import DEFAULT_TENANT, AuthError, Principal

HS256, ASYMMETRIC = "HS256", ("RS256", "ES256")
# Longer than any real token; bounds the work an unauthenticated request can ask for.
MAX_TOKEN_CHARS = 8192


@dataclass(frozen=True)
class TokenPolicy:
    secret: str | None = field(default=None, repr=False)  # HS256; None: HS256 tokens are refused
    issuer: str | None = None
    audience: str | None = None
    max_lifetime_s: int = 86_400
    leeway_s: int = 30


class Claims(BaseModel):
    """What convmem reads from a verified token. Strict: "admin" is not ["admin"]."""

    model_config = ConfigDict(strict=True, extra="ignore")

    sub: UserId
    tenant: TenantId | None = None
    roles: list[Literal["user", "service", "admin"]] = Field(default=["user"], min_length=1, max_length=3)


def invalid(message: str) -> AuthError:
    return AuthError(401, "invalid_token", message)


def bearer_token(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError(401, "unauthenticated", "missing bearer token in Authorization header")
    token = token.strip()
    if len(token) > MAX_TOKEN_CHARS:
        raise invalid(f"bearer token longer than {MAX_TOKEN_CHARS} characters")
    return token


def principal_of(claims: dict[str, Any]) -> Principal:
    try:
        read = Claims.model_validate(claims)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "claims"
        raise invalid(f"claim '{where}': {first['msg']}") from None
    return Principal(read.sub, read.tenant or DEFAULT_TENANT, frozenset(read.roles))


class TokenVerifier:
    def __init__(self, policy: TokenPolicy, keys: SigningKeys | None = None) -> None:
        self._policy, self._keys = policy, keys

    async def principal(self, authorization: str | None) -> Principal:
        return principal_of(await self.claims(authorization))

    async def claims(self, authorization: str | None) -> dict[str, Any]:
        """The verified claims of the bearer token (principal_of reads who it names); the
        console keeps a session until the token's `exp`."""
        token = bearer_token(authorization)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise invalid(f"invalid bearer token: {exc}") from None
        alg, kid = header.get("alg"), header.get("kid")  # PyJWT checked that a kid is a string
        key = await self._key(alg, kid)
        p = self._policy
        required = ["exp", "sub", *(["iss"] if p.issuer else []), *(["aud"] if p.audience else [])]
        try:
            claims: dict[str, Any] = jwt.decode(token, key, algorithms=[str(alg)], issuer=p.issuer,
                                                audience=p.audience, leeway=p.leeway_s,
                                                options={"require": required})
        except jwt.ExpiredSignatureError:
            raise AuthError(401, "token_expired", "the bearer token has expired") from None
        except jwt.InvalidTokenError as exc:
            raise invalid(f"invalid bearer token: {exc}") from None
        _check_times(claims)
        self._check_lifetime(claims)
        return claims

    async def _key(self, alg: object, kid: str | None) -> Any:
        if alg == HS256 and self._policy.secret is not None:
            return self._policy.secret
        if alg in ASYMMETRIC and self._keys is not None:
            try:
                return await self._keys.key(kid)
            except LookupError:
                raise invalid("the token's signing key (kid) is not published by the identity provider") from None
        accepted = ([HS256] if self._policy.secret is not None else []) + (list(ASYMMETRIC) if self._keys else [])
        raise invalid(f"token algorithm must be one of {', '.join(accepted)}")

    def _check_lifetime(self, claims: dict[str, Any]) -> None:
        # _check_times has checked that exp (and iat, when present) are numbers.
        issued = claims.get("iat")
        start = issued if issued is not None else time.time()
        if float(claims["exp"]) - float(start) > self._policy.max_lifetime_s + self._policy.leeway_s:
            raise invalid(f"token lifetime exceeds the {self._policy.max_lifetime_s} s this service accepts")


TIME_CLAIMS = ("exp", "iat", "nbf")


def _check_times(claims: dict[str, Any]) -> None:
    """RFC 7519's NumericDate: a JSON number. PyJWT compares `int(value)`, so a string that
    looks like a number would pass its checks."""
    for name in TIME_CLAIMS:
        value = claims.get(name)
        if name in claims and (isinstance(value, bool) or not isinstance(value, int | float)
                               or not math.isfinite(value)):
            raise invalid(f"claim '{name}': must be a number (seconds since the epoch)")
