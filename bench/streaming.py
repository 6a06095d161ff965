"""Replies reaching people, measured: how soon a web client sees the first streamed token and
the whole reply, and how fast the WhatsApp sender sends.

1. Event streams. Every conversation's client opens `GET /v1/conversations/{id}/events`,
   then messages are sent at a steady open-loop rate (`--rate`, default 10/s, for
   `--seconds`) over `--conversations`. The model streams (tests/fake_llm.py in its own
   process: `--ttft` before the first token, `--token-interval` between tokens; defaults
   0.3 s and 0.05 s, i.e. 20 tokens/s). From each message's send: the first `token` frame
   of its reply and its `reply` frame, as the client receives them. Baseline, same run: the
   model's own time to first token and to its last token, read directly with the openai
   client, so what convmem adds is the difference. `--per-user`: each client follows its
   user's stream (`GET /v1/users/{id}/events`) instead.
2. Sender. `--replies` WhatsApp replies published to conv.replies.v1 over
   `--reply-conversations`, sent by the sender role against tests/fake_graph.py (its own
   process, `--graph-latency` per request): replies/s until all are recorded as sent.
   Baseline: the same number of bare POSTs to the same server at the same concurrency.

Workers run in this process (ingest, indexer, responder; then the sender alone), so the
load generator shares the machine's cores with them. Logs go to stderr (`2>bench.log`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import openai
import orjson
from aiokafka import AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.baselines import TEXTS, row
from bench.pipeline import model_server
from bench.servers import local_server
from composition.roles import consumer_groups
from composition.runtime import Runtime
from contracts import ReplyGenerated, identity, topics
from convmem.delivery.provisioning import start_groups_at_end
from convmem.settings import CommonSettings, IndexerSettings, IngestSettings, ResponderSettings, SenderSettings, load
from services.ingest.auth import issue_token
from tests.fake_graph import TOKEN as GRAPH_TOKEN


@dataclass
class Seen:
    sent: dict[str, float] = field(default_factory=dict)  # message id -> send time
    first_token: dict[str, float] = field(default_factory=dict)  # in_reply_to -> first token frame
    reply: dict[str, float] = field(default_factory=dict)  # in_reply_to -> reply frame
    tokens: int = 0


async def follow(api: httpx.AsyncClient, url: str, headers: dict[str, str], seen: Seen,
                 ready: asyncio.Event) -> None:
    async with api.stream("GET", url, headers=headers) as resp:
        event = ""
        async for line in resp.aiter_lines():
            if line.startswith(": following"):
                ready.set()
            elif line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                now = time.time()
                data = orjson.loads(line[6:])
                if event == "token":
                    seen.tokens += 1
                    seen.first_token.setdefault(data["in_reply_to"], now)
                elif event == "reply":
                    seen.reply.setdefault(data["in_reply_to"], now)


async def streams(runtime: Runtime, secret: str, a: argparse.Namespace) -> list[str]:
    run = uuid.uuid4().hex[:8]
    users = [f"stream-{run}-{i}" for i in range(a.conversations)]
    convs = [uuid.uuid4() for _ in users]
    headers = [{"Authorization": f"Bearer {issue_token(secret, u)}"} for u in users]
    seen = Seen()
    n = int(a.rate * a.seconds)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{runtime.port}", timeout=httpx.Timeout(60, read=None),
                                 limits=httpx.Limits(max_connections=a.conversations + 64)) as api:
        readies = [asyncio.Event() for _ in users]
        urls = [f"/v1/users/{u}/events" if a.per_user else f"/v1/conversations/{c}/events"
                for u, c in zip(users, convs, strict=True)]
        followers = [asyncio.create_task(follow(api, url, h, seen, r)) for url, h, r in zip(urls, headers, readies,
                                                                                             strict=True)]
        await asyncio.gather(*(r.wait() for r in readies))
        started = time.time()

        async def one(i: int) -> None:
            await asyncio.sleep(max(0.0, started + i / a.rate - time.time()))
            k = i % a.conversations
            t0 = time.time()
            resp = await api.post("/v1/messages", headers=headers[k], json={
                "user_id": users[k], "conversation_id": str(convs[k]), "text": TEXTS[i % len(TEXTS)],
                "external_id": f"{run}-{i}"})
            resp.raise_for_status()
            seen.sent[resp.json()["message_id"]] = t0

        await asyncio.gather(*(one(i) for i in range(n)))
        deadline = time.time() + 120
        while len(seen.reply) < n and time.time() < deadline:
            await asyncio.sleep(0.2)
        for task in followers:
            task.cancel()
        await asyncio.gather(*followers, return_exceptions=True)
    ttft = [(seen.first_token[m] - t0) * 1000 for m, t0 in seen.sent.items() if m in seen.first_token]
    whole = [(seen.reply[m] - t0) * 1000 for m, t0 in seen.sent.items() if m in seen.reply]
    kind = "users' streams" if a.per_user else "conversations' streams"
    return [f"offered: {a.rate} msg/s for {a.seconds} s over {a.conversations} {kind}",
            row("first token at the client", ttft), row("reply frame at the client", whole),
            f"  completed {len(whole)}/{n} replies, {seen.tokens / max(len(whole), 1):.1f} token frames per reply"]


async def model_baseline(base_url: str, n: int = 20) -> list[str]:
    """The model alone: its time to first token and to its last, streamed, one call at a time."""
    client = openai.AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0)
    first, last = [], []
    for i in range(n):
        t0 = time.perf_counter()
        stream = await client.chat.completions.create(model="fake-gpt", stream=True, messages=[
            {"role": "user", "content": TEXTS[i % len(TEXTS)]}])
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content and not first[i:]:
                first.append((time.perf_counter() - t0) * 1000)
        last.append((time.perf_counter() - t0) * 1000)
    await client.close()
    return [row("model alone: first token", first), row("model alone: last token", last)]


@contextlib.asynccontextmanager
async def graph_server(latency: float) -> AsyncIterator[str]:
    async with local_server("tests.fake_graph", "--latency", str(latency)) as base:
        yield f"{base}/v23.0"


async def sender(common: CommonSettings, a: argparse.Namespace) -> list[str]:
    lines = []
    async with graph_server(a.graph_latency) as base:
        # Baseline: bare POSTs at the sender's concurrency, nothing else.
        body = {"messaging_product": "whatsapp", "to": "34600000000", "type": "text", "text": {"body": "hi"}}
        room = asyncio.Semaphore(a.sender_in_flight)
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {GRAPH_TOKEN}"}, limits=httpx.Limits(
                max_connections=a.sender_in_flight)) as client:
            async def post() -> None:
                async with room:
                    (await client.post(f"{base}/555000111/messages", json=body)).raise_for_status()

            t0 = time.perf_counter()
            await asyncio.gather(*(post() for _ in range(a.replies)))
            raw = a.replies / (time.perf_counter() - t0)
        settings = load(SenderSettings, group_prefix=f"bench-{uuid.uuid4().hex[:8]}", log_level="WARNING",
                        whatsapp_api_base_url=base, whatsapp_access_token=GRAPH_TOKEN,
                        sender_max_in_flight=a.sender_in_flight, ops_port=0)  # beside other processes
        await start_groups_at_end(common.kafka_bootstrap, consumer_groups(["sender"], settings.group_prefix))
        runtime = Runtime(["sender"], sender=settings)
        await runtime.start()
        tenant = f"bench-{uuid.uuid4().hex[:8]}"
        convs = [uuid.uuid4() for _ in range(a.reply_conversations)]
        replies = []
        for i in range(a.replies):
            turn = uuid.uuid4()
            replies.append(ReplyGenerated(
                tenant_id=tenant, user_id=f"u{i % a.reply_conversations}", conversation_id=convs[i % len(convs)],
                message_id=identity.reply_id_for(turn), in_reply_to=turn, channel="whatsapp",
                text=TEXTS[i % len(TEXTS)], model="m", occurred_at=datetime.now(UTC),
                metadata={"whatsapp": {"phone_number_id": "555000111", "to": f"3460{i % a.reply_conversations:07d}"}}))
        producer = AIOKafkaProducer(bootstrap_servers=common.kafka_bootstrap, acks="all", linger_ms=5)
        await producer.start()
        db = await asyncpg.connect(common.database_url.get_secret_value())
        try:
            t0 = time.perf_counter()
            await asyncio.gather(*(producer.send_and_wait(topics.REPLIES, r.model_dump_json().encode(), key=r.key)
                                   for r in replies))
            ids = [r.message_id for r in replies]
            while await db.fetchval("SELECT count(*) FROM reply_sends WHERE message_id = ANY($1::uuid[]) "
                                    "AND state = 'sent'", ids) < len(ids):
                await asyncio.sleep(0.1)
            rate = a.replies / (time.perf_counter() - t0)
        finally:
            await db.close()
            await producer.stop()
            await runtime.stop()
    lines.append(f"sender: {a.replies} replies over {a.reply_conversations} conversations, "
                 f"{a.sender_in_flight} at once, Cloud API latency {a.graph_latency * 1000:.0f} ms")
    lines.append(f"  bare POSTs to the same server        {raw:9.1f}/s")
    lines.append(f"  sent and recorded by the sender      {rate:9.1f}/s  (ratio {rate / raw:.2f})")
    return lines


async def run(a: argparse.Namespace) -> None:
    common = load(CommonSettings)
    secret = load(IngestSettings).jwt_secret.get_secret_value()
    print(f"convmem streaming benchmark (model: first token {a.ttft}s, then a token every {a.token_interval}s)")
    async with model_server(a.ttft, a.token_interval) as llm:
        assert llm is not None
        for line in await model_baseline(llm):
            print(line)
        fresh = {"group_prefix": f"bench-{uuid.uuid4().hex[:8]}", "log_level": "WARNING"}
        roles = ("ingest", "indexer", "responder")
        await start_groups_at_end(common.kafka_bootstrap, consumer_groups(roles, fresh["group_prefix"]))
        runtime = Runtime(roles, ingest=load(IngestSettings, **fresh), indexer=load(IndexerSettings, **fresh),
                          responder=load(ResponderSettings, **fresh, llm_base_url=llm, llm_model="fake-gpt"),
                          http_port=0)
        await runtime.start()
        try:
            for line in await streams(runtime, secret, a):
                print(line)
        finally:
            await runtime.stop()
    if a.replies:
        for line in await sender(common, a):
            print(line)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=10.0, help="messages per second, steady")
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--conversations", type=int, default=50)
    p.add_argument("--per-user", action="store_true", help="clients follow GET /v1/users/{id}/events instead")
    p.add_argument("--ttft", type=float, default=0.3, help="the model's time to first token, seconds")
    p.add_argument("--token-interval", type=float, default=0.05, help="seconds between the model's tokens")
    p.add_argument("--replies", type=int, default=2000, help="replies for the sender (0: skip it)")
    p.add_argument("--reply-conversations", type=int, default=200)
    p.add_argument("--sender-in-flight", type=int, default=32)
    p.add_argument("--graph-latency", type=float, default=0.05, help="the Cloud API's answer time, seconds")
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
