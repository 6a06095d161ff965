"""Clients that keep posting through an outage, as producers do: a steady rate of messages,
each retried on a 503 (after its Retry-After) or on no answer until it is accepted, with an
Idempotency-Key (or, for a share of them, without any key, as many HTTP clients retry). Then
the tally from Postgres: every accepted message recorded once, none twice, and no answer a
5xx other than a JSON 503. Shared by tests/e2e/test_outages.py and bench/outage.py."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx

from services.ingest.auth import issue_token


@dataclass
class Sent:
    """One message and every answer it got, in order."""

    user: str
    text: str
    key: str | None
    answers: list[str] = field(default_factory=list)  # "202", "503 unavailable", "503 outcome_unknown", ...
    message_id: str | None = None  # from the 202
    unknown_ids: list[str] = field(default_factory=list)  # message_id of each 503 outcome_unknown

    @property
    def accepted(self) -> bool:
        return self.message_id is not None


def _bad(r: httpx.Response) -> bool:
    """A 5xx that is not the JSON 503 of the error contract: what must never happen."""
    if r.status_code < 500:
        return False
    if r.status_code != 503 or not r.headers.get("content-type", "").startswith("application/json"):
        return True
    return r.json().get("error") not in ("unavailable", "outcome_unknown")


class SteadyClients:
    def __init__(self, base_url: str, jwt_secret: str, users: int = 20, keyless_every: int = 0,
                 tenant: str = "default") -> None:
        self.run_id = uuid.uuid4().hex[:8]
        self.base_url, self.tenant = base_url, tenant
        self.users = [f"outage-{self.run_id}-{i}" for i in range(users)]
        self.conversations = {u: str(uuid.uuid4()) for u in self.users}
        self.tokens = {u: issue_token(jwt_secret, u, tenant) for u in self.users}
        self.keyless_every = keyless_every  # every n-th message goes without a key (0: none)
        self.sent: list[Sent] = []
        self.stop_sending = asyncio.Event()

    async def run(self, rate: float, workers: int = 100, give_up_after_s: float = 300.0,
                  request_timeout_s: float = 30.0) -> list[Sent]:
        """Queues `rate` messages a second until stop_sending is set; `workers` clients send
        them, each retrying its message until it is accepted (or given up after
        `give_up_after_s`), then taking the next. Returns once the queue is empty."""
        queue: asyncio.Queue[Sent | None] = asyncio.Queue()
        limits = httpx.Limits(max_connections=workers, keepalive_expiry=2.0)  # under the server's keep-alive
        async with httpx.AsyncClient(base_url=self.base_url, timeout=request_timeout_s, limits=limits) as api:

            async def worker() -> None:
                while (one := await queue.get()) is not None:
                    await self._deliver(api, one, give_up_after_s)

            running = [asyncio.create_task(worker()) for _ in range(workers)]
            started, i = time.monotonic(), 0
            while not self.stop_sending.is_set():
                user = self.users[i % len(self.users)]
                keyed = not (self.keyless_every and i % self.keyless_every == 0)
                one = Sent(user, f"outage {self.run_id} message {i}", f"{self.run_id}-{i}" if keyed else None)
                self.sent.append(one)
                queue.put_nowait(one)
                i += 1
                with contextlib.suppress(TimeoutError):  # always yields, even when behind schedule
                    await asyncio.wait_for(self.stop_sending.wait(), max(started + i / rate - time.monotonic(), 0))
            for _ in running:
                queue.put_nowait(None)
            await asyncio.gather(*running)
        return self.sent

    async def _deliver(self, api: httpx.AsyncClient, one: Sent, give_up_after_s: float) -> None:
        deadline = time.monotonic() + give_up_after_s
        headers = {"Authorization": f"Bearer {self.tokens[one.user]}"}
        if one.key is not None:
            headers["Idempotency-Key"] = f'"{one.key}"'
        body = {"user_id": one.user, "conversation_id": self.conversations[one.user], "text": one.text}
        while time.monotonic() < deadline:
            wait = 1.0
            try:
                r = await api.post("/v1/messages", json=body, headers=headers)
            except httpx.HTTPError as exc:
                one.answers.append(f"no answer: {type(exc).__name__}")
            else:
                if r.status_code == 202:
                    one.answers.append("202")
                    one.message_id = r.json()["message_id"]
                    return
                if _bad(r):
                    one.answers.append(f"BAD {r.status_code} {r.headers.get('content-type', '')}")
                elif r.status_code == 503:
                    error = r.json()["error"]
                    one.answers.append(f"503 {error}")
                    if error == "outcome_unknown":
                        one.unknown_ids.append(r.json()["message_id"])
                    wait = float(r.headers.get("retry-after", "1"))
                else:
                    one.answers.append(f"{r.status_code} {r.text[:200]}")
                    return  # a 4xx: retrying cannot help
            await asyncio.sleep(wait)


@dataclass
class Tally:
    sent: int
    accepted: int
    keyless: int
    recorded: int
    lost: int  # accepted, and not recorded
    doubled: int  # recorded more than once
    doubled_keyless: int
    bad_5xx: int  # answers that were a 5xx other than a JSON 503
    answers: dict[str, int]
    outcome_unknown_ids_kept: bool  # every 503 outcome_unknown named the id the message was recorded with
    unanswered: list[str]

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


async def recorded_counts(database_url: str, clients: SteadyClients) -> tuple[Counter[str], dict[str, list[str]]]:
    """How many rows each sent text has in Postgres, and their message ids."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT content, id FROM messages WHERE tenant_id = $1 AND user_id = ANY($2::text[]) AND role = 'user'",
            clients.tenant, clients.users)
    finally:
        await conn.close()
    counts: Counter[str] = Counter()
    ids: dict[str, list[str]] = {}
    for row in rows:
        counts[row["content"]] += 1
        ids.setdefault(row["content"], []).append(str(row["id"]))
    return counts, ids


async def tally(database_url: str, clients: SteadyClients, stalled_s: float = 60.0) -> Tally:
    """Waits until every accepted message is recorded, or nothing more was recorded for
    `stalled_s` (a recorder catching up after an outage on a busy machine takes minutes), then
    counts."""
    accepted = [s for s in clients.sent if s.accepted]
    progress, last = time.monotonic(), -1
    while True:
        counts, ids = await recorded_counts(database_url, clients)
        if all(counts[s.text] for s in accepted):
            break
        if sum(counts.values()) != last:
            progress, last = time.monotonic(), sum(counts.values())
        elif time.monotonic() - progress > stalled_s:
            break
        await asyncio.sleep(1)
    await asyncio.sleep(3)  # anything still in a producer's buffer lands now, to be counted as doubled
    counts, ids = await recorded_counts(database_url, clients)
    answers: Counter[str] = Counter(a for s in clients.sent for a in s.answers)
    kept = all(ids.get(s.text, [None])[0] == u for s in clients.sent for u in s.unknown_ids if counts[s.text] == 1)
    return Tally(
        sent=len(clients.sent), accepted=len(accepted), keyless=sum(s.key is None for s in clients.sent),
        recorded=sum(1 for s in clients.sent if counts[s.text]),
        lost=sum(1 for s in accepted if not counts[s.text]),
        doubled=sum(1 for s in clients.sent if s.key is not None and counts[s.text] > 1),
        doubled_keyless=sum(1 for s in clients.sent if s.key is None and counts[s.text] > 1),
        bad_5xx=sum(n for a, n in answers.items() if a.startswith("BAD")),
        answers=dict(answers.most_common()), outcome_unknown_ids_kept=kept,
        unanswered=[s.text for s in clients.sent if not s.accepted][:10],
    )
