"""The delivery layer: how events move between Kafka and the domain functions. Retry and
dead-lettering (policy), decoding, opening and sealing, publish-then-mark (subscriptions),
key-ordered concurrency with honest offsets (lanes, keyed), the topics and their provisioning
(provisioning), and reading and replaying dead letters (dead_letters). It may import
contracts, ports, errors, privacy and telemetry; never memory, ops, adapters or the dev stack."""

from convmem.delivery.keyed import KeyedConsumer
from convmem.delivery.policy import DeliveryPolicy, decode_event
from convmem.delivery.subscriptions import Outlet, Subscriptions, open_or_drop

__all__ = ["DeliveryPolicy", "KeyedConsumer", "Outlet", "Subscriptions", "decode_event", "open_or_drop"]
