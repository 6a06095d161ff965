"""Process lifespan: builds clients, declares the roles' subscribers on one FastStream
broker, serves HTTP for ingest, and tears it all down in reverse order."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
import uvicorn
from faststream.kafka import KafkaBroker

from contracts import Event, topics
from convmem import logs
from convmem.delivery import DeliveryPolicy
from convmem.kafka_admin import ensure_topics
from convmem.migrations import migrate
from convmem.resources import Resources
from convmem.retrieval import Stages
from convmem.settings import (
    CommonSettings,
    IndexerSettings,
    IngestSettings,
    ResponderSettings,
    RetentionSettings,
    VectorSettings,
    load,
)
from services.responder.context import RecallPolicy
from services.retention.scrubbing import ScrubPolicy
from services.retention.sweep import RetentionPolicy, sweep

log = structlog.get_logger("convmem.runtime")
ROLES = ("ingest", "indexer", "responder", "retention")


def build_broker(common: CommonSettings, policy: DeliveryPolicy) -> KafkaBroker:
    broker = KafkaBroker(
        common.kafka_bootstrap, acks="all", enable_idempotence=True, linger_ms=2,
        middlewares=[policy], client_id="convmem", graceful_timeout=15, logger=None,
        description="convmem: conversational memory events",
    )
    policy.broker = broker
    return broker


def declare(broker: KafkaBroker, roles: Sequence[str], res: Resources, policy: DeliveryPolicy,
            common: CommonSettings, responder: ResponderSettings | None = None,
            indexer: IndexerSettings | None = None, retention: RetentionSettings | None = None) -> Any:
    """Register every role's publishers and subscribers; returns ingest's EventSink if any."""
    from services.indexer import worker as indexer_worker
    from services.ingest import worker as ingest_worker
    from services.responder import worker as responder_worker

    sink = None
    if "ingest" in roles:
        sink = ingest_worker.register(broker, res)
    if "indexer" in roles:
        from services.indexer.enrichment import load_rules

        indexer_worker.register(broker, res, policy, common.group_prefix,
                                rules=load_rules(indexer.intent_rules if indexer else "default"))
    if "retention" in roles:
        from services.retention import worker as retention_worker

        _, scrubbing = retention_policies(retention or RetentionSettings.model_construct())
        retention_worker.register(broker, res, common.group_prefix, scrubbing)
    if "responder" in roles:
        r = responder or ResponderSettings.model_construct()
        responder_worker.register(broker, res, common.group_prefix,
                                  RecallPolicy(r.recent_turns, r.recall_k, r.recall_min_score, r.context_token_budget,
                                               r.summary_every, r.summary_max_chars))
    return sink


@dataclass
class Runtime:
    roles: Sequence[str]
    ingest: IngestSettings | None = None
    indexer: IndexerSettings | None = None
    responder: ResponderSettings | None = None
    retention: RetentionSettings | None = None
    http_port: int | None = None
    res: Resources = field(default_factory=Resources)
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _server: uvicorn.Server | None = None
    _serving: asyncio.Task[Any] | None = None  # uvicorn's own task: asked to exit, never cancelled
    broker: KafkaBroker | None = None
    policy: DeliveryPolicy | None = None

    def _load(self) -> VectorSettings:
        unknown = set(self.roles) - set(ROLES)
        if unknown:
            raise ValueError(f"unknown role(s): {', '.join(sorted(unknown))}")
        if "ingest" in self.roles and self.ingest is None:
            self.ingest = load(IngestSettings)
        if "indexer" in self.roles and self.indexer is None:
            self.indexer = load(IndexerSettings)
        if "responder" in self.roles and self.responder is None:
            self.responder = load(ResponderSettings)
        if "retention" in self.roles and self.retention is None:
            self.retention = load(RetentionSettings)
        common = self.ingest or self.indexer or self.responder or self.retention
        assert common is not None
        return common

    @property
    def port(self) -> int:
        assert self._server is not None and self._server.servers
        return int(self._server.servers[0].sockets[0].getsockname()[1])

    async def start(self) -> None:
        common = self._load()
        logs.configure(common.log_level, common.log_format)
        await ensure_topics(common.kafka_bootstrap)
        await migrate(common.database_url.get_secret_value())
        await self.res.open_store(common.database_url.get_secret_value())
        vector_settings: VectorSettings = self.responder or self.indexer or self.retention or common
        self.res.open_vectors(vector_settings)
        self.res.stages = Stages.parse("hybrid", vector_settings.retrieval_stages)
        if self.responder is not None:
            self.res.open_chat_model(self.responder)
        self.policy = DeliveryPolicy(group=common.group_prefix, max_attempts=common.max_attempts,
                                     backoff_max_s=common.retry_backoff_max_s)
        self.broker = build_broker(common, self.policy)
        sink = declare(self.broker, self.roles, self.res, self.policy, common, self.responder, self.indexer,
                       self.retention)
        await self.broker.start()
        if self.ingest is not None:
            from services.ingest.app import create_app

            app = create_app(self.ingest, lambda: self.res.store, lambda: sink, self.res.retriever)
            port = self.ingest.http_port if self.http_port is None else self.http_port
            config = uvicorn.Config(app, host=self.ingest.http_host, port=port, log_level="warning",
                                    access_log=False, lifespan="off")
            self._server = uvicorn.Server(config)
            self._serving = asyncio.create_task(self._server.serve())
            while not self._server.started:
                await asyncio.sleep(0.02)
        if self.retention is not None:
            self._tasks.append(asyncio.create_task(self._sweep_forever(self.retention)))
        log.info("started", roles=list(self.roles), vector_index=type(self.res._index).__name__,
                 llm="offline" if self.res.chat_model is None else self.res.chat_model.name)

    async def _sweep_forever(self, settings: RetentionSettings) -> None:
        while True:
            try:
                await sweep_once(self.res, settings, self.broker)
            except Exception as exc:  # the sweep must outlive a database blip
                log.warning("retention_sweep_failed", error=type(exc).__name__)
            await asyncio.sleep(settings.sweep_interval_s)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        for task in self._tasks:
            task.cancel()
        for task in [*self._tasks, *([self._serving] if self._serving else [])]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        self._serving = None
        if self.broker is not None:
            await self.broker.stop()
        await self.res.close()


async def run_roles(roles: Sequence[str], http_port: int | None = None) -> None:
    runtime = Runtime(roles, http_port=http_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await runtime.start()
    try:
        await stop.wait()
    finally:
        await runtime.stop()


def retention_policies(settings: RetentionSettings) -> tuple[RetentionPolicy, ScrubPolicy]:
    return (RetentionPolicy(settings.message_retention_days, settings.summary_retention_days,
                            settings.deleted_grace_hours, settings.sweep_batch),
            ScrubPolicy(settings.pii_mode, settings.pii_delay_hours, settings.phone_region))  # type: ignore[arg-type]


async def sweep_once(res: Resources, settings: RetentionSettings, broker: KafkaBroker | None) -> list[Event]:
    """One sweep; its audit events go to privacy.events.v1 when a broker is given."""
    retention, scrubbing = retention_policies(settings)
    events = await sweep(res.store, res.index, res.embedder, retention, scrubbing)
    for event in events:
        if broker is not None:
            key = getattr(event, "conversation_id", None) or getattr(event, "tenant_id", None) or "retention"
            await broker.publish(event, topic=topics.PRIVACY_EVENTS, key=str(key).encode())
        log.info("retention_event", kind=type(event).__name__,
                 **{k: v for k, v in event.model_dump().items() if k in ("messages", "kinds", "user_summaries")})
    return events


async def run_retention_sweep() -> list[Event]:
    settings = load(RetentionSettings)
    res = Resources()
    await res.open_store(settings.database_url.get_secret_value())
    res.open_vectors(settings)
    broker = build_broker(settings, DeliveryPolicy(group=settings.group_prefix))
    await broker.connect()
    try:
        return await sweep_once(res, settings, broker)
    finally:
        await broker.stop()
        await res.close()
