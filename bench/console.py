"""The console's pages at scale: 1,000,000 stored turns of one tenant (bench/analytics.py's
history: 2,000 users, 50,000 conversations of 20 turns over 90 days, WhatsApp deliveries),
the interaction summaries the recorder would have kept for them, then each page rendered
through the real HTTP edge (an ingest process in this one, over the local stack) with a
signed-in admin's cookie, repeated: p50/p95 per page.

Baselines in the same run: GET /healthz (the edge's floor) and the JSON API read each page
is built on (a user's conversations, a conversation's turns, a search), so what the pages add
is measured, not guessed.

Usage: python bench/console.py [--turns 1000000] [--requests 50] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.analytics import DAYS, line, load_history, timed
from composition.runtime import Runtime
from convmem.migrations import migrate
from convmem.settings import CommonSettings, IngestSettings, load
from services.ingest.auth import issue_token

# What the recorder keeps per user as turns arrive (the loader writes turns straight to SQL).
_SUMMARIES = """
INSERT INTO user_summaries (tenant_id, user_id, conversations, messages, user_messages, first_at, last_at,
                            languages, intents)
SELECT $1, m.user_id, count(DISTINCT m.conversation_id), count(*), count(*) FILTER (WHERE m.role = 'user'),
       min(m.occurred_at), max(m.occurred_at),
       coalesce((SELECT jsonb_object_agg(language, n) FROM (SELECT language, count(*) n FROM messages
                 WHERE tenant_id = $1 AND user_id = m.user_id AND language IS NOT NULL GROUP BY 1) l), '{}'),
       coalesce((SELECT jsonb_object_agg(intent, n) FROM (SELECT intent, count(*) n FROM messages
                 WHERE tenant_id = $1 AND user_id = m.user_id AND intent IS NOT NULL GROUP BY 1) i), '{}')
FROM messages m WHERE m.tenant_id = $1 GROUP BY m.user_id"""


async def signed_in(api: httpx.AsyncClient, token: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=str(api.base_url), timeout=120)
    answer = await client.post("/console/sign-in", data={"token": token})
    assert answer.status_code == 303, answer.text
    return client


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--turns", type=int, default=1_000_000)
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--keep", action="store_true", help="leave the generated tenant in the database")
    args = ap.parse_args()
    common = load(CommonSettings)
    url = common.database_url.get_secret_value()
    await migrate(url)
    tenant = f"bench-console-{uuid.uuid4().hex[:8]}"
    first = datetime.combine(datetime.now(UTC).date() - timedelta(days=DAYS), datetime.min.time(), UTC)
    print(f"convmem console bench: {args.turns:,} turns, tenant {tenant}, load {os.getloadavg()}", flush=True)
    conn = await asyncpg.connect(url)
    secret = "bench-console-secret-" + "x" * 32
    rt = Runtime(("ingest",), ingest=load(IngestSettings, kafka_bootstrap=common.kafka_bootstrap, database_url=url,
                                           jwt_secret=secret, log_level="WARNING"), http_port=0)
    try:
        loaded = await load_history(conn, tenant, args.turns, first)
        await conn.execute(_SUMMARIES, tenant)
        await conn.execute("VACUUM ANALYZE user_summaries")
        stored = await conn.fetchval("SELECT count(*) FROM messages WHERE tenant_id = $1", tenant)
        print(f"loaded {stored:,} turns in {loaded:.1f} s, with the users' interaction summaries", flush=True)
        await rt.start()
        user = f"user-{7 % max(1, args.turns // 20 // 25)}"  # the loader's users: one per 25 conversations
        conv = await conn.fetchval("SELECT id FROM conversations WHERE tenant_id = $1 AND user_id = $2 "
                                   "ORDER BY last_message_at DESC LIMIT 1", tenant, user)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{rt.port}", timeout=120) as api:
            admin = await signed_in(api, issue_token(secret, "bench-admin", tenant, ("admin",)))
            own = await signed_in(api, issue_token(secret, user, tenant, ("user",)))
            bearer = {"Authorization": f"Bearer {issue_token(secret, 'bench-admin', tenant, ('admin',))}"}

            def page(client: httpx.AsyncClient, path: str, expect: str) -> Callable[[], Awaitable[None]]:
                async def get() -> None:
                    answer = await client.get(path)
                    assert answer.status_code == 200 and expect in answer.text, (path, answer.status_code,
                                                                                 answer.text[:300])
                return get

            def api_get(path: str) -> Callable[[], Awaitable[None]]:
                async def get() -> None:
                    answer = await api.get(path, headers=bearer)
                    assert answer.status_code == 200, (path, answer.text[:300])
                return get

            pages = [
                ("Overview", page(admin, "/console", "Consumer groups")),
                ("Users (latest active)", page(admin, "/console/users", "user-")),
                (f"Users (id starts with {user})", page(admin, f"/console/users?q={user}", user)),
                (f"User {user} (summary, conversations)", page(admin, f"/console/users/{user}", "conversations")),
                ("Conversation (20 turns)", page(admin, f"/console/conversations/{conv}", "turn 20")),
                ("Conversation's new turns (fragment)", page(admin, f"/console/conversations/{conv}/turns?after_seq=10",
                                                             "turn 11")),
                ("Memory explorer (search + context block)", page(admin, f"/console/memory?user_id={user}&q=turn+5",
                                                                  "Context block")),
                ("Dead letters (every DLQ topic)", page(admin, "/console/dead-letters", "matched")),
                (f"Privacy ({user} + action record)", page(admin, f"/console/privacy?user_id={user}", "Recorded actions")),
                ("My data (user token)", page(own, "/console/me", "What convmem remembers")),
            ]
            if re.search(r'href="/console/analytics"', (await admin.get("/console")).text):
                pages.insert(1, ("Analytics (the last 30 days by day)", page(admin, "/console/analytics", "<svg")))
            baselines = [
                ("baseline: GET /healthz", api_get("/healthz")),
                (f"baseline: GET /v1/conversations?user_id={user}", api_get(f"/v1/conversations?user_id={user}")),
                ("baseline: GET /v1/conversations/{id}", api_get(f"/v1/conversations/{conv}")),
                (f"baseline: GET /v1/search?q=turn+5&user_id={user}", api_get(f"/v1/search?q=turn+5&user_id={user}")),
            ]
            for _, warm in pages + baselines:
                await warm()
            print(f"\nload before timing: {os.getloadavg()}", flush=True)
            rows = [(f"page: {name}", await timed(fn, args.requests)) for name, fn in pages]
            rows += [(name, await timed(fn, args.requests)) for name, fn in baselines]
            print(f"load after timing: {os.getloadavg()}\n")
            for name, ms in rows:
                print(line(name, ms))
            await admin.aclose()
            await own.aclose()
    finally:
        await rt.stop()
        if not args.keep:
            for table in ("console_actions", "console_sessions", "user_summaries", "delivery_statuses", "reply_sends",
                          "replies", "messages", "conversations"):
                await conn.execute(f"DELETE FROM {table} WHERE tenant_id = $1", tenant)  # noqa: S608 - names above
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
