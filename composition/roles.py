"""Each role wired: the ports its domain functions get, the policies they follow, the topics
they consume and publish. Adding a role touches this module and the new service only."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TypeVar

from faststream.kafka import KafkaBroker

from composition.policies import intent_rules, recall_policy, scrub_policy, send_policy
from composition.resources import NotStarted, Resources
from contracts import Event
from convmem.delivery import DeliveryPolicy, Outlet, Subscriptions
from convmem.ports import ReplyFeed
from convmem.settings import (
    ConfigError,
    IndexerSettings,
    IngestSettings,
    ResponderSettings,
    RetentionSettings,
    SenderSettings,
)
from services.indexer import worker as indexer
from services.ingest import worker as ingest
from services.ingest.edge import EdgePorts
from services.ingest.sink import EventSink
from services.responder import worker as responder
from services.retention import worker as retention
from services.retention.erasure import Compaction
from services.sender import worker as sender

ROLES = ("ingest", "indexer", "responder", "retention", "sender")
S = TypeVar("S")


@dataclass(frozen=True)
class RoleSettings:
    """The settings of the roles a process runs (None: that role is not run here)."""

    ingest: IngestSettings | None = None
    indexer: IndexerSettings | None = None
    responder: ResponderSettings | None = None
    retention: RetentionSettings | None = None
    sender: SenderSettings | None = None


@dataclass(frozen=True)
class Declared:
    subscriptions: Subscriptions
    sink: EventSink | None  # ingest's way to Kafka, when this process runs ingest
    privacy: Outlet[Event] | None  # the audit trail, when this process runs retention
    # Background work the roles started, to end before the resources close (erasure compaction).
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


def build_broker(bootstrap: str, policy: DeliveryPolicy) -> KafkaBroker:
    broker = KafkaBroker(
        bootstrap, acks="all", enable_idempotence=True, linger_ms=2,
        client_id="convmem", graceful_timeout=15, logger=None,
        description="convmem: conversational memory events",
    )
    policy.broker = broker
    return broker


def _given(value: S | None, role: str) -> S:
    if value is None:
        raise NotStarted(f"the {role} role was declared without its settings")
    return value


def declare(broker: KafkaBroker, policy: DeliveryPolicy, roles: Sequence[str], res: Resources,
            settings: RoleSettings, group_prefix: str, bootstrap: str | None,
            only_groups: Collection[str] | None = None) -> Declared:
    """Register every role's publishers and subscribers. Needs no connection: the ports are
    read from `res` when a message arrives, so the AsyncAPI document is made the same way
    (with no `bootstrap`: declared for the document only, nothing will consume). With
    `only_groups` (names without the prefix) only those consumer groups are subscribed."""
    subs = Subscriptions(broker, policy, lambda: res.sealer, group_prefix, bootstrap=bootstrap,
                         document_only=bootstrap is None,
                         selected=None if only_groups is None else frozenset(only_groups))
    sink = None
    if "ingest" in roles:
        sink = ingest.register(subs, *([settings.ingest.publish_timeout_s] if settings.ingest is not None else []))
    privacy = None
    if "indexer" in roles:
        rules = intent_rules(settings.indexer) if settings.indexer is not None else None

        def indexer_deps() -> indexer.IndexerDeps:
            s = res.storage
            _given(settings.indexer, "indexer")
            return indexer.IndexerDeps(turns=s.turns, deliveries=s.deliveries, embeddings=s.embeddings,
                                       embedder=lambda: res.embedder, index=lambda: res.index, rules=rules,
                                       units=settings.indexer is None or settings.indexer.embeds_units)

        indexer.register(subs, indexer_deps, **({} if settings.indexer is None else {
            "batch_size": settings.indexer.record_batch, "record_concurrency": settings.indexer.record_concurrency,
            "embed_batch": settings.indexer.embed_batch_size}))
    closers: list[Callable[[], Awaitable[None]]] = []
    if "retention" in roles:
        scrubbing = scrub_policy(settings.retention) if settings.retention is not None else None
        compaction = Compaction(lambda: res.storage.privacy.compact_erased())
        closers.append(compaction.close)

        def retention_deps() -> retention.RetentionDeps:
            s = res.storage
            return retention.RetentionDeps(privacy=s.privacy, retention=s.retention, policies=s.policies,
                                           index=res.index, embedder=res.embedder,
                                           scrubbing=_given(scrubbing, "retention"), forget_keys=res.sealer.forget,
                                           after_erasure=compaction.request,
                                           units=s.embeddings)

        privacy = retention.register(subs, retention_deps)
    if "responder" in roles:
        recall = recall_policy(settings.responder) if settings.responder is not None else None

        def responder_deps() -> responder.ResponderDeps:
            s = res.storage
            policy = _given(recall, "responder")
            return responder.ResponderDeps(replies=s.replies, memory=s.memory, conversations=s.conversations,
                                           context=lambda: res.context_builder(policy), model=res.chat_model,
                                           policy=policy,
                                           titles=res.chat_model_for("title"), summaries=res.chat_model_for("summary"))

        concurrency = settings.responder.max_in_flight if settings.responder is not None else 1
        responder.register(subs, responder_deps, concurrency)
    if "sender" in roles:
        sending = send_policy(settings.sender) if settings.sender is not None else None

        def sender_deps() -> sender.SenderDeps:
            return sender.SenderDeps(sends=res.storage.sends, api=res.whatsapp, policy=_given(sending, "sender"))

        sender.register(subs, sender_deps, settings.sender.sender_max_in_flight if settings.sender else 2)
    return Declared(subs, sink, privacy, closers)



def edge_ports(res: Resources, sink: EventSink, settings: IngestSettings,
               feed: ReplyFeed | None = None) -> Callable[[], EdgePorts]:
    """What the HTTP edge may touch, built once, on its first request."""

    @cache
    def ports() -> EdgePorts:
        s = res.storage
        return EdgePorts(lookup=s.lookup, conversations=s.conversations, memory=s.memory, privacy=s.privacy,
                         policies=s.policies, health=s.health, sink=sink, retriever=res.retriever(),
                         feed=feed, replies=s.replies, deliveries=s.deliveries, keys=s.keys,
                         context=res.context_builder(recall_policy(settings)), aliases=s.aliases,
                         console=res.console, tickets=s.tickets, analytics=res.analytics)

    return ports


def consumer_groups(roles: Sequence[str], group_prefix: str) -> list[tuple[str, str]]:
    """The (consumer group, topic) pairs these roles consume, from a declaration that never
    connects."""
    policy = DeliveryPolicy()
    broker = build_broker("unused:9092", policy)  # declared, never started
    return declare(broker, policy, roles, Resources(), RoleSettings(), group_prefix, bootstrap=None).subscriptions.groups


def check_groups(roles: Sequence[str], group_prefix: str, selected: Collection[str]) -> None:
    """Fail before connecting when `convmem run ROLE --groups ...` names a group these roles
    do not consume; names are written without the prefix (`indexer.embed`, `responder`)."""
    valid = [group.removeprefix(f"{group_prefix}.") for group, _ in consumer_groups(roles, group_prefix)]
    unknown = sorted(set(selected) - set(valid))
    if unknown:
        raise ConfigError(f"unknown consumer group(s) for role(s) {', '.join(roles)}: {', '.join(unknown)}; "
                          f"valid: {', '.join(dict.fromkeys(valid)) or 'none (these roles consume nothing)'}")
    if not selected:
        raise ConfigError(f"--groups names no consumer group; valid: {', '.join(dict.fromkeys(valid))}")
