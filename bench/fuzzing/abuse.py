"""Abuse: chunked huge bodies in parallel, a bad-token flood, verify-token guessing."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator

import httpx
import jwt

from bench.fuzzing.common import Figures, RssSampler, sign


def chunked(total: int, piece: int = 1 << 20) -> Iterator[bytes]:
    block = b"x" * piece
    for _ in range(total // piece):
        yield block


def run_abuse(base: str, secret: str, app_secret: str, seconds: float, sampler: RssSampler, fig: Figures) -> None:
    before = sampler.rss_kb()

    def big(signed: bool) -> None:
        headers = {"Content-Type": "application/json"}
        if signed:
            body = b"x" * (50 << 20)
            headers["X-Hub-Signature-256"] = sign(app_secret, body)
        try:
            with httpx.Client(base_url=base, timeout=120) as c:
                r = c.post("/webhooks/whatsapp", content=chunked(50 << 20), headers=headers)
            fig.record("abuse 50 MB chunked", r.status_code, "signed" if signed else "unsigned")
        except httpx.HTTPError as exc:
            fig.record("abuse 50 MB chunked", 0, type(exc).__name__)

    threads = [threading.Thread(target=big, args=(False,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    mid = sampler.peak_kb
    big(True)
    print(f"  4 x 50 MB chunked unsigned: RSS {before // 1024} -> peak {mid // 1024} MB")

    def flood(area: str, call: Callable[[httpx.Client], httpx.Response]) -> None:
        stop = time.monotonic() + seconds
        counts: Counter[int] = Counter()

        def worker() -> None:
            with httpx.Client(base_url=base, timeout=10) as c:
                while time.monotonic() < stop:
                    counts[call(c).status_code] += 1

        pool = [threading.Thread(target=worker) for _ in range(4)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        for status, n in counts.items():
            for _ in range(n):
                fig.record(area, status)
        total = sum(counts.values())
        print(f"  {area}: {total / seconds:.0f} req/s, {dict(counts)}")

    bad = {"Authorization": "Bearer " + jwt.encode({"sub": "x", "exp": int(time.time()) + 60}, "wrong-" * 8,
                                                    algorithm="HS256")}
    flood("abuse bad tokens", lambda c: c.get("/v1/stats", headers=bad))
    flood("abuse verify guesses", lambda c: c.get("/webhooks/whatsapp", params={
        "hub.mode": "subscribe", "hub.verify_token": uuid.uuid4().hex, "hub.challenge": "1"}))
