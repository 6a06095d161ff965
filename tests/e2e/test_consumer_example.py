"""Downstream consumers reading replies: the README's example, run as written in a process of
its own against the real stack, prints a user's reply text and nothing readable for a user
who was erased; and the key endpoint it relies on serves keys only to whom it should."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from composition.runtime import Runtime
from contracts import ReplyGenerated, topics
from convmem.delivery.provisioning import start_groups_at_end
from tests.conftest import Tap, eventually, token, unique
from tests.services import Endpoints

pytestmark = pytest.mark.stack
README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example() -> str:
    found = re.search(r"<!-- consumer-example -->\n```python\n(.*?)```\n<!-- /consumer-example -->",
                      README.read_text(), re.S)
    assert found, "the README's consumer example is missing its markers"
    return found[1]


async def answered(api: httpx.AsyncClient, user: str, text: str) -> dict[str, Any]:
    resp = await api.post("/v1/messages?wait=20", json={"user_id": user, "text": text}, headers=token(user))
    assert resp.status_code == 200, resp.text
    reply: dict[str, Any] = resp.json()["reply"]
    return reply


async def erase(api: httpx.AsyncClient, user: str) -> None:
    assert (await api.delete(f"/v1/users/{user}", headers=token(user))).status_code == 202

    async def completed() -> bool:
        resp = await api.get(f"/v1/users/{user}/erasure", headers=token(user))
        return resp.status_code == 200 and resp.json()["status"] == "completed"

    await eventually(completed)


async def test_the_readme_consumer_prints_reply_text_and_nothing_of_an_erased_user(
        api: httpx.AsyncClient, runtime: Runtime, endpoints: Endpoints, tmp_path: Path) -> None:
    group = unique("reply-printer")
    await start_groups_at_end(endpoints.kafka_bootstrap, [(group, topics.REPLIES)])  # it reads what follows
    ana, ben = unique("ana"), unique("ben")
    kept = await answered(api, ana, "Please remember that my favourite colour is teal")
    gone = await answered(api, ben, "My passport number is X1234567")
    await erase(api, ben)

    script = tmp_path / "consumer.py"
    script.write_text(readme_example())
    env = {**os.environ, "KAFKA_BOOTSTRAP": endpoints.kafka_bootstrap, "GROUP_ID": group,
           "CONVMEM_URL": f"http://127.0.0.1:{runtime.port}",
           "SERVICE_TOKEN": token("reply-printer", roles=("service",))["Authorization"].removeprefix("Bearer ")}
    proc = await asyncio.create_subprocess_exec(sys.executable, str(script), env=env, cwd=str(README.parent),
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    lines: list[str] = []
    try:
        async def both_seen() -> bool:
            assert proc.stdout is not None
            while not any(line.startswith(gone["message_id"]) for line in lines) or \
                    not any(line.startswith(kept["message_id"]) for line in lines):
                lines.append((await proc.stdout.readline()).decode().rstrip("\n"))
                if proc.returncode is not None:
                    raise AssertionError(f"the example exited: {await proc.stderr.read() if proc.stderr else b''!r}")
            return True

        await asyncio.wait_for(both_seen(), timeout=60)
    finally:
        proc.kill()
        await proc.wait()
    [kept_line] = [line for line in lines if line.startswith(kept["message_id"])]
    assert kept_line == f"{kept['message_id']} {ana}: {kept['text']!r}"
    assert [line for line in lines if line.startswith(gone["message_id"])] == [f"{gone['message_id']} erased"]
    assert not any("X1234567" in line for line in lines)


async def test_keys_go_to_service_tokens_of_the_tenant_recorded_and_gone_after_erasure(
        api: httpx.AsyncClient, runtime: Runtime, tap: Tap, endpoints: Endpoints) -> None:
    user = unique("cara")
    reply = await answered(api, user, "hello")

    def sealed_reply() -> list[ReplyGenerated]:
        found = [ReplyGenerated.model_validate_json(r.value) for r in tap.on(topics.REPLIES)]
        return [r for r in found if str(r.message_id) == reply["message_id"]]

    [event] = await eventually(sealed_reply)
    assert event.text == "" and event.sealed is not None  # what a consumer reads off the topic
    url = f"/v1/keys/{event.sealed.key_id}"
    service = unique("svc")
    resp = await api.get(url, headers=token(service, roles=("service",)))
    assert resp.status_code == 200 and resp.json()["user_id"] == user and "max-age=30" in resp.headers["cache-control"]
    assert (await api.get(url, headers=token(user))).status_code == 403  # not even the user's own token
    assert (await api.get(url, headers=token("admin", roles=("admin",)))).status_code == 403
    assert (await api.get(url, headers=token(service, tenant="acme", roles=("service",)))).status_code == 404
    db = await asyncpg.connect(endpoints.database_url)
    try:
        assert await db.fetchval("SELECT count(*) FROM key_disclosures WHERE key_id = $1 AND served_to = $2",
                                 event.sealed.key_id, service) == 1
    finally:
        await db.close()
    await erase(api, user)
    gone = await api.get(url, headers=token(service, roles=("service",)))
    assert gone.status_code == 410 and gone.json()["error"] == "key_destroyed"
    assert uuid.UUID(reply["message_id"]) == event.message_id
