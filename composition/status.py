"""`convmem status`: how far behind the pipeline is. Consumer lag per group and partition
(with the age of the oldest record each lagging partition has not handled), the size of
each dead-letter topic, and the turns waiting for a stage: unrecorded (accepted at the edge,
not yet a row: the lag of the inbound recorder, as nothing else keeps them), unembedded and
unreplied (from Postgres)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from composition.roles import ROLES, consumer_groups
from composition.tables import age, table, when
from contracts import topics
from convmem.adapters.postgres import PostgresStorage
from convmem.delivery.dead_letters import dead_letter_topics
from convmem.ops.consumer_lag import PartitionLag, consumer_lag, group_members, topic_sizes
from convmem.ports import Backlog, Pending
from convmem.settings import CommonSettings

RECORDER = "indexer.record-inbound"  # the group whose lag is the inbound turns not yet recorded


def unrecorded(lags: Sequence[PartitionLag], prefix: str) -> Pending:
    mine = [p for p in lags if p.group == f"{prefix}.{RECORDER}" and p.topic == topics.INBOUND]
    stamps = [p.oldest_pending_at for p in mine if p.oldest_pending_at is not None]
    return Pending(sum(p.lag for p in mine), min(stamps, default=None))


def _pending(p: Pending, now: datetime, **extra: Any) -> dict[str, Any]:
    return {"count": p.count, "oldest_at": None if p.oldest_at is None else p.oldest_at.isoformat(),
            "oldest_age_s": None if p.oldest_at is None else round((now - p.oldest_at).total_seconds(), 3), **extra}


Members = dict[str, int | None]  # consumers per group now; None: unknown


def as_json(now: datetime, prefix: str, tenant: str | None, lags: Sequence[PartitionLag], dlq: dict[str, int],
            backlog: dict[str, Pending], members: Members | None = None) -> dict[str, Any]:
    members = members or {}
    return {
        "checked_at": now.isoformat(), "group_prefix": prefix, "tenant": tenant,
        "consumer_groups": [
            {"group": g, "topic": t, "lag": sum(p.lag for p in parts), "members": members.get(g),
             "running": None if members.get(g) is None else bool(members[g]),
             "partitions": [{"partition": p.partition, "committed": p.committed, "end": p.end, "lag": p.lag,
                             "oldest_pending_at": None if p.oldest_pending_at is None else p.oldest_pending_at.isoformat()}
                            for p in parts]}
            for (g, t), parts in _by_group(lags).items()],
        "dead_letters": dlq,
        "backlog": {
            "unrecorded": _pending(backlog["unrecorded"], now, source=f"lag of {prefix}.{RECORDER}, every tenant"),
            "unembedded": _pending(backlog["unembedded"], now),
            "unreplied": _pending(backlog["unreplied"], now),
        },
    }


def _by_group(lags: Sequence[PartitionLag]) -> dict[tuple[str, str], list[PartitionLag]]:
    groups: dict[tuple[str, str], list[PartitionLag]] = {}
    for p in lags:
        groups.setdefault((p.group, p.topic), []).append(p)
    return groups


def _oldest(parts: Sequence[PartitionLag]) -> datetime | None:
    return min((p.oldest_pending_at for p in parts if p.oldest_pending_at is not None), default=None)


def lag_rows(lags: Sequence[PartitionLag], now: datetime, per_partition: bool,
             members: Members | None = None) -> tuple[list[str], list[list[object]]]:
    """One row per group (its lag, partition by partition in one cell), or per partition. A
    group nothing consumes as (the sender of a deployment without WhatsApp credentials, a role
    left out) says `not running` instead of a lag nobody is working off, and how many records
    wait."""
    stopped = {g for g, n in (members or {}).items() if n == 0}
    if per_partition:
        return (["CONSUMER GROUP", "TOPIC", "PARTITION", "COMMITTED", "END", "LAG", "OLDEST PENDING"],
                [[p.group, p.topic, p.partition, "-" if p.committed is None else p.committed, p.end,
                  "not running" if p.group in stopped else p.lag,
                  age(p.oldest_pending_at, now) if p.lag else ""] for p in lags])
    rows: list[list[object]] = []
    for (group, topic), parts in _by_group(lags).items():
        never = all(p.committed is None for p in parts)
        cells = " ".join(f"{p.partition}:{p.lag}" for p in parts)
        waiting = sum(p.lag for p in parts)
        if group in stopped:
            rows.append([group, topic, "not running", f"{waiting} records waiting", ""])
            continue
        rows.append([group, topic, waiting, "never committed" if never else cells,
                     age(_oldest(parts), now) if any(p.lag for p in parts) else ""])
    return ["CONSUMER GROUP", "TOPIC", "LAG", "LAG BY PARTITION", "OLDEST PENDING"], rows


def as_text(now: datetime, prefix: str, tenant: str | None, lags: Sequence[PartitionLag], dlq: dict[str, int],
            backlog: dict[str, Pending], per_partition: bool = False, members: Members | None = None) -> str:
    scope = f" (tenant {tenant}; unrecorded counts every tenant)" if tenant else ""
    return "\n\n".join([
        f"convmem status at {when(now)} UTC, consumer groups {prefix}.*",
        table(*lag_rows(lags, now, per_partition, members)),
        table(["DEAD-LETTER TOPIC", "RECORDS"], [[t, n] for t, n in dlq.items()]),
        f"turns waiting{scope}:\n" + table(["STAGE", "TURNS", "OLDEST", "AGE"],
                                           [[k, v.count, when(v.oldest_at), age(v.oldest_at, now)]
                                            for k, v in backlog.items()]),
    ]) + "\n"


@dataclass(frozen=True)
class StatusRead:
    lags: list[PartitionLag]
    dlq: dict[str, int]
    backlog: dict[str, Pending]
    members: Members

    def as_json(self, now: datetime, prefix: str, tenant: str | None) -> dict[str, Any]:
        return as_json(now, prefix, tenant, self.lags, self.dlq, self.backlog, self.members)


async def read_status(bootstrap: str, backlog_of: Backlog, prefix: str, tenant: str | None) -> StatusRead:
    """Lag per group and partition, each group's members, the size of each dead-letter topic,
    and the turns waiting per stage (`backlog_of`: the Postgres backlog port)."""
    groups = consumer_groups(ROLES, prefix)
    lags = await consumer_lag(bootstrap, groups)
    members = await group_members(bootstrap, [g for g, _ in groups])
    dlq = await topic_sizes(bootstrap, dead_letter_topics())
    backlog = {"unrecorded": unrecorded(lags, prefix), "unembedded": await backlog_of.unembedded(tenant),
               "unreplied": await backlog_of.unreplied(tenant)}
    return StatusRead(lags, dlq, backlog, members)


async def show_status(settings: CommonSettings, prefix: str, tenant: str | None, json_out: bool, out: TextIO,
                      per_partition: bool = False) -> int:
    storage = await PostgresStorage.connect(settings.database_url.get_secret_value(), max_size=2)
    try:
        read = await read_status(settings.kafka_bootstrap, storage.backlog, prefix, tenant)
    finally:
        await storage.close()
    now = datetime.now(UTC)
    if json_out:
        json.dump(read.as_json(now, prefix, tenant), out, indent=2)
        out.write("\n")
    else:
        out.write(as_text(now, prefix, tenant, read.lags, read.dlq, read.backlog, per_partition, read.members))
    return 0
