"""SigningKeys: one set of assertions against the fake and the JWKS adapter (over a real
local identity provider), then what only the adapter does: caching, rotation, and keeping
the keys it holds when the provider is down."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from convmem.adapters.jwks import JwksSigningKeys
from convmem.errors import RetryableError
from convmem.ports import SigningKeys
from tests.fake_idp import AUDIENCE, ISSUER, FakeIdP
from tests.fakes import FakeSigningKeys


@pytest.fixture
async def idp() -> AsyncIterator[FakeIdP]:
    provider = FakeIdP()
    await provider.start()
    yield provider
    await provider.stop()


@pytest.fixture(params=["fake", "jwks"])
def keys(request: pytest.FixtureRequest, idp: FakeIdP) -> SigningKeys:
    if request.param == "fake":
        return FakeSigningKeys({kid: key.public_key() for kid, key in idp.keys.items()})
    return JwksSigningKeys(idp.jwks_url, min_refresh_s=0.2)


async def test_a_published_key_is_found_by_its_kid(keys: SigningKeys, idp: FakeIdP) -> None:
    for kid, private in idp.keys.items():
        assert (await keys.key(kid)).public_numbers() == private.public_key().public_numbers()  # type: ignore[attr-defined]
    with pytest.raises(LookupError):
        await keys.key("nobody-published-this")


async def test_the_key_set_is_cached_rotated_and_refetched_at_most_so_often(idp: FakeIdP) -> None:
    keys = JwksSigningKeys(idp.jwks_url, cache_s=60, min_refresh_s=0.3)
    first = idp.kid("rsa")
    await asyncio.gather(*(keys.key(first) for _ in range(20)))
    assert idp.fetches == 1  # one fetch for twenty concurrent requests
    for _ in range(20):  # made-up key ids cannot make us hammer the provider
        with pytest.raises(LookupError):
            await keys.key("made-up")
    assert idp.fetches == 1
    rotated = idp.rotate()
    await asyncio.sleep(0.35)
    assert await keys.key(rotated) is not None and idp.fetches == 2  # a new kid: fetched once more
    idp.down = True
    await asyncio.sleep(0.35)
    with pytest.raises(LookupError):
        await keys.key("still-made-up")
    assert await keys.key(first) is not None  # keys already held keep working while the provider is down


async def test_a_provider_that_never_answered_is_unavailable_not_a_bad_token(idp: FakeIdP) -> None:
    idp.down = True
    with pytest.raises(RetryableError):
        await JwksSigningKeys(idp.jwks_url).key(idp.kid("rsa"))


async def test_the_app_accepts_the_providers_tokens_when_configured(idp: FakeIdP) -> None:
    from composition.runtime import signing_keys
    from services.ingest.http.app import create_app
    from tests.unit.test_edge_guards import client_settings, fake_ports

    settings = client_settings(jwt_secret=None, jwt_jwks_url=idp.jwks_url, jwt_issuer=ISSUER, jwt_audience=AUDIENCE,
                               jwks_cache_s=600.0, jwks_min_refresh_s=10.0)
    app = create_app(settings, fake_ports(), signing_keys=signing_keys(settings))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        for kind in ("rsa", "ec"):
            r = await c.get("/v1/stats", headers={"Authorization": f"Bearer {idp.token('ana', kind=kind)}"})
            assert r.status_code == 200 and r.json()["user_id"] == "ana"
        r = await c.get("/v1/stats", headers={"Authorization": f"Bearer {idp.token('ana', aud='elsewhere')}"})
        assert r.status_code == 401
