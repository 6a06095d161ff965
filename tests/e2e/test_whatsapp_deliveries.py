"""WhatsApp as Meta really sends it, on the real Kafka and Postgres: deliveries that mix what
convmem knows with what it does not, edits and revokes in and out of order, business echoes
and changed numbers."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from contracts import identity
from tests import whatsapp_fixtures as wf
from tests.conftest import APP_SECRET, eventually, token
from tests.services import Endpoints

pytestmark = pytest.mark.stack

PHONE_ID, TENANT = "555000111", "acme"  # the number tests/conftest maps to tenant acme


def signed(body: dict[str, Any]) -> dict[str, Any]:
    raw = json.dumps(body).encode()
    sig = hmac.new(APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    return {"content": raw, "headers": {"X-Hub-Signature-256": f"sha256={sig}", "Content-Type": "application/json"}}


def value(user: str, *messages: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550001111", "phone_number_id": PHONE_ID},
        "contacts": [{"profile": {"name": "Priya"}, "wa_id": user}], "messages": list(messages), **more}}


def text(user: str, body: str, wamid: str | None = None) -> dict[str, Any]:
    return {"from": user, "id": wamid or f"wamid.{uuid.uuid4().hex}", "timestamp": str(int(time.time())),
            "type": "text", "text": {"body": body}}


def amend(user: str, kind: str, original: str, new_text: str = "") -> dict[str, Any]:
    body: dict[str, Any] = {"original_message_id": original}
    if kind == "edit":
        body["message"] = {"type": "text", "text": {"body": new_text}}
    return {"from": user, "id": f"wamid.{uuid.uuid4().hex}", "timestamp": str(int(time.time())), "type": kind,
            kind: body}


def delivery(*changes: dict[str, Any]) -> dict[str, Any]:
    return {"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": list(changes)}]}


@pytest.fixture
async def database(endpoints: Endpoints) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(endpoints.database_url)
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    try:
        yield conn
    finally:
        await conn.close()


async def row(conn: asyncpg.Connection, wamid: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT id, content, deleted_at, embedded_at, role, reply_expected, metadata, "
                               "user_id, conversation_id FROM messages WHERE external_id = $1", wamid)


async def search(api: httpx.AsyncClient, user: str, q: str, mode: str) -> list[dict[str, Any]]:
    resp = await api.get("/v1/search", params={"q": q, "mode": mode}, headers=token(user, TENANT))
    assert resp.status_code == 200, resp.text
    hits: list[dict[str, Any]] = resp.json()["hits"]
    return hits


async def ids(api: httpx.AsyncClient, user: str, q: str, mode: str) -> set[str]:
    return {h["message_id"] for h in await search(api, user, q, mode)}


async def test_a_mixed_delivery_records_the_text_and_applies_the_edit_and_the_revoke(
        api: httpx.AsyncClient, database: asyncpg.Connection) -> None:
    user = str(uuid.uuid4().int)[:12]
    kettle, locker = f"wamid.{uuid.uuid4().hex}", f"wamid.{uuid.uuid4().hex}"
    first = await api.post("/webhooks/whatsapp", **signed(delivery(value(
        user, text(user, "I need the blue kettle delivered by Friday", kettle),
        text(user, "my locker code is 4471 zebra", locker)))))
    assert first.status_code == 200, first.text
    for wamid in (kettle, locker):  # recorded and embedded before they are amended
        await eventually(lambda w=wamid: database.fetchval(  # type: ignore[misc]
            "SELECT 1 FROM messages WHERE external_id = $1 AND embedded_at IS NOT NULL", w))

    latest = f"wamid.{uuid.uuid4().hex}"
    mixed = delivery(
        value(user, text(user, "and a descaler please", latest),
              {"from": user, "id": f"wamid.{uuid.uuid4().hex}", "timestamp": str(int(time.time())),
               "type": "hologram", "hologram": {"frames": 3}},
              amend(user, "edit", kettle, "I need the red kettle delivered by Friday"),
              amend(user, "revoke", locker),
              statuses=[{"id": f"wamid.{uuid.uuid4().hex}", "status": "played", "timestamp": str(int(time.time())),
                         "recipient_id": user}]),
        {"field": "calls", "value": {"messaging_product": "whatsapp", "metadata": {"phone_number_id": PHONE_ID},
                                     "statuses": [{"id": "wacid.x", "type": "call", "status": "RINGING",
                                                   "timestamp": str(int(time.time())), "recipient_id": user}]}})
    resp = await api.post("/webhooks/whatsapp", **signed(mixed))
    assert resp.status_code == 200, resp.text
    assert resp.json() | {"already_recorded": 0} == {
        "status": "accepted", "messages": 2, "already_recorded": 0, "statuses": 1, "amendments": 2,
        "number_changes": 0, "unknown": 2}

    new = await eventually(lambda: row(database, latest))
    assert new["content"] == "and a descaler please"
    edited = await eventually(lambda: _where(database, kettle, "red kettle", revoked=False))
    assert edited["metadata"]["edited"]["count"] == 1
    revoked = await eventually(lambda: _where(database, locker, "", revoked=True))
    assert revoked["metadata"]["revoked"]["external_id"].startswith("wamid.")
    # Neither in the words nor in the vectors: the old wording and the revoked text are gone
    # (the fake model's replies quote what they answer; they are the assistant's turns).
    gone, now = str(revoked["id"]), str(edited["id"])
    assert gone not in await ids(api, user, "locker zebra", "fts") and now not in await ids(api, user, "blue", "fts")
    for mode in ("vector", "hybrid"):
        assert gone not in await ids(api, user, "my locker code is 4471 zebra", mode)
        hits = await search(api, user, "I need the blue kettle delivered by Friday", mode)
        assert [h["text"] for h in hits if h["message_id"] == now] == ["I need the red kettle delivered by Friday"]
    history = await api.get(f"/v1/conversations/{new['conversation_id']}/messages", headers=token(user, TENANT))
    texts = [m["text"] for m in history.json()["messages"]]
    assert "my locker code is 4471 zebra" not in texts and "I need the red kettle delivered by Friday" in texts
    played = await eventually(lambda: database.fetchval(
        "SELECT count(*) FROM delivery_statuses WHERE tenant_id = $1 AND status = 'played' AND external_id = $2",
        TENANT, mixed["entry"][0]["changes"][0]["value"]["statuses"][0]["id"]))
    assert played == 1


async def _where(conn: asyncpg.Connection, wamid: str, says: str, revoked: bool) -> asyncpg.Record | None:
    """The turn once it says `says` and is embedded again (an edit), or once it is revoked."""
    return await conn.fetchrow(
        """SELECT id, content, metadata FROM messages WHERE external_id = $1
            AND CASE WHEN $3 THEN deleted_at IS NOT NULL ELSE strpos(content, $2) > 0 AND embedded_at IS NOT NULL END""",
        wamid, says, revoked)


async def test_an_edit_and_a_revoke_before_their_originals_are_applied_when_those_arrive(
        api: httpx.AsyncClient, database: asyncpg.Connection) -> None:
    user = str(uuid.uuid4().int)[:12]
    typo, wrong = f"wamid.{uuid.uuid4().hex}", f"wamid.{uuid.uuid4().hex}"
    early = await api.post("/webhooks/whatsapp", **signed(delivery(value(
        user, amend(user, "edit", typo, "meet me at the north gate"), amend(user, "revoke", wrong)))))
    assert early.status_code == 200 and early.json()["amendments"] == 2
    waiting = await eventually(lambda: database.fetchval(
        "SELECT count(*) FROM message_amendments WHERE user_id = $1 AND applied_at IS NULL HAVING count(*) = 2", user))
    assert waiting == 2
    late = await api.post("/webhooks/whatsapp", **signed(delivery(value(
        user, text(user, "meet me at the nrth gate", typo), text(user, "wrong chat, ignore", wrong)))))
    assert late.status_code == 200
    fixed = await eventually(lambda: row(database, typo))
    assert fixed["content"] == "meet me at the north gate"
    gone = await eventually(lambda: row(database, wrong))
    assert gone["deleted_at"] is not None
    assert str(fixed["id"]) not in await ids(api, user, "nrth", "fts")
    assert str(gone["id"]) not in await ids(api, user, "wrong chat", "fts")
    # The revoked message was never announced, so nothing answered it.
    assert await database.fetchval("SELECT count(*) FROM messages WHERE in_reply_to = $1", gone["id"]) == 0


async def test_business_app_echoes_are_assistant_turns_and_a_changed_number_stays_the_same_user(
        api: httpx.AsyncClient, database: asyncpg.Connection) -> None:
    user, new_number = str(uuid.uuid4().int)[:12], str(uuid.uuid4().int)[:12]
    asked = f"wamid.{uuid.uuid4().hex}"
    await api.post("/webhooks/whatsapp", **signed(delivery(value(user, text(user, "do you ship to Porto?", asked)))))
    echo_id = f"wamid.{uuid.uuid4().hex}"
    echo = {"from": "15550001111", "to": user, "id": echo_id, "timestamp": str(int(time.time())),
            "type": "text", "text": {"body": "Yes, Porto in two days (sent from the shop's phone)"}}
    resp = await api.post("/webhooks/whatsapp", **signed(delivery({"field": "smb_message_echoes", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550001111", "phone_number_id": PHONE_ID},
        "message_echoes": [echo]}})))
    assert resp.status_code == 200 and resp.json()["messages"] == 1
    first, answer = await eventually(lambda: row(database, asked)), await eventually(lambda: row(database, echo_id))
    assert (answer["role"], answer["reply_expected"], answer["conversation_id"]) == (
        "assistant", False, first["conversation_id"])
    changed = {"from": user, "id": f"wamid.{uuid.uuid4().hex}", "timestamp": str(int(time.time())), "type": "system",
               "system": {"body": "User Priya changed number", "wa_id": new_number, "type": "user_changed_number"}}
    after = text(new_number, "it's me, new phone")
    resp = await api.post("/webhooks/whatsapp", **signed(delivery(value(user, changed), value(new_number, after))))
    assert resp.status_code == 200 and resp.json()["number_changes"] == 1
    moved = await eventually(lambda: row(database, after["id"]))
    assert (moved["user_id"], moved["conversation_id"]) == (user, first["conversation_id"])
    assert moved["metadata"]["whatsapp"]["wa_id"] == new_number  # replies go to the new number
    assert moved["id"] == identity.message_id_for_external(TENANT, user, after["id"])
    assert await database.fetchval("SELECT count(*) FROM messages WHERE external_id = $1", changed["id"]) == 0


@pytest.mark.parametrize("other", wf.CHANGES, ids=[c.name for c in wf.CHANGES])
async def test_each_other_change_field_beside_a_text_is_answered_200_and_the_text_recorded(
        api: httpx.AsyncClient, database: asyncpg.Connection, other: wf.OtherChange) -> None:
    user = str(uuid.uuid4().int)[:12]
    said = text(user, "hello beside " + other.name)
    resp = await api.post("/webhooks/whatsapp", **signed(delivery(other.change, value(user, said))))
    assert resp.status_code == 200 and resp.json()["unknown"] == 1
    assert (await eventually(lambda: row(database, said["id"])))["content"] == said["text"]["body"]


async def test_http_attachments_are_recorded_and_their_captions_found(
        api: httpx.AsyncClient, database: asyncpg.Connection) -> None:
    user = f"att-{uuid.uuid4().hex[:10]}"
    resp = await api.post("/v1/messages", headers=token(user), json={"user_id": user, "text": "for the claim", "attachments": [
        {"url": "https://files.example/claims/77.jpg", "mime_type": "image/jpeg", "size": 1200,
         "caption": "dented tailgate after the hailstorm"}]})
    assert resp.status_code == 202, resp.text
    message_id = resp.json()["message_id"]
    stored = await eventually(lambda: database.fetchrow(
        "SELECT content, metadata FROM messages WHERE id = $1 AND embedded_at IS NOT NULL", uuid.UUID(message_id)))
    assert stored["metadata"]["attachments"][0]["url"] == "https://files.example/claims/77.jpg"
    for mode in ("fts", "hybrid"):
        found = await api.get("/v1/search", params={"q": "hailstorm tailgate", "mode": mode}, headers=token(user))
        assert message_id in {h["message_id"] for h in found.json()["hits"]}
