"""`convmem`: the one command line. Sub-commands: stack, run, demo, docs, migrate, retention, import, export,
status, dlq, index."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from convmem.errors import IndexUnavailable
from convmem.settings import ConfigError

# Exit code of a command that cannot use the vector index as things are (another process
# holds the embedded index, it holds another model's vectors, a rebuild of it is running).
INDEX_UNAVAILABLE = 3


def _stack(args: argparse.Namespace) -> int:
    from convmem.devstack.stack import Stack, StackError, format_env
    from convmem.settings import ExternalServices, StackSettings

    stack = Stack(StackSettings(), ExternalServices())
    try:
        if args.action == "fetch":
            stack.fetch_kafka()
        elif args.action == "up":
            stack.up()
            from convmem.delivery.provisioning import ensure_topics
            from convmem.settings import CommonSettings, load

            common = load(CommonSettings)
            asyncio.run(ensure_topics(common.kafka_bootstrap))
            from convmem.migrations import migrate

            asyncio.run(migrate(common.database_url.get_secret_value()))
            print(format_env(stack.status()))
        elif args.action == "down":
            stack.down()
        else:
            print(format_env(stack.status()))
    except StackError as exc:
        print(f"convmem stack {args.action}: {exc}", file=sys.stderr)
        return 1
    return 0


def _run(args: argparse.Namespace) -> int:
    from composition.companion import processes_for
    from composition.runtime import ROLES, run_roles
    from convmem.settings import CommonSettings, load

    roles = list(ROLES) if args.role == "all" else [args.role]
    groups = None if args.groups is None else [g.strip() for g in args.groups.split(",") if g.strip()]
    # `run all` uses a second process for the groups that need no vector index (two cores).
    companion = args.role == "all" and groups is None and processes_for(load(CommonSettings).run_all_processes) > 1
    asyncio.run(run_roles(roles, http_port=args.port, groups=groups, companion=companion))
    # Stopped cleanly: every connection, consumer and the index were closed, in order, within
    # the grace period. What the interpreter would still do is finalize the native libraries'
    # objects (ONNX runtime's thread pools, the embedded index), which took seconds on a busy
    # machine: time a rollout waits for and nothing needs. Exit now, output flushed.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _demo(args: argparse.Namespace) -> int:
    from composition.demo import run_demo

    return asyncio.run(run_demo(with_workers=args.with_workers))


def _docs(args: argparse.Namespace) -> int:
    from composition.docs import check_documents, write_documents

    if args.action == "write":
        for path in write_documents():
            print(f"wrote {path}")
        return 0
    stale = check_documents()
    for path in stale:
        print(f"stale: {path} (run `convmem docs write`)", file=sys.stderr)
    return 1 if stale else 0


def _migrate(args: argparse.Namespace) -> int:
    from convmem.migrations import migrate
    from convmem.settings import CommonSettings, load

    applied = asyncio.run(migrate(load(CommonSettings).database_url.get_secret_value()))
    print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none'}")
    return 0


def _retention(args: argparse.Namespace) -> int:
    from composition.runtime import run_retention_sweep

    events = asyncio.run(run_retention_sweep())
    purged = sum(getattr(e, "messages", 0) for e in events)
    scrubbed = sum(1 for e in events if type(e).__name__ == "PiiScrubbed")
    print(f"purged {purged} expired message(s); scrubbed personal data from {scrubbed} turn(s)")
    return 0


def _import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from composition.bulk import run_import

    path = Path(args.file)
    if not path.is_file():
        print(f"convmem import: no such file: {args.file}", file=sys.stderr)
        return 2
    with path.open("rb") as counting:
        total = sum(1 for _ in counting)
    with path.open("rb") as lines:
        return asyncio.run(run_import(lines, total, batch=args.batch, keep_expired=args.keep_expired))


def _export(args: argparse.Namespace) -> int:
    from composition.bulk import run_export

    if args.out is None:
        return asyncio.run(run_export(args.tenant, args.user, args.format, sys.stdout.buffer))
    with open(args.out, "wb") as out:
        return asyncio.run(run_export(args.tenant, args.user, args.format, out))


def _operate(command: str, run: Callable[[], Coroutine[Any, Any, int]]) -> int:
    """An operator command against the running system: an unreachable Kafka or Postgres is
    one line on standard error and exit status 1, not a traceback."""
    from aiokafka.errors import KafkaError

    from convmem.errors import ConvmemError

    try:
        return asyncio.run(run())
    except (KafkaError, ConvmemError, OSError, TimeoutError) as exc:
        text = str(exc) if str(exc).startswith(type(exc).__name__) else f"{type(exc).__name__}: {exc}"
        print(f"convmem {command}: {text}", file=sys.stderr)
        return 1


def _status(args: argparse.Namespace) -> int:
    from composition.status import show_status
    from convmem.settings import CommonSettings, load

    settings = load(CommonSettings)
    prefix = args.prefix or settings.group_prefix
    return _operate("status", lambda: show_status(settings, prefix, args.tenant, args.json, sys.stdout,
                                                  per_partition=args.partitions))


def _dlq(args: argparse.Namespace) -> int:
    import re

    from composition import dlq
    from convmem.delivery.dead_letters import Selection
    from convmem.ports import Position
    from convmem.settings import CommonSettings, load

    settings = load(CommonSettings)
    try:
        if args.action == "show":
            position = Position.parse(args.position)
            return _operate("dlq show", lambda: dlq.show_letter(settings, position, args.json, sys.stdout))
        positions = frozenset(Position.parse(p) for p in getattr(args, "positions", []))
        sel = Selection(groups=dlq.group_names(args.group, settings.group_prefix),
                        since=None if args.since is None else dlq.instant(args.since),
                        until=None if args.until is None else dlq.instant(args.until),
                        reason=args.reason, reason_pattern=None if args.reason_regex is None else re.compile(
                            args.reason_regex), positions=positions)
    except (ValueError, re.error) as exc:
        print(f"convmem dlq {args.action}: {exc}", file=sys.stderr)
        return 2
    topics = args.topic or sorted({p.topic for p in positions})
    if args.action == "list":
        return _operate("dlq list", lambda: dlq.list_letters(settings, topics, sel, args.limit, args.json, sys.stdout))
    if sel == Selection() and not args.all:
        print("convmem dlq replay: name dead letters (positions or filters), or say --all", file=sys.stderr)
        return 2
    return _operate("dlq replay", lambda: dlq.replay_letters(settings, topics, sel, args.dry_run, args.json,
                                                             sys.stdout))


def _selection_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--topic", action="append", default=[],
                   help="a consumed topic or its .dlq (repeatable; default: every dead-letter topic)")
    p.add_argument("--group", action="append", default=[],
                   help="the consumer group that failed it, full or without the prefix (repeatable)")
    p.add_argument("--since", help="failed at or after: 2h, 30m, 7d ago, or an ISO 8601 time")
    p.add_argument("--until", help="failed before: 2h, 30m, 7d ago, or an ISO 8601 time")
    p.add_argument("--reason", help="part of the reason, any case")
    p.add_argument("--reason-regex", help="a regular expression the reason must match")
    p.add_argument("--json", action="store_true", help="JSON instead of a table")


def _index(args: argparse.Namespace) -> int:
    from composition.index_commands import run_optimize, run_rebuild
    from convmem.errors import ConvmemError

    try:
        if args.action == "optimize":
            return asyncio.run(run_optimize())
        return asyncio.run(run_rebuild(args.tenant, args.model, args.dimension, args.restart, args.batch))
    except IndexUnavailable:
        raise  # exit status 3, below
    except (ConvmemError, OSError, TimeoutError) as exc:  # Postgres or the Qdrant server not there
        print(f"convmem index {args.action}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="convmem", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("stack", help="local Kafka + Postgres")
    p.add_argument("action", choices=["up", "down", "status", "fetch"])
    p.set_defaults(fn=_stack)

    p = sub.add_parser("run", help="run a worker role, or all of them in one process")
    p.add_argument("role", choices=["ingest", "indexer", "responder", "retention", "sender", "all"])
    p.add_argument("--port", type=int, default=None, help="HTTP port for ingest (default from settings)")
    p.add_argument("--groups", default=None, metavar="GROUP,...",
                   help="consume only these of the role's consumer groups, named without the prefix "
                        "(e.g. indexer.embed or indexer.record-inbound,indexer.statuses): one Deployment per group")
    p.set_defaults(fn=_run)

    p = sub.add_parser("demo", help="drive a scripted multi-conversation exchange")
    p.add_argument("--with-workers", action="store_true", help="start all workers in this process")
    p.set_defaults(fn=_demo)

    p = sub.add_parser("docs", help="generate the AsyncAPI and OpenAPI documents")
    p.add_argument("action", choices=["write", "check"])
    p.set_defaults(fn=_docs)

    p = sub.add_parser("migrate", help="apply database migrations")
    p.set_defaults(fn=_migrate)

    p = sub.add_parser("retention", help="retention sweeps")
    p.add_argument("action", choices=["run"])
    p.set_defaults(fn=_retention)

    p = sub.add_parser("import", help="import chat history from a JSON Lines file (no replies are generated)")
    p.add_argument("file", help="JSON Lines: tenant, user, conversation, role, text, external_id, timestamp, metadata")
    p.add_argument("--batch", type=int, default=500, help="messages per published batch")
    p.add_argument("--keep-expired", action="store_true",
                   help="also import messages older than the tenant's message retention (the next sweep deletes them)")
    p.set_defaults(fn=_import)

    p = sub.add_parser("export", help="everything stored about one user, as JSON or CSV (streamed)")
    p.add_argument("--tenant", default="default")
    p.add_argument("--user", required=True)
    p.add_argument("--format", choices=["json", "csv"], default="json")
    p.add_argument("--out", default=None, help="file to write (default: standard output)")
    p.set_defaults(fn=_export)

    p = sub.add_parser("status", help="consumer lag, dead-letter topic sizes, turns waiting for each stage")
    p.add_argument("--json", action="store_true", help="JSON instead of tables")
    p.add_argument("--prefix", default=None, help="consumer group prefix (default: CONVMEM_GROUP_PREFIX)")
    p.add_argument("--tenant", default=None, help="count unembedded and unreplied turns of this tenant only")
    p.add_argument("--partitions", action="store_true", help="a row per partition, with committed and end offsets")
    p.set_defaults(fn=_status)

    p = sub.add_parser("dlq", help="dead letters: list, show one, replay to the group that failed them")
    dlq_sub = p.add_subparsers(dest="action", required=True)
    q = dlq_sub.add_parser("list", help="dead letters as a table (position, group, failed at, reason, key)")
    _selection_options(q)
    q.add_argument("--limit", type=int, default=200, help="show at most this many, the latest (all are counted)")
    q = dlq_sub.add_parser("show", help="one dead letter: headers and event fields (message text withheld)")
    q.add_argument("position", help="topic:partition:offset, as `dlq list` prints it")
    q.add_argument("--json", action="store_true", help="JSON instead of text")
    q = dlq_sub.add_parser("replay", help="republish to the original topic for the group that failed them, once each")
    q.add_argument("positions", nargs="*", help="topic:partition:offset of the dead letters (default: all selected)")
    _selection_options(q)
    q.add_argument("--dry-run", action="store_true", help="report what would be replayed, send nothing")
    q.add_argument("--all", action="store_true", help="replay every dead letter when no position or filter is given")
    p.set_defaults(fn=_dlq)

    p = sub.add_parser("index", help="rebuild the vector index from Postgres, or optimize the embedded one")
    p.add_argument("action", choices=["rebuild", "optimize"])
    p.add_argument("--tenant", default=None, help="rebuild only this tenant's points, in place (same model)")
    p.add_argument("--model", default=None,
                   help="embed with this model of CONVMEM_EMBEDDING_BASE_URL instead of CONVMEM_EMBEDDING_MODEL")
    p.add_argument("--dimension", type=int, default=None, help="the --model's vector size")
    p.add_argument("--restart", action="store_true", help="start over instead of continuing an unfinished rebuild")
    p.add_argument("--batch", type=int, default=512, help="turns read and embedded per batch")
    p.set_defaults(fn=_index)

    args = parser.parse_args(argv)
    try:
        return int(args.fn(args))
    except ConfigError as exc:
        print(f"convmem: {exc}", file=sys.stderr)
        return 2
    except IndexUnavailable as exc:
        print(f"convmem {args.command}: {exc}", file=sys.stderr)
        return INDEX_UNAVAILABLE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
