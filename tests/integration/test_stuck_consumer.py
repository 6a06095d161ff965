"""Liveness on a real broker: a key-ordered consumer whose handler hangs while records wait
behind it fails /healthz on the ops listener, with the reason; once the handler lets go and
the group catches up, /healthz is 200 again."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import ConsumerRecord

from convmem.delivery import DeliveryPolicy
from convmem.delivery.keyed import KeyedConsumer
from convmem.ops.lag import LagReader
from convmem.ops.listener import OpsServer
from convmem.ops.liveness import KeyedView
from convmem.ops.probes import Probes
from tests.conftest import eventually
from tests.services import Endpoints

pytestmark = pytest.mark.stack


async def test_a_hung_handler_with_lag_fails_liveness_until_it_moves_again(endpoints: Endpoints) -> None:
    bootstrap, topic, group = endpoints.kafka_bootstrap, f"test.stuck.{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 1, 1)])
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    for i in range(3):
        await producer.send_and_wait(topic, f"r{i}".encode(), key=b"one-conversation")
    await producer.stop()

    policy = DeliveryPolicy()
    release, handled = asyncio.Event(), []

    async def hang(record: ConsumerRecord) -> None:
        await release.wait()  # a model call that never returns, say
        handled.append(record.offset)

    async def handle(record: ConsumerRecord) -> None:
        await policy.run(lambda: hang(record), (record,), group)

    consumer = KeyedConsumer(bootstrap, topic, group, handle, max_in_flight=1)
    lag = LagReader(bootstrap, [(group, topic)], ttl_s=0.0)
    probes = Probes(checks={}, consumers=[KeyedView(consumer)], lag=lag, active_at=policy.active_at, stall_s=1.0)
    server = OpsServer(probes, "127.0.0.1", 0)
    await consumer.start()
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=10) as ops:
            async def stuck() -> Any:
                resp = await ops.get("/healthz")
                return resp.json() if resp.status_code == 503 else None

            body = await eventually(stuck, timeout=30, interval=0.3)
            [why] = body["problems"]
            assert why.startswith(f"{group}: no handler activity for ") and why.endswith("with 3 records of lag")

            release.set()

            async def alive() -> bool:
                return (await ops.get("/healthz")).status_code == 200

            await eventually(alive, timeout=30, interval=0.3)

            async def caught_up() -> bool:
                text = (await ops.get("/metrics")).text
                return f'convmem_consumer_lag{{group="{group}",partition="0",topic="{topic}"}} 0.0' in text

            await eventually(caught_up, timeout=30, interval=0.3)
            assert handled == [0, 1, 2]
            assert (await ops.get("/healthz")).json() == {"status": "ok"}
    finally:
        release.set()
        await server.stop()
        await consumer.stop()
        await probes.close()
