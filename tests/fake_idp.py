"""A local identity provider for tests: real HTTP serving a JWKS document of RSA and EC keys it
can rotate, and tokens signed with them. Counts fetches, and can be made to fail, so a test can
see what the key cache does."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from tests.local_http import LocalServer

ISSUER = "https://idp.test"
AUDIENCE = "convmem-test"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def _jwk(kid: str, key: PrivateKey) -> dict[str, Any]:
    if isinstance(key, rsa.RSAPrivateKey):
        public: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        alg = "RS256"
    else:
        public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
        alg = "ES256"
    return public | {"kid": kid, "use": "sig", "alg": alg}


@dataclass
class FakeIdP(LocalServer):
    keys: dict[str, PrivateKey] = field(default_factory=dict)
    fetches: int = 0
    down: bool = False

    def __post_init__(self) -> None:
        self.rotate()
        self.keys[f"ec-{uuid.uuid4().hex[:8]}"] = ec.generate_private_key(ec.SECP256R1())

    @property
    def jwks_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/.well-known/jwks.json"

    def rotate(self) -> str:
        """Publishes a new RSA key (the old ones stay published, as providers do) and returns its kid."""
        kid = f"rsa-{uuid.uuid4().hex[:8]}"
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return kid

    def kid(self, kind: str) -> str:
        return [k for k in self.keys if k.startswith(kind)][-1]

    def token(self, sub: str, *, kind: str = "rsa", kid: str | None = None, ttl_s: int = 600,
              **claims: Any) -> str:
        kid = kid or self.kid(kind)
        now = int(time.time())
        body = {"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + ttl_s, **claims}
        alg = "RS256" if kid.startswith("rsa") else "ES256"
        return jwt.encode(body, self.keys[kid], algorithm=alg, headers={"kid": kid})

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/.well-known/jwks.json")
        async def jwks() -> Any:
            self.fetches += 1
            if self.down:
                return JSONResponse({"error": "down"}, status_code=503)
            return {"keys": [_jwk(kid, key) for kid, key in self.keys.items()]}

        return app
