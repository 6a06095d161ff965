"""Process lifespan: loads each role's settings, builds clients, declares the roles on one
FastStream broker, serves HTTP for ingest, and tears it all down in reverse order."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog
import uvicorn
from faststream.kafka import KafkaBroker

from composition.allocator import bound_malloc_arenas, trim_periodically
from composition.companion import Companion, split_groups
from composition.index_upkeep import start_upkeep
from composition.ops import build_probes
from composition.pipeline import KafkaPipeline
from composition.policies import retention_policy, scrub_policy
from composition.resources import Resources
from composition.roles import (
    ROLES,
    Declared,
    RoleSettings,
    build_broker,
    check_groups,
    consumer_groups,
    declare,
    edge_ports,
)
from contracts import Event
from convmem.delivery import DeliveryPolicy, Outlet, Subscriptions
from convmem.delivery.feed import TOPICS as FEED_TOPICS
from convmem.delivery.feed import KafkaReplyFeed, envelope_owner
from convmem.delivery.keyed import stop_all
from convmem.delivery.provisioning import ensure_topics
from convmem.delivery.tail import Tail
from convmem.migrations import migrate
from convmem.ops.listener import OpsServer
from convmem.ops.probes import Probes
from convmem.ports import SigningKeys
from convmem.settings import (
    CommonSettings,
    ConfigError,
    IndexerSettings,
    IngestSettings,
    ResponderSettings,
    RetentionSettings,
    SenderSettings,
    VectorSettings,
    load,
)
from convmem.telemetry import logs, metrics
from services.indexer.enrichment import prepare as prepare_enrichment
from services.ingest.http.connections import ConnectionGuard
from services.retention.sweep import sweep
from services.retention.worker import privacy_outlet

if TYPE_CHECKING:
    from services.ingest.http.draining import Draining

log = structlog.get_logger("convmem.runtime")
# Kept of the grace period for what follows the budgeted steps: releasing the index, closing
# the event loop. At the full grace period a process still alive exits at once (watchdog).
_RESERVE_S = 1.5
__all__ = ["ROLES", "Runtime", "run_retention_sweep", "run_roles", "sweep_once"]


class _Server(uvicorn.Server):
    """uvicorn without signal handlers of its own: SIGTERM belongs to run_roles, which ends the
    open streams first. (uvicorn's handler would close the listener, then wait for every
    open stream to end by itself, as long as its client stays: minutes for a browser tab.)"""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Runtime:
    roles: Sequence[str]
    ingest: IngestSettings | None = None
    indexer: IndexerSettings | None = None
    responder: ResponderSettings | None = None
    retention: RetentionSettings | None = None
    sender: SenderSettings | None = None
    http_port: int | None = None
    groups: Sequence[str] | None = None  # only these consumer groups (no prefix); None: all of the roles'
    vectors: bool = True  # False: the groups run here need no vector index (composition.companion)
    res: Resources = field(default_factory=Resources)
    broker: KafkaBroker | None = None
    policy: DeliveryPolicy | None = None
    declared: Declared | None = None
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _tail: Tail | None = None  # the live end of the reply topics, for the edge's streams and `wait`
    _server: uvicorn.Server | None = None
    _serving: asyncio.Task[Any] | None = None  # uvicorn's own task: asked to exit, never cancelled
    probes: Probes | None = None  # /metrics, /healthz, /readyz: on the ingest port, else on the ops listener
    _ops: OpsServer | None = None
    _pipeline: KafkaPipeline | None = None  # lag and dead letters for the console's pages
    _draining: Draining | None = None  # the edge's: open streams end when it begins

    def _load(self) -> CommonSettings:
        unknown = set(self.roles) - set(ROLES)
        if unknown:
            raise ValueError(f"unknown role(s): {', '.join(sorted(unknown))}")
        requested = list(self.roles)
        if "ingest" in self.roles and self.ingest is None:
            self.ingest = load(IngestSettings)
        if "indexer" in self.roles and self.indexer is None:
            self.indexer = load(IndexerSettings)
        if "responder" in self.roles and self.responder is None:
            self.responder = load(ResponderSettings)
        if "retention" in self.roles and self.retention is None:
            self.retention = load(RetentionSettings)
        if "sender" in self.roles and self.sender is None:
            self.sender = load(SenderSettings)
        if self.sender is not None and self.sender.whatsapp_access_token is None:
            if list(self.roles) == ["sender"]:
                raise ConfigError("invalid configuration: CONVMEM_WHATSAPP_ACCESS_TOKEN is required by the sender")
            # `run all` without WhatsApp credentials: everything else runs, replies are not sent.
            log.warning("sender_not_started", reason="CONVMEM_WHATSAPP_ACCESS_TOKEN is not set")
            self.roles = [r for r in self.roles if r != "sender"]
            self.sender = None
        common = self.ingest or self.indexer or self.responder or self.retention or self.sender
        if common is None:
            raise ValueError("no role to run")
        if self.groups is not None:
            check_groups(requested, common.group_prefix, self.groups)
        return common

    @property
    def port(self) -> int:
        assert self._server is not None and self._server.servers
        return int(self._server.servers[0].sockets[0].getsockname()[1])

    @property
    def shutdown_grace_s(self) -> float:
        common = self.ingest or self.indexer or self.responder or self.retention or self.sender
        return common.shutdown_grace_s if common is not None else 20.0

    @property
    def probe_port(self) -> int:
        """Where this process answers /metrics, /healthz and /readyz."""
        return self._ops.port if self._ops is not None else self.port

    @property
    def privacy(self) -> Outlet[Event] | None:
        return None if self.declared is None else self.declared.privacy

    async def start(self) -> None:
        common = self._load()
        logs.configure(common.log_level, common.log_format)
        bound_malloc_arenas()  # before the embedder's and the executors' threads exist
        self._tasks.append(asyncio.create_task(trim_periodically()))
        metrics.configure(common.metrics_enabled)
        await ensure_topics(common.kafka_bootstrap)
        await migrate(common.database_url.get_secret_value())
        await self.res.open_storage(common.database_url.get_secret_value(), max_size=common.database_pool_size)
        vector_settings: VectorSettings | None = self.responder or self.indexer or self.retention or self.ingest
        if vector_settings is not None and self.vectors:  # the sender alone needs no vectors
            self.res.open_vectors(vector_settings)
            self._tasks += await start_upkeep(self.res, vector_settings)
        if self.indexer is not None:
            await asyncio.to_thread(prepare_enrichment)
        if self.responder is not None:
            self.res.open_chat_model(self.responder)
        if self.sender is not None:
            self.res.open_whatsapp(self.sender)
        self.policy = DeliveryPolicy(max_attempts=common.max_attempts,
                                     backoff_max_s=common.retry_backoff_max_s)
        self.broker = build_broker(common.kafka_bootstrap, self.policy)
        settings = RoleSettings(self.ingest, self.indexer, self.responder, self.retention, self.sender)
        self.declared = declare(self.broker, self.policy, self.roles, self.res, settings, common.group_prefix,
                                common.kafka_bootstrap, only_groups=self.groups)
        await self.broker.start()
        for consumer in self.declared.subscriptions.keyed:
            await consumer.start()
        self.probes = build_probes(common, self.broker, self.policy, self.declared.subscriptions, self.res,
                                   consumer_groups(ROLES, common.group_prefix))
        if self.ingest is not None and self.declared.sink is not None:
            from services.ingest.http.app import create_app

            self._tail = Tail(common.kafka_bootstrap, FEED_TOPICS, client_id=f"{common.group_prefix}.tail",
                              owner=envelope_owner)
            await self._tail.start()
            feed = KafkaReplyFeed(self._tail, lambda: self.res.sealer)
            storage = self.res.storage
            self._pipeline = KafkaPipeline(common.kafka_bootstrap, common.group_prefix, storage.backlog,
                                           storage.replays)
            app = create_app(self.ingest, edge_ports(self.res, self.declared.sink, self.ingest, feed),
                             signing_keys=signing_keys(self.ingest), probes=self.probes, pipeline=self._pipeline)
            self._draining = app.state.edge.draining
            port = self.ingest.http_port if self.http_port is None else self.http_port
            self._server = _Server(http_config(app, self.ingest, port))
            self._serving = asyncio.create_task(self._server.serve())
            while not self._server.started:
                await asyncio.sleep(0.02)
        else:
            self._ops = OpsServer(self.probes, common.ops_host, common.ops_port)
            await self._ops.start()
        if self.retention is not None:
            self._tasks.append(asyncio.create_task(self._sweep_forever(self.retention)))
        log.info("started", roles=list(self.roles), probe_port=self.probe_port, **self.res.describe())

    async def sweep_once(self) -> list[Event]:
        assert self.retention is not None, "this process does not run the retention role"
        return await sweep_once(self.res, self.retention, self.privacy)

    async def _sweep_forever(self, settings: RetentionSettings) -> None:
        while True:
            try:
                await sweep_once(self.res, settings, self.privacy)
            except Exception as exc:  # the sweep must outlive a database blip
                log.warning("retention_sweep_failed", error=type(exc).__name__)
            await asyncio.sleep(settings.sweep_interval_s)

    async def stop(self, grace_s: float | None = None) -> None:
        """Stop within `grace_s` (default: the settings' shutdown_grace_s): end open streams
        with a last frame telling clients to reconnect, stop accepting, let in-flight work
        finish, commit what finished, and release the index. A step still running when its
        share of the time is up is abandoned: what it had not committed is redelivered to
        whoever consumes next (at-least-once, idempotent effects)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.shutdown_grace_s if grace_s is None else grace_s)

        async def step(name: str, work: Awaitable[Any]) -> None:
            try:
                await asyncio.wait_for(work, timeout=max(0.1, deadline - loop.time()))
            except TimeoutError:
                log.warning("shutdown_step_abandoned", step=name)
            except Exception as exc:  # one failed step must not keep the others (the index) held
                log.warning("shutdown_step_failed", step=name, error=type(exc).__name__)

        if self._draining is not None:
            self._draining.begin()
        if self._server is not None:
            self._server.should_exit = True
        if self._ops is not None:
            await step("ops", self._ops.stop())
            self._ops = None
        for task in self._tasks:
            task.cancel()
        for task in [*self._tasks, *([self._serving] if self._serving else [])]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await step("http" if task is self._serving else "tasks", task)
        self._tasks.clear()
        self._serving = None
        if self._tail is not None:
            await step("tail", self._tail.stop())
        if self._pipeline is not None:
            await step("pipeline", self._pipeline.close())
        if self.declared is not None:  # they publish through the broker: first
            await step("consumers", stop_all(self.declared.subscriptions.keyed))
            for close in self.declared.closers:  # background work of the roles (erasure compaction)
                await step("background", close())
        if self.broker is not None:
            await step("broker", self.broker.stop())
        if self.probes is not None:
            await step("probes", self.probes.close())
        await self.res.close()  # always, and last: it releases the embedded index for the next process


