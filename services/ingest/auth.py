"""Minting bearer tokens, for the demo, the benchmarks and the tests. Production tokens come
from the user's identity provider; checking them is services.ingest.principal's job."""

from __future__ import annotations

import time

import jwt

from services.ingest.principal import DEFAULT_TENANT


def issue_token(secret: str, subject: str, tenant: str = DEFAULT_TENANT, roles: tuple[str, ...] = ("user",),
                ttl_s: int = 3600) -> str:
    now = int(time.time())
    return jwt.encode({"sub": subject, "tenant": tenant, "roles": list(roles), "iat": now, "exp": now + ttl_s},
                      secret, algorithm="HS256")
