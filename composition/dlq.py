"""`convmem dlq list | show | replay`: the dead letters of every consumed topic, selected by
topic, consumer group, time and reason; one shown with its headers and envelope (message
text and metadata withheld, sealed fields left sealed); replayed to the group that failed
them, each dead letter once (convmem.ports.ReplayLog), with a dry run."""

from __future__ import annotations

import heapq
import json
import re
from collections.abc import Iterable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from composition.roles import ROLES, consumer_groups
from composition.tables import table, when
from convmem.adapters.postgres import PostgresStorage
from convmem.delivery.dead_letters import DeadLetter, Republisher, Selection, dead_letter_topics, read_one, scan
from convmem.ports import Position, ReplayLog
from convmem.settings import CommonSettings

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_WITHHELD = ("text", "metadata")  # personal content: never printed, sealed or not


def instant(text: str, now: datetime | None = None) -> datetime:
    """`2h`, `30m`, `7d` (that long ago) or an ISO 8601 time (UTC unless it says otherwise)."""
    found = _RELATIVE.match(text.strip())
    if found:
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[found[2]]: float(found[1])})
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not a time: {text!r} (say 2h, 30m, 7d or 2026-11-26T09:00:00Z)") from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def group_names(values: Iterable[str], prefix: str) -> frozenset[str]:
    """Each group as given, and as named under the configured prefix (`indexer.embed`)."""
    return frozenset(n for v in values for n in (v, f"{prefix}.{v}"))


def envelope(value: bytes) -> dict[str, Any] | str:
    """The event's fields with its personal content withheld; a record that is not a JSON
    object is described by its size only (it may be anything, text included)."""
    try:
        decoded = json.loads(value)
    except ValueError:
        return f"<{len(value)} bytes, not JSON>"
    return _withhold(decoded) if isinstance(decoded, dict) else f"<{len(value)} bytes, JSON but not an object>"


def _withhold(obj: Any) -> Any:
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            if k in _WITHHELD and v:
                out[k] = f"<withheld: {len(v)} {'characters' if isinstance(v, str) else 'entries'}>"
            elif k == "sealed" and isinstance(v, dict):
                out[k] = {"key_id": v.get("key_id"), "box": f"<sealed: {len(str(v.get('box', '')))} base64 characters>"}
            else:
                out[k] = _withhold(v)
        return out
    return [_withhold(v) for v in obj] if isinstance(obj, list) else obj


def key_text(letter: DeadLetter) -> str:
    """The key as text (ours are conversation ids); a key that is not printable text, in hex."""
    if letter.key is None:
        return ""
    try:
        text = letter.key.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    return text if text and text.isprintable() else "0x" + letter.key.hex()


def _summary(letter: DeadLetter, replayed: bool | None) -> dict[str, Any]:
    original = letter.original
    return {"position": str(letter.position), "group": letter.group, "failed_at": letter.failed_at.isoformat(),
            "reason": letter.reason, "key": key_text(letter), "original": None if original is None else str(original),
            "original_at": None if letter.original_at is None else letter.original_at.isoformat(),
            "replay_of": letter.replay_of, "replayed": replayed}


async def _storage(settings: CommonSettings) -> PostgresStorage:
    return await PostgresStorage.connect(settings.database_url.get_secret_value(), max_size=2)


async def find_letters(bootstrap: str, replays: ReplayLog, topics: Iterable[str], sel: Selection,
                       limit: int) -> tuple[int, list[DeadLetter], list[dict[str, Any]]]:
    """How many dead letters match, and the latest `limit` of them (oldest first) with their
    summaries (what `dlq list --json` prints for each)."""
    newest: list[tuple[datetime, Position, DeadLetter]] = []  # a heap of the `limit` latest failures
    matched = 0
    async for batch in scan(bootstrap, dead_letter_topics(topics), since=sel.since):
        for letter in batch:
            if sel.admits(letter):
                matched += 1
                entry = (letter.failed_at, letter.position, letter)
                (heapq.heappush if len(newest) < limit else heapq.heappushpop)(newest, entry)
    shown = [d for *_, d in sorted(newest)]
    replayed = await replays.replayed([d.position for d in shown])
    return matched, shown, [_summary(d, d.position in replayed) for d in shown]


async def list_letters(settings: CommonSettings, topics: Iterable[str], sel: Selection, limit: int,
                       as_json: bool, out: TextIO) -> int:
    storage = await _storage(settings)
    try:
        matched, shown, rows = await find_letters(settings.kafka_bootstrap, storage.replays, topics, sel, limit)
    finally:
        await storage.close()
    if as_json:
        json.dump({"matched": matched, "shown": len(rows), "dead_letters": rows}, out, indent=2)
        out.write("\n")
        return 0
    out.write(table(["POSITION", "GROUP", "FAILED AT (UTC)", "REASON", "KEY", "REPLAY OF", "REPLAYED"],
                    [[r["position"], r["group"] or "-", when(d.failed_at), r["reason"][:80], r["key"],
                      r["replay_of"] or "", "yes" if r["replayed"] else ""] for r, d in zip(rows, shown, strict=True)]))
    out.write(f"\n{matched} dead letter(s) matched" + (f", the latest {limit} shown\n" if matched > limit else "\n"))
    return 0


