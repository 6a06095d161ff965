"""The benchmark's load generator, as its own process, so that sending costs the system under
test nothing: message i goes out at t0 + schedule[i] (open loop), over `conversations`
conversations, and what came back is printed as one JSON document.

Run by bench/pipeline.py; on its own: python bench/load.py --base URL --rate 20 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.baselines import TEXTS
from convmem.settings import IngestSettings, load
from services.ingest.auth import issue_token

RETRIES = 5  # sends of one message answered 503, before the run fails


async def send(base: str, schedule: list[float], conversations: int) -> dict[str, object]:
    run_id = uuid.uuid4().hex[:8]
    secret = load(IngestSettings).jwt_secret.get_secret_value()
    users = [f"bench-{run_id}-{i}" for i in range(conversations)]
    convs = [str(uuid.uuid4()) for _ in users]
    tokens = {u: issue_token(secret, u) for u in users}
    sent: dict[str, float] = {}
    accept_ms: list[float] = []
    retried: list[int] = []
    # Idle connections are dropped before the server's keep-alive (5 s) would close them: a
    # request sent on a connection the server is closing at that moment fails with a ReadError.
    limits = httpx.Limits(max_connections=64, keepalive_expiry=2.0)
    # No pool timeout: an open-loop send waits for a connection, and that wait is part of its latency.
    async with httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(60, pool=None), limits=limits) as api:
        started = time.time()
        # At most as many requests in the client as it has connections: the rest wait here,
        # in order, where waiting costs nothing. (httpx's pool looks at every waiting request
        # each time a connection frees up: with thousands waiting, the generator spends its
        # CPU on that and offers less than it should.) A message's clock starts before this.
        room = asyncio.Semaphore(64)

        async def one(i: int, at: float) -> None:
            await asyncio.sleep(max(0.0, at - (time.time() - started)))
            k = i % conversations
            t0 = time.time()
            body = {"user_id": users[k], "conversation_id": convs[k], "text": TEXTS[i % len(TEXTS)],
                    "external_id": f"{run_id}-{i}"}
            for attempt in range(RETRIES + 1):
                # A 503 (a broker too slow to confirm, say) is retried as a client would: the
                # same external_id, so a message that was in fact published is not doubled.
                async with room:
                    r = await api.post("/v1/messages", headers={"Authorization": f"Bearer {tokens[users[k]]}"},
                                       json=body)
                if r.status_code != 503 or attempt == RETRIES:
                    break
                retried.append(i)
                await asyncio.sleep(1.0 + attempt)
            accept_ms.append((time.time() - t0) * 1000)
            r.raise_for_status()
            sent[r.json()["message_id"]] = t0

        await asyncio.gather(*(one(i, at) for i, at in enumerate(schedule)))
        return {"started": started, "accepted_at": time.time(), "sent": sent, "accept_ms": accept_ms,
                "retried": len(retried)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", required=True)
    p.add_argument("--conversations", type=int, default=100)
    p.add_argument("--rate", type=float, default=None, help="steady rate; without it, a burst")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--messages", type=int, default=100, help="burst size")
    a = p.parse_args()
    schedule = ([i / a.rate for i in range(int(a.rate * a.seconds))] if a.rate else [0.0] * a.messages)
    sys.stdout.buffer.write(orjson.dumps(asyncio.run(send(a.base, schedule, a.conversations))))


if __name__ == "__main__":
    main()
