"""The adapters behind `convmem import` and `convmem export`: an idempotent aiokafka producer for the inbound
topic and the Postgres store for "already stored?" lookups, with a progress bar."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import BinaryIO

from contracts import MessageReceived, topics
from convmem.privacy.sealing import Sealer
from convmem.settings import CommonSettings, load


async def run_import(lines: BinaryIO, total: int, batch: int = 500, settings: CommonSettings | None = None,
                     keep_expired: bool = False) -> int:
    from aiokafka import AIOKafkaProducer
    from tqdm import tqdm

    from convmem.adapters.postgres import PostgresStorage
    from convmem.delivery.provisioning import ensure_topics
    from convmem.migrations import migrate
    from services.ingest.accepting import RetentionWindow
    from services.ingest.importing import ImportRules, import_lines

    settings = settings or load(CommonSettings)
    await ensure_topics(settings.kafka_bootstrap)
    await migrate(settings.database_url.get_secret_value())
    store = await PostgresStorage.connect(settings.database_url.get_secret_value(), max_size=2)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=True,
                                linger_ms=5, max_batch_size=256 * 1024, client_id="convmem-import")
    await producer.start()

    sealer = Sealer(store.keys)

    async def publish(events: Sequence[MessageReceived]) -> None:
        sent = [await producer.send(topics.INBOUND, (await sealer.seal(e)).model_dump_json().encode(), key=e.key)
                for e in events]
        await asyncio.gather(*sent)  # every message of the batch acknowledged by all replicas

    retention = RetentionWindow(store.policies, settings.message_retention_days)
    rules = ImportRules(cutoff=retention.cutoff, conversation=store.conversations.conversation,
                        keep_expired=keep_expired)
    try:
        with tqdm(total=total, unit="msg", file=sys.stderr, desc="import") as bar:
            report = await import_lines(lines, publish=publish, known=store.lookup.known_external_ids, batch=batch,
                                        progress=bar.update, rules=rules)
    finally:
        await producer.stop()
        await store.close()
    for err in [*report.malformed, *report.refused][:50]:
        print(f"skipped {err}", file=sys.stderr)
    skipped = len(report.malformed) + report.foreign + report.expired - report.expired_kept
    if skipped > 50:
        print(f"... and {skipped - 50} more skipped lines", file=sys.stderr)
    print(f"imported {report.published} message(s) from {report.lines} line(s): "
          f"{report.already_stored} already stored, {len(report.malformed)} malformed, "
          f"{report.foreign} naming another user's conversation; {report.seconds:.1f} s, {report.rate:.0f} msg/s")
    if report.expired and not keep_expired:
        print(f"refused {report.expired} message(s) older than their tenant's message retention: the next "
              "retention sweep would delete them. Raise the tenant's message_retention_days "
              "(PUT /v1/tenant/policy), or pass --keep-expired to import them anyway.")
    elif report.expired_kept:
        print(f"{report.expired_kept} of the imported message(s) are older than their tenant's message retention: "
              "the next retention sweep will delete them (--keep-expired).")
    return 1 if skipped and not report.published and not report.already_stored else 0


async def run_export(tenant_id: str, user_id: str, fmt: str, out: BinaryIO,
                     settings: CommonSettings | None = None) -> int:
    from convmem.adapters.postgres import PostgresStorage
    from services.ingest.export import export_stream

    settings = settings or load(CommonSettings)
    store = await PostgresStorage.connect(settings.database_url.get_secret_value(), max_size=2)
    written = 0
    try:
        async for chunk in export_stream(store.privacy, tenant_id, user_id, "csv" if fmt == "csv" else "json"):
            out.write(chunk)
            written += len(chunk)
    finally:
        await store.close()
    print(f"exported {written} bytes", file=sys.stderr)
    return 0
