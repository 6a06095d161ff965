"""GET /v1/analytics at scale: 1,000,000 stored turns of one tenant (2,000 users, 50,000
conversations of 20 turns, spread over 90 days; replies with latencies, tokens, intents,
languages; a third of them sent through WhatsApp with delivery statuses), loaded straight
into Postgres with generate_series. Then, through the real HTTP edge (an ingest process in
this one, over the local stack):

- the first request, which builds the tenant's rollups from the turns (a one-off);
- 90 days by day as an admin of the tenant, repeated: p50/p95;
- the same with 200 new turns recorded before each request (the refresh's share);
- 90 days by week and by month; one user's 90 days by day;

and, in the same run, the baselines: the plain count query (turns per day over the same 90
days straight from `messages`) and the whole report computed from the turns without rollups
(the refresh's fact query over every day), so the rollups' worth is measured, not assumed.
The rollup's figures are checked against the plain count, and its latency percentiles
against percentile_cont over the raw latencies.

Usage: python bench/analytics.py [--turns 1000000] [--requests 100] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.percentiles import pct
from composition.runtime import Runtime
from convmem.migrations import migrate
from convmem.settings import CommonSettings, IngestSettings, load
from services.ingest.auth import issue_token

TURNS_PER_CONVERSATION = 20
DAYS = 90

# One statement per table: ids derived with md5 so replies, sends and statuses can name the
# turns they belong to without a round trip. $1 tenant, $2 conversations, $3 users, $4 first day.
_CONVERSATIONS = """
INSERT INTO conversations (id, tenant_id, user_id, channel, title, created_at, updated_at, last_message_at,
                           message_count)
SELECT md5($1 || ':c:' || c)::uuid, $1, 'user-' || (c % $3),
       CASE WHEN c % 3 = 0 THEN 'whatsapp' ELSE 'http' END, 'bench',
       $4::timestamptz + make_interval(days => c % 90, secs => (c * 7919) % 80000),
       $4::timestamptz + make_interval(days => c % 90, secs => (c * 7919) % 80000),
       $4::timestamptz + make_interval(days => c % 90, secs => (c * 7919) % 80000 + 600), 20
FROM generate_series(0, $2 - 1) c"""

_MESSAGES = """
INSERT INTO messages (id, tenant_id, user_id, conversation_id, seq, role, channel, content, in_reply_to,
                      reply_expected, occurred_at, recorded_at, turn_published_at, embedded_at, success,
                      prompt_tokens, completion_tokens, latency_ms, model, intent, intent_confidence, language)
SELECT md5($1 || ':m:' || c || ':' || s)::uuid, $1, 'user-' || (c % $3), md5($1 || ':c:' || c)::uuid, s,
       CASE WHEN s % 2 = 1 THEN 'user' ELSE 'assistant' END,
       CASE WHEN c % 3 = 0 THEN 'whatsapp' ELSE 'http' END,
       'turn ' || s,
       CASE WHEN s % 2 = 0 THEN md5($1 || ':m:' || c || ':' || (s - 1))::uuid END,
       s % 2 = 1, t, t, t, t,
       CASE WHEN s % 2 = 0 THEN true END,
       CASE WHEN s % 2 = 0 THEN 200 + (c * s) % 1800 END,
       CASE WHEN s % 2 = 0 THEN 20 + (c + s) % 180 END,
       CASE WHEN s % 2 = 0 THEN (300 + exp(ln(9000) * ((c * 31 + s * 17) % 1000) / 1000.0))::int END,
       CASE WHEN s % 2 = 0 THEN 'bench-model' END,
       CASE WHEN s % 2 = 1 THEN (ARRAY['question', 'greeting', 'order', 'complaint', 'thanks', 'booking'])[1 + (c + s) % 6] END,
       CASE WHEN s % 2 = 1 THEN 0.8 END,
       CASE WHEN s % 2 = 1 THEN (ARRAY['en', 'en', 'en', 'es', 'pt', 'de', 'fr'])[1 + (c * 3 + s) % 7] END
FROM generate_series(0, $2 - 1) c, generate_series(1, 20) s,
     LATERAL (SELECT $4::timestamptz + make_interval(days => c % 90, secs => (c * 7919) % 80000 + s * 30) AS t) w"""

_REPLIES = """
INSERT INTO replies (in_reply_to, tenant_id, message_id, event, created_at, published_at)
SELECT m.in_reply_to, $1, m.id, '{}'::jsonb, m.occurred_at, m.occurred_at
FROM messages m WHERE m.tenant_id = $1 AND m.role = 'assistant'"""

_SENDS = """
INSERT INTO reply_sends (message_id, part, parts, tenant_id, user_id, conversation_id, state, attempts, wamid,
                         claimed_at, sent_at, updated_at, error_code)