async def letter_detail(bootstrap: str, replays: ReplayLog, position: Position,
                        tenant: str | None = None) -> dict[str, Any] | None:
    """One dead letter as `dlq show --json` prints it (text and metadata withheld), or None
    (also when it names another tenant than `tenant`)."""
    letter = await read_one(bootstrap, position)
    if letter is None or not Selection(tenant=tenant).admits(letter):
        return None
    replayed = position in await replays.replayed([position])
    return _summary(letter, replayed) | {"headers": letter.headers, "event": envelope(letter.value)}


async def show_letter(settings: CommonSettings, position: Position, as_json: bool, out: TextIO) -> int:
    storage = await _storage(settings)
    try:
        shown = await letter_detail(settings.kafka_bootstrap, storage.replays, position)
    finally:
        await storage.close()
    if shown is None:
        out.write(f"no dead letter at {position}\n")
        return 1
    if as_json:
        json.dump(shown, out, indent=2)
        out.write("\n")
        return 0
    for name in ("position", "group", "failed_at", "reason", "key", "original", "original_at", "replay_of", "replayed"):
        out.write(f"{name}: {shown[name]}\n")
    out.write("headers:\n" + "".join(f"  {k}: {v}\n" for k, v in sorted(shown["headers"].items())))
    out.write("event:\n" + json.dumps(shown["event"], indent=2) + "\n")
    return 0


@dataclass
class Replay:
    """What a replay did, or (dry run) would do."""

    dry_run: bool
    replayed: int = 0
    already_replayed: int = 0
    filtered_out: int = 0
    not_replayable: int = 0
    records: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "replayed": self.replayed, "already_replayed": self.already_replayed,
                "filtered_out": self.filtered_out, "not_replayable": self.not_replayable, "records": self.records}

    def line(self) -> str:
        verb = "would replay" if self.dry_run else "replayed"
        return (f"{'dry run: ' if self.dry_run else ''}{verb} {self.replayed}, already replayed "
                f"{self.already_replayed}, filtered out {self.filtered_out}, not replayable {self.not_replayable}")


def replay_target(letter: DeadLetter, known: set[tuple[str, str]]) -> str | None:
    """The group to replay `letter` for: the one that failed it, when its header names a
    group that consumes the original topic (under any prefix); None otherwise (a record no
    policy wrote, or one written before dead letters named their group)."""
    original, group = letter.original, letter.group
    if original is None or not group:
        return None
    fits = any(group.endswith(suffix) and len(group) > len(suffix) for suffix, t in known if t == original.topic)
    return group if fits else None


async def replay_selection(bootstrap: str, replays: ReplayLog, topics: Iterable[str], sel: Selection,
                           dry_run: bool) -> Replay:
    """Send the selected dead letters back to the groups that failed them, each once (or,
    dry run, say what would be sent)."""
    known = set(consumer_groups(ROLES, ""))  # (".indexer.embed", topic): each group's name after its prefix
    report = Replay(dry_run)
    async with AsyncExitStack() as stack:
        publisher = None if dry_run else await stack.enter_async_context(Republisher(bootstrap))
        async for batch in scan(bootstrap, dead_letter_topics(topics), since=sel.since):
            chosen = [d for d in batch if sel.admits(d)]
            report.filtered_out += len(batch) - len(chosen)
            done = await replays.replayed([d.position for d in chosen])
            for letter in chosen:
                await _replay_one(letter, replay_target(letter, known), done, replays, publisher, report)
    return report


async def replay_letters(settings: CommonSettings, topics: Iterable[str], sel: Selection, dry_run: bool,
                         as_json: bool, out: TextIO) -> int:
    storage = await _storage(settings)
    try:
        report = await replay_selection(settings.kafka_bootstrap, storage.replays, topics, sel, dry_run)
    finally:
        await storage.close()
    if as_json:
        json.dump(report.as_json(), out, indent=2)
        out.write("\n")
    else:
        for r in report.records:
            out.write(f"{r['position']}  {r['outcome']}" + (f" -> {r['to']}" if r.get("to") else "")
                      + (f"  for {r['group']}" if r.get("group") else "") + "\n")
        out.write(report.line() + "\n")
    return 0


async def _replay_one(letter: DeadLetter, group: str | None, done: set[Position], replays: ReplayLog,
                      publisher: Republisher | None, report: Replay) -> None:
    entry: dict[str, Any] = {"position": str(letter.position), "group": group}
    report.records.append(entry)
    if group is None:
        report.not_replayable += 1
        entry["outcome"] = f"not replayable: names no consumer group of its topic ({letter.group or 'none'})"
    elif letter.position in done:
        report.already_replayed += 1
        entry["outcome"] = "already replayed"
    elif publisher is None:  # a dry run
        report.replayed += 1
        entry["outcome"] = "would replay"
    else:
        sent: list[Position] = []

        async def send() -> None:
            sent.append(await publisher.send(letter, group))

        fresh = await replays.replay_once(letter.position, group, send)
        report.replayed += fresh
        report.already_replayed += not fresh
        entry["outcome"] = "replayed" if fresh else "already replayed"
        if sent:
            entry["to"] = str(sent[0])