def http_config(app: Any, settings: IngestSettings, port: int) -> uvicorn.Config:
    """How the edge is served. Client addresses (for the per-address limits) come from
    X-Forwarded-For only when the peer is a trusted proxy. Connections are bounded overall and
    per address, and must send a request head in time, by the guard's protocol (uvicorn's own
    limit_concurrency counts idle connections too, and answers plain-text 503s)."""
    return uvicorn.Config(app, host=settings.http_host, port=port, log_level="warning", access_log=False,
                          lifespan="on", proxy_headers=True, forwarded_allow_ips=settings.forwarded_allow_ips,
                          http=connection_guard(settings).protocol(), timeout_keep_alive=5,
                          ws="websockets-sansio", ws_max_size=settings.max_body_bytes,
                          # Requests still open this long after a stop began are cancelled.
                          timeout_graceful_shutdown=max(1, int(settings.shutdown_grace_s * 0.4)),
                          log_config=None)  # uvicorn's loggers go through convmem.telemetry.logs too


def connection_guard(settings: IngestSettings) -> ConnectionGuard:
    return ConnectionGuard(header_timeout_s=settings.http_header_timeout_s,
                           max_connections=settings.http_max_connections,
                           max_per_address=settings.http_max_connections_per_address,
                           trusted_proxies=settings.forwarded_allow_ips)