SELECT m.id, 0, 1, $1, m.user_id, m.conversation_id,
       CASE WHEN m.seq % 50 = 0 THEN 'failed' ELSE 'sent' END, 1,
       CASE WHEN m.seq % 50 = 0 THEN NULL ELSE 'wamid.' || m.id END,
       m.occurred_at, m.occurred_at, m.occurred_at, CASE WHEN m.seq % 50 = 0 THEN 131026 END
FROM messages m WHERE m.tenant_id = $1 AND m.role = 'assistant' AND m.channel = 'whatsapp'"""

_STATUSES = """
INSERT INTO delivery_statuses (tenant_id, external_id, status, occurred_at, recorded_at)
SELECT $1, s.wamid, st.status, s.sent_at + interval '5 seconds', s.sent_at + interval '5 seconds'
FROM reply_sends s CROSS JOIN (VALUES ('sent'), ('delivered'), ('read')) st(status)
WHERE s.tenant_id = $1 AND s.wamid IS NOT NULL
  AND (st.status <> 'read' OR hashtext(s.wamid) % 5 <> 0)"""

_PLAIN_COUNT = """
SELECT date_trunc('day', occurred_at AT TIME ZONE 'UTC') AS day, count(*) FROM messages
WHERE tenant_id = $1 AND occurred_at >= $2 AND occurred_at < $3 AND deleted_at IS NULL GROUP BY 1"""

_RAW_LATENCY = """
SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day, percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95
FROM messages WHERE tenant_id = $1 AND role = 'assistant' AND deleted_at IS NULL AND model <> 'offline'
  AND occurred_at >= $2 AND occurred_at < $3 GROUP BY 1"""


def line(name: str, ms: list[float]) -> str:
    return f"  {name:<58} p50 {pct(ms, 50):8.1f} ms  p95 {pct(ms, 95):8.1f} ms  (n={len(ms)})"


async def load_history(conn: asyncpg.Connection, tenant: str, turns: int, first: datetime) -> float:
    conversations = turns // TURNS_PER_CONVERSATION
    users = max(1, conversations // 25)
    started = time.perf_counter()
    for sql in (_CONVERSATIONS, _MESSAGES):
        await conn.execute(sql, tenant, conversations, users, first)
    for sql in (_REPLIES, _SENDS, _STATUSES):
        await conn.execute(sql, tenant)
    for table in ("messages", "conversations", "replies", "reply_sends", "delivery_statuses"):
        await conn.execute(f"VACUUM ANALYZE {table}")
    return time.perf_counter() - started


async def timed(fn: object, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        await fn()  # type: ignore[operator]
        out.append((time.perf_counter() - t) * 1000)
    return out


async def add_turns(conn: asyncpg.Connection, tenant: str, n: int, day: datetime) -> None:
    """n new turns of existing users, recorded now (the refresh finds them by recorded_at)."""
    batch = uuid.uuid4().hex
    await conn.execute(
        """INSERT INTO conversations (id, tenant_id, user_id, channel, created_at)
           SELECT md5($1 || ':live:' || $3 || ':' || i)::uuid, $1, 'user-' || i, 'http', $2
           FROM generate_series(0, $4 - 1) i""", tenant, day, batch, n)
    await conn.execute(
        """INSERT INTO messages (id, tenant_id, user_id, conversation_id, seq, role, channel, content, occurred_at,
                                 reply_expected, intent, language)
           SELECT gen_random_uuid(), $1, 'user-' || i, md5($1 || ':live:' || $3 || ':' || i)::uuid, 1, 'user', 'http',
                  'new', $2, true, 'question', 'en'
           FROM generate_series(0, $4 - 1) i""", tenant, day, batch, n)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--turns", type=int, default=1_000_000)
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--keep", action="store_true", help="leave the generated tenant in the database")
    ap.add_argument("--tenant", help="time a tenant a --keep run left (its history is not loaded again)")
    args = ap.parse_args()
    common = load(CommonSettings)
    url = common.database_url.get_secret_value()
    await migrate(url)
    tenant = args.tenant or f"bench-analytics-{uuid.uuid4().hex[:8]}"
    today = datetime.now(UTC).date()
    # 90 days up to today: inside the default message retention, so a sweep meanwhile purges nothing.
    first = datetime.combine(today - timedelta(days=DAYS - 1), datetime.min.time(), UTC)
    since, until = first.date(), today + timedelta(days=1)
    print(f"convmem analytics bench: {args.turns:,} turns, tenant {tenant}, load {os.getloadavg()}", flush=True)

    conn = await asyncpg.connect(url)
    secret = "bench-analytics-secret-" + "x" * 32
    rt = Runtime(("ingest",), ingest=load(IngestSettings, kafka_bootstrap=common.kafka_bootstrap, database_url=url,
                                           jwt_secret=secret, log_level="WARNING"), http_port=0)
    try:
        if args.tenant:  # a kept tenant: its days and refresh as they were left
            await conn.execute("DELETE FROM analytics_refreshes WHERE tenant_id = $1", tenant)
            oldest = await conn.fetchval("SELECT min(created_at) FROM conversations WHERE tenant_id = $1", tenant)
            first = datetime.combine(oldest.astimezone(UTC).date(), datetime.min.time(), UTC)
            since = first.date()
            loaded = 0.0
        else:
            loaded = await load_history(conn, tenant, args.turns, first)
        stored = await conn.fetchval("SELECT count(*) FROM messages WHERE tenant_id = $1", tenant)
        print(f"loaded {stored:,} turns in {loaded:.1f} s (generate_series, then VACUUM ANALYZE)", flush=True)
        await rt.start()
        admin = {"Authorization": f"Bearer {issue_token(secret, 'bench-admin', tenant, ('admin',))}"}
        params = {"period": "day", "since": since.isoformat(), "until": until.isoformat()}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{rt.port}", timeout=600) as api:

            async def get(**extra: str) -> httpx.Response:
                resp = await api.get("/v1/analytics", params={**params, **extra}, headers=admin)
                assert resp.status_code == 200, resp.text
                return resp

            t = time.perf_counter()
            body = (await get()).json()
            build_s = time.perf_counter() - t
            print(f"first request (builds the rollups from {stored:,} turns): {build_s:.1f} s", flush=True)

            plain = await conn.fetch(_PLAIN_COUNT, tenant, first, datetime.combine(until, datetime.min.time(), UTC))
            per_day = {r["day"].date(): r["count"] for r in plain}
            got = {date.fromisoformat(p["start"]): p["messages"]["total"] for p in body["series"]
                   if p["messages"]["total"]}
            assert got == per_day, "rollup and plain count disagree"
            raw = {r["day"]: (r["p50"], r["p95"]) for r in await conn.fetch(
                _RAW_LATENCY, tenant, first, datetime.combine(until, datetime.min.time(), UTC))}
            worst = max(abs(p["replies"]["latency_ms"][k] - raw[date.fromisoformat(p["start"])][i])
                        / raw[date.fromisoformat(p["start"])][i]
                        for p in body["series"] if p["replies"]["latency_ms"]["count"]
                        for i, k in enumerate(("p50", "p95")))
            print(f"check: turns per day equal the plain count on all {len(per_day)} days; latency p50/p95 within "
                  f"{worst * 100:.2f}% of percentile_cont over the raw latencies", flush=True)

            n = args.requests
            print(f"\nload before timing: {os.getloadavg()}", flush=True)
            rows: list[tuple[str, list[float]]] = []
            rows.append(("baseline: plain count query, 90 days by day (SQL only)", await timed(
                lambda: conn.fetch(_PLAIN_COUNT, tenant, first, datetime.combine(until, datetime.min.time(), UTC)),
                n)))
            rows.append(("GET /v1/analytics 90 days by day (tenant, admin)", await timed(get, n)))
            rows.append(("GET /v1/analytics 90 days by week", await timed(lambda: get(period="week"), max(10, n // 5))))
            rows.append(("GET /v1/analytics 90 days by month", await timed(lambda: get(period="month"), max(10, n // 5))))
            rows.append(("GET /v1/analytics 90 days by day, one user (admin)", await timed(
                lambda: get(user_id="user-7"), max(10, n // 5))))
            rows.append(("GET /v1/analytics 90 days by day, CSV", await timed(lambda: get(format="csv"), max(10, n // 5))))

            live: list[float] = []
            for _ in range(max(10, n // 5)):
                await add_turns(conn, tenant, 200, datetime.now(UTC))
                live += await timed(get, 1)
            rows.append(("GET ... with 200 new turns before each (refresh's share)", live))
            whole = await timed(lambda: conn.execute(
                "SELECT count(*) FROM (" + _facts_everything() + ") f", tenant), 3)  # noqa: S608 - our own SQL
            rows.append(("baseline: the report's facts from the turns, no rollups", whole))
            print(f"load after timing: {os.getloadavg()}\n")
            for name, ms in rows:
                print(line(name, ms))
    finally:
        await rt.stop()
        if not args.keep:
            for table in ("analytics_user_facts", "analytics_tenant_facts", "analytics_tenant_latency",
                          "analytics_refreshes", "delivery_statuses", "reply_sends", "replies", "messages",
                          "conversations"):
                await conn.execute(f"DELETE FROM {table} WHERE tenant_id = $1", tenant)  # noqa: S608 - names above
        await conn.close()


def _facts_everything() -> str:
    """The refresh's fact query with every user-day of the tenant dirty: what each request
    would cost without rollups."""
    from convmem.adapters.postgres.analytics import _EVERYTHING, _FACTS
    return _FACTS.replace("FROM analytics_dirty d", f"FROM ({_EVERYTHING}) d(user_id, day)")


if __name__ == "__main__":
    asyncio.run(main())
