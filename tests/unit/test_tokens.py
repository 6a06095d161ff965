"""Bearer tokens (services.ingest.tokens): which keys, which claims, how strictly."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from services.ingest.principal import AuthError, Principal
from services.ingest.tokens import MAX_TOKEN_CHARS, TokenPolicy, TokenVerifier
from tests.fake_idp import AUDIENCE, ISSUER, FakeIdP
from tests.fakes import FakeSigningKeys

SECRET = "unit-secret-0123456789-0123456789-abc"
HS = TokenVerifier(TokenPolicy(secret=SECRET, max_lifetime_s=3600))


def hs(secret: str = SECRET, headers: dict[str, Any] | None = None, **claims: Any) -> str:
    now = int(time.time())
    body = {"sub": "ana", "tenant": "acme", "roles": ["user"], "iat": now, "exp": now + 600} | claims
    return jwt.encode({k: v for k, v in body.items() if v is not None}, secret, algorithm="HS256", headers=headers)


async def refused(verifier: TokenVerifier, token: str, code: str = "invalid_token") -> str:
    with pytest.raises(AuthError) as caught:
        await verifier.principal(f"Bearer {token}")
    assert (caught.value.status, caught.value.code) == (401, code), caught.value.message
    return caught.value.message


async def test_a_valid_token_names_subject_tenant_and_roles() -> None:
    who = await HS.principal("Bearer " + hs(roles=["user", "admin"]))
    assert who == Principal("ana", "acme", frozenset({"user", "admin"})) and who.is_admin
    assert (await HS.principal("Bearer " + hs(tenant=None, roles=None))) == Principal("ana", "default",
                                                                                     frozenset({"user"}))
    assert (await HS.principal("bearer " + hs())).subject == "ana"  # the scheme is case-insensitive


@pytest.mark.parametrize(("claims", "reason"), [
    ({"exp": None}, "exp"),  # a token without exp never expired: refused
    ({"sub": None}, "sub"),
    ({"roles": "admin"}, "roles"),  # a string is not a list
    ({"roles": [["admin"]]}, "roles"),
    ({"roles": ["root"]}, "roles"),
    ({"roles": []}, "roles"),
    ({"sub": "a\x00b"}, "sub"),
    ({"sub": ""}, "sub"),
    ({"tenant": "t\x00"}, "tenant"),
    ({"tenant": "a b"}, "tenant"),
    ({"tenant": 5}, "tenant"),
    ({"exp": int(time.time()) + 7200}, "lifetime"),  # longer than max_lifetime_s
    ({"iat": None, "exp": int(time.time()) + 7200}, "lifetime"),
    # NumericDates are JSON numbers: PyJWT alone takes these, comparing int(value)
    ({"exp": str(int(time.time()) + 600)}, "exp"),
    ({"iat": str(int(time.time()))}, "iat"),
    ({"nbf": str(int(time.time()) - 60)}, "nbf"),
    ({"nbf": True}, "nbf"),
])
async def test_claims_are_strict(claims: dict[str, Any], reason: str) -> None:
    assert reason in await refused(HS, hs(**claims))


async def test_fractional_times_are_numbers_too() -> None:
    now = time.time()
    assert (await HS.principal("Bearer " + hs(iat=now, nbf=now - 1.5, exp=now + 600.25))).subject == "ana"


async def test_missing_expired_foreign_and_oversized_tokens() -> None:
    for header in (None, "", "Basic abc", "Bearer ", "Bearer"):
        with pytest.raises(AuthError) as caught:
            await HS.principal(header)
        assert caught.value.code == "unauthenticated"
    await refused(HS, hs(exp=int(time.time()) - 120), "token_expired")
    await refused(HS, hs(secret="another-secret-0123456789-0123456789"))
    await refused(HS, "not.a.token")
    assert "longer than" in await refused(HS, "x" * (MAX_TOKEN_CHARS + 1))
    unsigned = jwt.encode({"sub": "ana", "exp": int(time.time()) + 60}, "", algorithm="none")
    assert "algorithm" in await refused(HS, unsigned)


async def test_issuer_and_audience_when_configured() -> None:
    strict = TokenVerifier(TokenPolicy(secret=SECRET, issuer=ISSUER, audience=AUDIENCE))
    assert (await strict.principal("Bearer " + hs(iss=ISSUER, aud=AUDIENCE))).subject == "ana"
    await refused(strict, hs(aud=AUDIENCE))  # no iss
    await refused(strict, hs(iss="https://evil.test", aud=AUDIENCE))
    await refused(strict, hs(iss=ISSUER, aud="another-service"))
    await refused(HS, hs(aud="someone"))  # a token meant for a named audience needs it configured


async def test_rs256_and_es256_from_the_identity_providers_keys() -> None:
    idp = FakeIdP()
    keys = FakeSigningKeys({kid: key.public_key() for kid, key in idp.keys.items()})
    verifier = TokenVerifier(TokenPolicy(issuer=ISSUER, audience=AUDIENCE), keys)
    for kind in ("rsa", "ec"):
        who = await verifier.principal("Bearer " + idp.token("ana", kind=kind, tenant="acme", roles=["service"]))
        assert who == Principal("ana", "acme", frozenset({"service"}))
    assert "kid" in await refused(verifier, idp.token("ana", kid=idp.rotate()))  # not published (yet)
    assert "algorithm" in await refused(verifier, hs(iss=ISSUER, aud=AUDIENCE))  # no HS256 secret here
    # An HS256 token "signed" with a public key must never pass as the provider's.
    both = TokenVerifier(TokenPolicy(secret=SECRET), keys)
    assert (await both.principal("Bearer " + hs())).subject == "ana"
    await refused(both, idp.token("ana", roles=["admin"], exp=int(time.time()) + 10**6))