def signing_keys(settings: IngestSettings) -> SigningKeys | None:
    """The identity provider's keys, when RS256/ES256 tokens are accepted (CONVMEM_JWT_JWKS_URL)."""
    if settings.jwt_jwks_url is None:
        return None
    from convmem.adapters.jwks import JwksSigningKeys

    return JwksSigningKeys(str(settings.jwt_jwks_url), cache_s=settings.jwks_cache_s,
                           min_refresh_s=settings.jwks_min_refresh_s)


async def run_roles(roles: Sequence[str], http_port: int | None = None, groups: Sequence[str] | None = None,
                    vectors: bool = True, companion: bool = False, started: Callable[[], None] | None = None) -> None:
    """Run until SIGINT or SIGTERM. With `companion`, the groups that need no vector index
    run in a second process (composition.companion), started once this one is up."""
    second: Companion | None = None
    if companion:
        mine, theirs = split_groups(roles, load(CommonSettings).group_prefix)
        groups, second = (mine, Companion(theirs)) if theirs else (groups, None)
    runtime = Runtime(roles, http_port=http_port, groups=groups, vectors=vectors)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await runtime.start()
        if second is not None:
            await second.start()
        if started is not None:
            started()
        await stop.wait()
    finally:
        grace = runtime.shutdown_grace_s
        watchdog = threading.Timer(grace, _exit_now, args=(grace,))
        watchdog.daemon = True
        watchdog.start()
        began = loop.time()
        log.info("stopping", grace_s=grace)
        try:
            if second is not None:  # at the same time as this process, within the same grace
                await asyncio.gather(second.stop(max(0.5, grace - _RESERVE_S)),
                                     runtime.stop(max(0.5, grace - _RESERVE_S)))
            else:
                await runtime.stop(max(0.5, grace - _RESERVE_S))
        finally:
            watchdog.cancel()  # stopped in time (or start-up failed): the caller goes on
        log.info("stopped", seconds=round(loop.time() - began, 3))


