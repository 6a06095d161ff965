"""What every fuzzing area shares: the figures it records, the RSS sampler, tokens,
signatures and client addresses."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import jwt

ROOT = Path(__file__).resolve().parents[2]


TENANT = "fuzz"


class Figures:
    def __init__(self) -> None:
        self.statuses: dict[str, Counter[int]] = defaultdict(Counter)
        self.violations: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = defaultdict(list)
        self.lock = threading.Lock()

    def record(self, area: str, status: int, what: str = "") -> None:
        with self.lock:
            self.statuses[area][status] += 1
            if status >= 500 and len(self.examples[area]) < 8:
                self.examples[area].append(f"{status} {what}"[:200])

    def violation(self, kind: str, what: str) -> None:
        with self.lock:
            self.violations[kind] += 1
            if len(self.examples["violations"]) < 8:
                self.examples["violations"].append(f"{kind}: {what}"[:300])


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_kb, self.stop = pid, 0, threading.Event()

    def rss_kb(self, field: str = "VmRSS") -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        return 0

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.peak_kb = max(self.peak_kb, self.rss_kb())
            except OSError:
                return
            time.sleep(0.1)


def token(secret: str, sub: str, roles: list[Any], **extra: Any) -> str:
    now = int(time.time())
    claims = {"sub": sub, "tenant": TENANT, "roles": roles, "iat": now, "exp": now + 3600, **extra}
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, secret, algorithm="HS256")


_CALLERS = itertools.count(1)


def random_address() -> str:
    """A new client address as the ingest process (which trusts X-Forwarded-For from localhost)
    sees it. Counted, not drawn: Hypothesis seeds `random` the same way for every test."""
    n = next(_CALLERS)
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def sign(secret: str, raw: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
