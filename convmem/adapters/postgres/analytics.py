"""Analytics over Postgres: per-day rollups of a tenant's turns (migration 009), refreshed
from the source tables for the user-days that changed since the last refresh, and read per
day, week or month.

Why rollups: a tenant's 90 days by day from the turns themselves means grouping every turn
of those days on each read (a million turns: seconds on a small machine); from the rollups
it is a few hundred rows per day (bench/analytics.py measures both). Why refreshed rather
than counted by the writers: the counts are then a function of the stored rows, so a
redelivered event, a deleted conversation, an erased user or a late delivery status all
come out right by recomputing the user-days they touch, and the recorder's transaction (the
pipeline's hot path) gains no row every turn of a tenant would have to lock.

A refresh (under a per-tenant advisory lock) finds the touched (user, day) pairs through
indexed timestamps since the last refresh less OVERLAP (a transaction that began before the
last refresh and committed after it is still seen), recomputes their facts, moves the
tenant's facts by the difference, and replaces the user's. Reads refresh first, so they are
never stale; the work is what changed since the previous read."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg

from contracts import OFFLINE_MODEL
from convmem.adapters.postgres.pool import PgPool
from convmem.ports.analytics import (
    Analytics,
    AnalyticsScope,
    MinuteCount,
    Period,
    PeriodFacts,
    period_end,
    period_start,
    period_starts,
)

OVERLAP = timedelta(minutes=2)
# A tenant's first refresh reads all its turns (a million: minutes on a busy small machine), far
# past the pool's 30 s statement limit; later ones read what changed since the previous read.
REFRESH_TIMEOUT_S = 1800.0
_LOCK_SPACE = 0x616E616C  # "anal"(ytics): the advisory locks of refreshes, one per tenant

_DAY = "(m.occurred_at AT TIME ZONE 'UTC')::date"

# (user, day) pairs whose facts may have changed since $2, in tenant $1.
_CHANGED = f"""
    SELECT m.user_id, {_DAY} FROM messages m WHERE m.recorded_at >= $2 AND m.tenant_id = $1
    UNION SELECT m.user_id, {_DAY} FROM messages m WHERE m.deleted_at >= $2 AND m.tenant_id = $1
    UNION SELECT m.user_id, {_DAY} FROM replies r JOIN messages m ON m.id = r.in_reply_to
          WHERE r.published_at >= $2 AND r.tenant_id = $1
    UNION SELECT m.user_id, {_DAY} FROM reply_sends s JOIN messages m ON m.id = s.message_id
          WHERE s.updated_at >= $2 AND s.tenant_id = $1
    UNION SELECT m.user_id, {_DAY} FROM delivery_statuses d
          JOIN reply_sends s ON s.tenant_id = d.tenant_id AND s.wamid = d.external_id
          JOIN messages m ON m.id = s.message_id
          WHERE d.recorded_at >= $2 AND d.tenant_id = $1
    UNION SELECT f.user_id, f.day FROM erasure_requests e
          JOIN analytics_user_facts f ON f.tenant_id = e.tenant_id AND f.user_id = e.user_id
          WHERE e.completed_at >= $2 AND e.tenant_id = $1"""

_EVERYTHING = """
    SELECT DISTINCT m.user_id, (m.occurred_at AT TIME ZONE 'UTC')::date FROM messages m
    WHERE m.tenant_id = $1 AND m.deleted_at IS NULL
    UNION SELECT f.user_id, f.day FROM analytics_user_facts f WHERE f.tenant_id = $1"""

_IN_DAY = """{col} >= (d.day::timestamp AT TIME ZONE 'UTC') AND {col} < ((d.day + 1)::timestamp AT TIME ZONE 'UTC')"""

# The facts of the dirty user-days, from the live turns (what every read sees: not deleted).
_FACTS = f"""
    WITH t AS MATERIALIZED (
        SELECT m.id, m.user_id, {_DAY} AS day, m.role, m.channel, m.intent, m.language, m.latency_ms, m.model,
               m.prompt_tokens, m.completion_tokens, m.reply_expected
        FROM analytics_dirty d
        JOIN messages m ON m.tenant_id = $1 AND m.user_id = d.user_id AND {_IN_DAY.format(col="m.occurred_at")}
        WHERE m.deleted_at IS NULL
    )
    SELECT user_id, day, dim, key, count(*) FROM (
        SELECT user_id, day, 'messages' AS dim, role || '/' || channel AS key FROM t
        UNION ALL SELECT user_id, day, 'intent', intent FROM t WHERE role = 'user' AND intent IS NOT NULL
        UNION ALL SELECT user_id, day, 'language', language FROM t WHERE role = 'user' AND language IS NOT NULL
        UNION ALL SELECT user_id, day, 'latency', analytics_latency_bucket(latency_ms)::text FROM t
                  WHERE role = 'assistant' AND latency_ms IS NOT NULL AND model IS DISTINCT FROM '{OFFLINE_MODEL}'
        UNION ALL SELECT user_id, day, 'replies', 'expected' FROM t WHERE role = 'user' AND reply_expected
        UNION ALL SELECT user_id, day, 'replies', 'answered' FROM t WHERE role = 'user' AND reply_expected
                  AND EXISTS (SELECT 1 FROM replies r WHERE r.in_reply_to = t.id AND r.published_at IS NOT NULL)
        UNION ALL SELECT user_id, day, 'replies', 'offline' FROM t WHERE role = 'assistant' AND model = '{OFFLINE_MODEL}'
        UNION ALL SELECT DISTINCT user_id, day, 'active', '' FROM t WHERE role = 'user'
        UNION ALL SELECT c.user_id, d.day, 'conversations', 'new' FROM analytics_dirty d
                  JOIN conversations c ON c.tenant_id = $1 AND c.user_id = d.user_id
                   AND {_IN_DAY.format(col="c.created_at")}
                  WHERE c.status <> 'deleted'
        UNION ALL SELECT t.user_id, t.day, 'whatsapp', w.key FROM t
                  JOIN reply_sends s ON s.message_id = t.id
                  CROSS JOIN LATERAL (
                      SELECT coalesce(bool_or(ds.status IN ('delivered', 'read')), false) AS delivered,
                             coalesce(bool_or(ds.status = 'read'), false) AS read,
                             coalesce(bool_or(ds.status = 'failed'), false) AS failed
                      FROM delivery_statuses ds WHERE ds.tenant_id = s.tenant_id AND ds.external_id = s.wamid) st
                  CROSS JOIN LATERAL (VALUES ('sent', s.state = 'sent'), ('delivered', st.delivered),
                                             ('read', st.read), ('failed', s.state = 'failed' OR st.failed)) w(key, yes)
                  WHERE t.role = 'assistant' AND w.yes
    ) f GROUP BY 1, 2, 3, 4
    UNION ALL
    SELECT user_id, day, 'tokens', v.key, v.n FROM (
        SELECT user_id, day, coalesce(sum(prompt_tokens), 0) AS p, coalesce(sum(completion_tokens), 0) AS c
        FROM t WHERE role = 'assistant' GROUP BY 1, 2) s
    CROSS JOIN LATERAL (VALUES ('prompt', s.p), ('completion', s.c)) v(key, n) WHERE v.n > 0"""

_TEMP_TABLES = """
    CREATE TEMP TABLE IF NOT EXISTS analytics_dirty (user_id text NOT NULL, day date NOT NULL,
                                                     PRIMARY KEY (user_id, day)) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS analytics_new (user_id text NOT NULL, day date NOT NULL, dim text NOT NULL,
                                                   key text NOT NULL, n bigint NOT NULL) ON COMMIT DELETE ROWS"""

_MOVE_TENANT = """
    INSERT INTO analytics_tenant_facts AS a (tenant_id, day, dim, key, n)
    SELECT $1, day, dim, key, sum(n) FROM (
        SELECT day, dim, key, n FROM analytics_new
        UNION ALL
        SELECT f.day, f.dim, f.key, -f.n FROM analytics_dirty d
        JOIN analytics_user_facts f ON f.tenant_id = $1 AND f.user_id = d.user_id AND f.day = d.day
    ) x GROUP BY day, dim, key HAVING sum(n) <> 0
    ON CONFLICT (tenant_id, day, dim, key) DO UPDATE SET n = a.n + excluded.n"""


def _percentiles(table: str, where: str, period: str) -> str:
    """percentile_cont per period over the latency facts `where` selects, in Postgres: for each
    q, the values at the two ranks around q * (n - 1) (found from the running count of the
    ordered buckets), interpolated. Rows: start, q, total, value."""
    return f"""
    WITH b AS (
        SELECT date_trunc({period}, day::timestamp)::date AS start, key::integer AS bucket, sum(n)::bigint AS n
        FROM {table} WHERE {where} AND dim = 'latency' GROUP BY 1, 2),
    c AS (
        SELECT start, analytics_latency_value(bucket) AS v, n,
               (sum(n) OVER (PARTITION BY start ORDER BY bucket))::bigint AS upto,
               (sum(n) OVER (PARTITION BY start))::bigint AS total FROM b),
    r AS (
        SELECT start, total, q, floor(q * (total - 1))::bigint AS lo, ceil(q * (total - 1))::bigint AS hi,
               q * (total - 1) - floor(q * (total - 1)) AS frac
        FROM (SELECT DISTINCT start, total FROM c) t CROSS JOIN unnest(ARRAY[0.5, 0.95]::float8[]) q)
    SELECT r.start, r.q, r.total, lo.v + (hi.v - lo.v) * r.frac AS value
    FROM r
    JOIN c lo ON lo.start = r.start AND lo.upto > r.lo AND lo.upto - lo.n <= r.lo
    JOIN c hi ON hi.start = r.start AND hi.upto > r.hi AND hi.upto - hi.n <= r.hi"""


# The tenant's stored percentiles of the periods holding a refreshed day. $1 tenant, $2 period,
# $3 the periods' starts, $4/$5 the days they span.
_STORE_LATENCY = f"""
    INSERT INTO analytics_tenant_latency (tenant_id, period, start, n, p50, p95)
    SELECT $1, $2, start, max(total), max(value) FILTER (WHERE q = 0.5), max(value) FILTER (WHERE q = 0.95)
    FROM ({_percentiles("analytics_tenant_facts",
                        "tenant_id = $1 AND day >= $4 AND day < $5 AND date_trunc($2, day::timestamp)::date = ANY($3)",
                        "$2")}) p
    GROUP BY start"""


def _scope(scope: AnalyticsScope, first: int = 1) -> tuple[str, str, list[Any]]:
    """The table and WHERE clause of an analytics read: the tenant's sums, or one user's
    facts. The one place analytics reads are scoped."""
    if scope.user_id is None:
        return "analytics_tenant_facts", f"tenant_id = ${first}", [scope.tenant_id]
    return "analytics_user_facts", f"tenant_id = ${first} AND user_id = ${first + 1}", [scope.tenant_id, scope.user_id]


async def _store_latency(c: asyncpg.Connection, tenant_id: str, days: Sequence[date]) -> None:
    period: Period
    for period in ("day", "week", "month"):
        starts = sorted({period_start(d, period) for d in days})
        await c.execute("DELETE FROM analytics_tenant_latency WHERE tenant_id = $1 AND period = $2 AND start = ANY($3)",
                        tenant_id, period, starts, timeout=REFRESH_TIMEOUT_S)
        await c.execute(_STORE_LATENCY, tenant_id, period, starts, starts[0], period_end(starts[-1], period),
                        timeout=REFRESH_TIMEOUT_S)


class PgAnalytics(Analytics):
    def __init__(self, pool: PgPool) -> None:
        self._pool = pool

    async def refresh(self, tenant_id: str) -> datetime:
        async def tx(c: asyncpg.Connection) -> datetime:
            async def sql(query: str, *args: Any) -> None:
                await c.execute(query, *args, timeout=REFRESH_TIMEOUT_S)

            async with c.transaction():
                await sql("SELECT pg_advisory_xact_lock($1, hashtext($2))", _LOCK_SPACE, tenant_id)
                started: datetime = await c.fetchval("SELECT now()")
                last = await c.fetchval("SELECT refreshed_at FROM analytics_refreshes WHERE tenant_id = $1", tenant_id)
                await sql(_TEMP_TABLES)
                if last is None:
                    await sql(f"INSERT INTO analytics_dirty (user_id, day) {_EVERYTHING}", tenant_id)
                else:
                    await sql(f"INSERT INTO analytics_dirty (user_id, day) {_CHANGED}", tenant_id, last - OVERLAP)
                dirty = await c.fetchval("SELECT count(*) FROM analytics_dirty", timeout=REFRESH_TIMEOUT_S)
                if dirty:
                    if dirty > 500:  # the planner's estimate of a fresh temp table is blind
                        await sql("ANALYZE analytics_dirty")
                    await sql(f"INSERT INTO analytics_new (user_id, day, dim, key, n) {_FACTS}", tenant_id)
                    await sql(_MOVE_TENANT, tenant_id)
                    await sql("""DELETE FROM analytics_tenant_facts WHERE tenant_id = $1 AND n = 0
                                   AND day IN (SELECT DISTINCT day FROM analytics_dirty)""", tenant_id)
                    await sql("""DELETE FROM analytics_user_facts f USING analytics_dirty d
                                 WHERE f.tenant_id = $1 AND f.user_id = d.user_id AND f.day = d.day""", tenant_id)
                    await sql("""INSERT INTO analytics_user_facts (tenant_id, user_id, day, dim, key, n)
                                 SELECT $1, user_id, day, dim, key, n FROM analytics_new""", tenant_id)
                    days = await c.fetch("SELECT DISTINCT day FROM analytics_dirty", timeout=REFRESH_TIMEOUT_S)
                    await _store_latency(c, tenant_id, [r["day"] for r in days])
                await sql("""INSERT INTO analytics_refreshes (tenant_id, refreshed_at) VALUES ($1, $2)
                             ON CONFLICT (tenant_id) DO UPDATE SET refreshed_at = excluded.refreshed_at""",
                          tenant_id, started)
                return started

        return await self._pool.run(tx)

    async def period_facts(self, scope: AnalyticsScope, period: Period, since: date, until: date
                           ) -> list[PeriodFacts]:
        table, where, args = _scope(scope, 4)
        # A day's distinct users add up over the tenant's users; over a week they do not.
        active_by_sum = period == "day" or scope.user_id is not None
        skip_active = "" if active_by_sum else "AND dim <> 'active'"

        async def read(c: asyncpg.Connection) -> tuple[list[asyncpg.Record], dict[date, dict[str, float | None]]]:
            counts = await c.fetch(
                f"""SELECT date_trunc($1, day::timestamp)::date AS start, dim, key, sum(n)::bigint AS n
                    FROM {table} WHERE {where} AND day >= $2 AND day < $3 AND dim <> 'latency' {skip_active}
                    GROUP BY 1, 2, 3""", period, since, until, *args)
            return counts, await self._latency(c, scope, period, since, until)

        rows, latency = await self._pool.run(read)
        found: dict[date, PeriodFacts] = {}

        def of(start: date) -> PeriodFacts:
            return found.setdefault(start, PeriodFacts(start, {}, {}))

        for r in rows:
            of(r["start"]).facts.setdefault(r["dim"], {})[r["key"]] = r["n"]
        for start, figures in latency.items():
            of(start).latency_ms.update(figures)
        if scope.user_id is not None:
            for p in found.values():  # one user: active or not, whatever the number of days
                if "active" in p.facts:
                    p.facts["active"] = {"": 1}
        elif not active_by_sum:
            active = await self._pool.run(lambda c: c.fetch(
                """SELECT date_trunc($1, day::timestamp)::date AS start, count(DISTINCT user_id) AS n
                   FROM analytics_user_facts WHERE tenant_id = $4 AND dim = 'active' AND day >= $2 AND day < $3
                   GROUP BY 1""", period, since, until, scope.tenant_id))
            for r in active:
                of(r["start"]).facts["active"] = {"": r["n"]}
        return [found[start] for start in sorted(found)]

    @staticmethod
    async def _latency(c: asyncpg.Connection, scope: AnalyticsScope, period: Period, since: date, until: date
                       ) -> dict[date, dict[str, float | None]]:
        """A tenant's whole periods from the stored percentiles; a user's periods, and the
        tenant's periods the range cuts, from the latency facts of the days asked for."""
        out: dict[date, dict[str, float | None]] = {}
        table, where, args = _scope(scope, 4)
        if scope.user_id is None:
            whole = [s for s in period_starts(since, until, period) if s >= since and period_end(s, period) <= until]
            for r in await c.fetch(
                    """SELECT start, n, p50, p95 FROM analytics_tenant_latency
                       WHERE tenant_id = $1 AND period = $2 AND start = ANY($3)""", scope.tenant_id, period, whole):
                out[r["start"]] = {"count": r["n"], "p50": round(r["p50"], 1), "p95": round(r["p95"], 1)}
            cut = [s for s in period_starts(since, until, period) if s not in whole]
            if not cut:
                return out
            where += f" AND date_trunc($1, day::timestamp)::date = ANY(${len(args) + 4})"
            args = [*args, cut]
        for r in await c.fetch(_percentiles(table, f"{where} AND day >= $2 AND day < $3", "$1"),
                               period, since, until, *args):
            out.setdefault(r["start"], {}).update(
                {"count": r["total"], f"p{round(r['q'] * 100)}": round(r["value"], 1)})
        return out

    async def turns_per_minute(self, scope: AnalyticsScope, since: datetime, until: datetime) -> list[MinuteCount]:
        _, where, args = _scope(scope, 3)
        rows: Sequence[asyncpg.Record] = await self._pool.run(lambda c: c.fetch(
            f"""SELECT date_trunc('minute', recorded_at) AS minute, role, count(*) AS n FROM messages
                WHERE recorded_at >= $1 AND recorded_at < $2 AND {where}
                GROUP BY 1, 2 ORDER BY 1, 2""", since, until, *args))
        return [MinuteCount(r["minute"], r["role"], r["n"]) for r in rows]