def _exit_now(grace: float) -> None:
    """The last resort: a stop that outlived the grace period ends the process here, before
    the orchestrator's SIGKILL. The kernel releases the index's lock with the process."""
    log.error("shutdown_forced", grace_s=grace)
    os._exit(1)


async def sweep_once(res: Resources, settings: RetentionSettings, privacy: Outlet[Event] | None) -> list[Event]:
    """One sweep; its audit events go to privacy.events.v1 when an outlet is given."""
    s = res.storage
    events = await sweep(s.retention, s.policies, res.index, res.embedder, retention_policy(settings),
                         scrub_policy(settings), units=s.embeddings)
    if privacy is not None and events:
        await privacy.publish(events)
    for event in events:
        log.info("retention_event", kind=type(event).__name__,
                 **{k: v for k, v in event.model_dump().items() if k in ("messages", "kinds", "user_summaries")})
    return events


async def run_retention_sweep() -> list[Event]:
    settings = load(RetentionSettings)
    res = Resources()
    await res.open_storage(settings.database_url.get_secret_value())
    try:
        res.open_vectors(settings)  # IndexUnavailable beside a process that holds the embedded index
    except BaseException:
        await res.close()
        raise
    policy = DeliveryPolicy()
    broker = build_broker(settings.kafka_bootstrap, policy)
    privacy = privacy_outlet(Subscriptions(broker, policy, lambda: res.sealer, settings.group_prefix))
    await broker.connect()
    try:
        return await sweep_once(res, settings, privacy)
    finally:
        await broker.stop()
        await res.close()
