"""`convmem`: the one command line. Sub-commands: stack, run, demo, docs, migrate, retention, import, export,
index."""

from __future__ import annotations

import argparse
import asyncio
import sys

from convmem.errors import IndexUnavailable
from convmem.settings import ConfigError

# Exit code of a command that cannot use the vector index as things are (another process
# holds the embedded index, it holds another model's vectors, a rebuild of it is running).
INDEX_UNAVAILABLE = 3


def _stack(args: argparse.Namespace) -> int:
    from convmem.settings import ExternalServices, StackSettings
    from convmem.stack import Stack, StackError, format_env

    stack = Stack(StackSettings(), ExternalServices())
    try:
        if args.action == "fetch":
            stack.fetch_kafka()
        elif args.action == "up":
            stack.up()
            from convmem.kafka_admin import ensure_topics
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
    from composition.runtime import ROLES, run_roles

    roles = list(ROLES) if args.role == "all" else [args.role]
    asyncio.run(run_roles(roles, http_port=args.port))
    return 0


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


def _index(args: argparse.Namespace) -> int:
    from composition.index_commands import run_optimize, run_rebuild

    if args.action == "optimize":
        return asyncio.run(run_optimize())
    return asyncio.run(run_rebuild(args.tenant, args.model, args.dimension, args.restart, args.batch))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="convmem", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("stack", help="local Kafka + Postgres")
    p.add_argument("action", choices=["up", "down", "status", "fetch"])
    p.set_defaults(fn=_stack)

    p = sub.add_parser("run", help="run a worker role, or all of them in one process")
    p.add_argument("role", choices=["ingest", "indexer", "responder", "retention", "sender", "all"])
    p.add_argument("--port", type=int, default=None, help="HTTP port for ingest (default from settings)")
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
