"""The read API and import on the real stack: search, conversations, stats, `convmem import`."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from composition.runtime import Runtime
from contracts import topics
from tests.conftest import Tap, eventually, token, unique
from tests.services import Endpoints

pytestmark = pytest.mark.stack
SERVICE = ("service",)
# History old enough to be history, within the default message retention (90 days).
PAST = datetime.now(UTC).replace(microsecond=0) - timedelta(days=30)


async def history(api: httpx.AsyncClient, user: str, turns: list[tuple[str, str]], days_ago: int = 0,
                  conversation_id: str | None = None,
                  metadata: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Backfill turns as a chatbot backend would: service token, no replies wanted; each turn
    with its own metadata when given."""
    out: list[dict[str, Any]] = []
    for i, (role, text) in enumerate(turns):
        body: dict[str, Any] = {
            "user_id": user, "text": text, "role": role, "reply_expected": False,
            "metadata": metadata[i] if metadata else {},
            "occurred_at": (datetime.now(UTC) - timedelta(days=days_ago, minutes=len(turns) - i)).isoformat()}
        if conversation_id:
            body["conversation_id"] = conversation_id
        resp = await api.post("/v1/messages", json=body, headers=token("backend", roles=SERVICE))
        assert resp.status_code == 202, resp.text
        conversation_id = resp.json()["conversation_id"]
        out.append(resp.json())
    return out


async def search(api: httpx.AsyncClient, user: str, q: str, **params: str | int) -> dict[str, Any]:
    resp = await api.get("/v1/search", params={"q": q, **params}, headers=token(user))
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def test_search_finds_old_turns_by_words_and_meaning_for_their_owner_only(
        api: httpx.AsyncClient, runtime: Runtime) -> None:
    ana, ben = unique("ana"), unique("ben")
    [_, fact, _] = await history(api, ana, [("user", "hi"), ("user", "My sister Lucia just moved to Porto"),
                                            ("assistant", "How exciting, say hi to her!")], days_ago=20)
    await history(api, ben, [("user", "My sister Lucia just moved to Porto")], days_ago=20)
    [old] = await history(api, ana, [("user", "Lucia and I loved our Porto holiday")], days_ago=80)
    found = await eventually(lambda: _hit(api, ana, "where does my sibling live now?", fact["message_id"],
                                          mode="vector", stages="none"), timeout=60)
    assert found["role"] == "user" and found["conversation_id"] == fact["conversation_id"]
    assert "vector" in found["matched_by"]

    # the turn after the fact may still be on its way to the recorder: wait for both neighbours
    body = await eventually(lambda: _with_context(api, ana, "Lucia Porto", 2), timeout=30)
    top = body["hits"][0]
    assert top["message_id"] == fact["message_id"] and set(top["matched_by"]) == {"fts", "vector"}
    assert [c["text"] for c in top["context"]] == ["hi", "How exciting, say hi to her!"]
    assert body["mode"] == "hybrid" and body["stages"] == ["neighbours"]
    assert {h["message_id"] for h in body["hits"]}.isdisjoint(
        {h["message_id"] for h in (await search(api, ben, "Lucia Porto"))["hits"]})

    timed = await search(api, ana, "what did I say about Porto three weeks ago?")
    ranked = [h["message_id"] for h in timed["hits"]]
    assert timed["timeframe"] is not None and fact["message_id"] in ranked[:2]
    assert old["message_id"] not in ranked or ranked.index(old["message_id"]) > ranked.index(fact["message_id"])
    window = {"since": (datetime.now(UTC) - timedelta(days=5)).isoformat()}
    assert (await search(api, ana, "Lucia Porto", **window))["hits"] == []
    admin = await api.get("/v1/search", params={"q": "Lucia", "user_id": ana},
                          headers=token("boss", roles=("admin",)))
    assert admin.status_code == 200 and admin.json()["hits"][0]["message_id"] == fact["message_id"]


async def _with_context(api: httpx.AsyncClient, user: str, q: str, n: int) -> dict[str, Any] | None:
    body = await search(api, user, q, k=3, stages="neighbours")
    return body if body["hits"] and len(body["hits"][0]["context"]) == n else None


async def _hit(api: httpx.AsyncClient, user: str, q: str, message_id: str, **params: str | int
               ) -> dict[str, Any] | None:
    hits = (await search(api, user, q, **params))["hits"]
    return next((h for h in hits if h["message_id"] == message_id), None)


@pytest.mark.parametrize(("params", "status", "field"), [
    ({"q": ""}, 422, "q"),
    ({"q": "x", "k": 0}, 422, "k"),
    ({"q": "x", "mode": "bm25"}, 422, "mode"),
    ({"q": "x", "stages": "magic"}, 422, "stages"),
    ({"q": "x", "since": "2026-01-01T00:00:00"}, 422, "since"),
    ({"q": "x", "since": "1970-06-01T00:00:00Z"}, 422, "since"),
    ({"q": "x", "until": "0.5"}, 422, "until"),
    ({"q": "x", "stages": "temporal,magic"}, 422, "stages"),
    ({"q": "x", "user_id": "someone-else"}, 403, None),
    ({"q": "x", "conversation_id": str(uuid.uuid4())}, 404, None),
])
async def test_bad_search_requests_get_a_precise_4xx(api: httpx.AsyncClient, runtime: Runtime,
                                                     params: dict[str, str | int], status: int,
                                                     field: str | None) -> None:
    resp = await api.get("/v1/search", params=params, headers=token(unique("u")))
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error"] and body["message"]
    if field:
        assert field in [f["field"].split(".")[-1] for f in body["fields"]], body


async def test_a_window_that_holds_nothing_finds_nothing(api: httpx.AsyncClient, runtime: Runtime) -> None:
    """since at or after until is an empty window, not an error: the document cannot state an
    order between two parameters, so the server does not enforce one."""
    ana = unique("ana")
    await history(api, ana, [("user", "The window test: we moved to Porto in March")])
    resp = await api.get("/v1/search", params={"q": "Porto", "since": "2026-02-01T00:00:00Z",
                                               "until": "2026-01-01T00:00:00Z"}, headers=token(ana))
    assert resp.status_code == 200, resp.text
    assert resp.json()["hits"] == []


async def test_conversations_list_page_rename_archive_and_delete(
        api: httpx.AsyncClient, runtime: Runtime) -> None:
    ana = unique("ana")
    convs: list[str] = []
    for i in range(3):
        [turn] = await history(api, ana, [("user", f"Plan number {i}: repaint the kitchen blue")])
        convs.append(turn["conversation_id"])
    me = token(ana)
    listed: list[str] = []
    cursor: str | None = None
    for _ in range(3):
        resp = await eventually(functools.partial(_page, api, ana, cursor, len(convs)), timeout=30)
        listed += [c["conversation_id"] for c in resp["conversations"]]
        cursor = resp["next_cursor"]
        if cursor is None:
            break
    assert sorted(listed) == sorted(convs) and len(listed) == 3
    # A cursor's shape is published (digits, a dot, 32 hex digits); anything else is a 422 naming it.
    bad = await api.get("/v1/conversations", params={"cursor": "garbage"}, headers=me)
    assert bad.status_code == 422 and bad.json()["fields"][0]["field"].endswith("cursor"), bad.text
    assert (await api.get("/v1/conversations", params={"user_id": unique("x")}, headers=me)).status_code == 403

    detail = (await api.get(f"/v1/conversations/{convs[0]}", headers=me)).json()
    assert detail["title"] == "Plan number 0: repaint the kitchen blue" and detail["messages"][0]["seq"] == 1
    assert detail["messages"][0]["language"] == "en"
    renamed = await api.patch(f"/v1/conversations/{convs[0]}", json={"title": "Kitchen", "status": "archived"},
                              headers=me)
    assert renamed.status_code == 200 and renamed.json()["title_source"] == "user"
    assert renamed.json()["status"] == "archived"
    assert (await api.patch(f"/v1/conversations/{convs[0]}", json={}, headers=me)).status_code == 422
    assert (await api.patch(f"/v1/conversations/{convs[0]}", json={"status": "deleted"}, headers=me)).status_code == 422
    assert (await api.get(f"/v1/conversations/{convs[0]}", headers=token(unique("eve")))).status_code == 404
    archived = (await api.get("/v1/conversations", params={"status": "archived"}, headers=me)).json()
    assert [c["conversation_id"] for c in archived["conversations"]] == [convs[0]]

    await eventually(lambda: _hit(api, ana, "repaint kitchen", detail["messages"][0]["message_id"], mode="vector"))
    deleted = await api.delete(f"/v1/conversations/{convs[0]}", headers=me)
    assert deleted.status_code == 200 and deleted.json()["messages"] == 1
    assert (await api.get(f"/v1/conversations/{convs[0]}", headers=me)).status_code == 404
    for mode in ("hybrid", "vector", "fts"):
        hits = (await search(api, ana, "Plan number 0 repaint the kitchen", mode=mode))["hits"]
        assert convs[0] not in {h["conversation_id"] for h in hits}, mode
    again = await api.post("/v1/messages", json={"user_id": ana, "text": "still there?", "conversation_id": convs[0]},
                           headers=me)
    assert again.status_code == 404


async def _page(api: httpx.AsyncClient, user: str, cursor: str | None, expected: int) -> dict[str, Any] | None:
    params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
    body = (await api.get("/v1/conversations", params=params, headers=token(user))).json()
    total = (await api.get("/v1/conversations", params={"limit": 50}, headers=token(user))).json()
    return body if len(total["conversations"]) == expected else None


async def test_stats_per_user_and_per_tenant_for_admins(
        api: httpx.AsyncClient, runtime: Runtime, tap: Tap) -> None:
    ana = unique("ana")
    resp = await api.post("/v1/messages", json={"user_id": ana, "text": "Can you help me book a table?"},
                          headers=token(ana))
    assert resp.status_code == 202
    stats = await eventually(lambda: _stats(api, ana, replied=1), timeout=60)
    assert stats["scope"] == "user" and stats["conversations"] == 1
    assert stats["by_role"] == {"user": 1, "assistant": 1, "system": 0} and stats["success_rate"] == 1.0
    titled = await eventually(lambda: _titled_by_model(api, ana), timeout=30)
    assert titled["title"] and titled["title"] != "Can you help me book a table?"
    detail = (await api.get(f"/v1/conversations/{titled['conversation_id']}", headers=token(ana))).json()
    assert (detail["messages"][0]["intent"], detail["messages"][0]["language"]) == ("booking", "en")
    tenant = (await api.get("/v1/stats", headers=token("boss", roles=("admin",)))).json()
    assert tenant["scope"] == "tenant" and tenant["users"] >= 1 and tenant["messages"] >= 2
    assert (await api.get("/v1/stats", params={"user_id": "x"}, headers=token(ana))).status_code == 403
    assert (await api.get("/v1/stats")).status_code == 401


async def _titled_by_model(api: httpx.AsyncClient, user: str) -> dict[str, Any] | None:
    [conv] = (await api.get("/v1/conversations", headers=token(user))).json()["conversations"]
    return conv if conv["title_source"] == "model" else None


async def _stats(api: httpx.AsyncClient, user: str, replied: int) -> dict[str, Any] | None:
    body = (await api.get("/v1/stats", headers=token(user))).json()
    return body if body["replied"] == replied and body["messages"] == 2 else None


async def test_import_is_idempotent_keeps_timestamps_and_asks_for_no_replies(
        api: httpx.AsyncClient, runtime: Runtime, tap: Tap, endpoints: Endpoints, tmp_path: Path) -> None:
    ana, chat = unique("ana"), unique("chat")
    lines = [json.dumps({"tenant": "default", "user": ana, "conversation": chat, "role": role, "text": text,
                         "external_id": f"{chat}-{i}", "timestamp": (PAST + timedelta(minutes=i)).isoformat(),
                         "metadata": {"source": "legacy-crm"}})
             for i, (role, text) in enumerate([("user", "I need a vegan cake for Saturday"),
                                               ("assistant", "Sure, chocolate or lemon?"),
                                               ("user", "Lemon please, for twelve people")])]
    lines.insert(1, '{"user": "x", "text": "no conversation"}')
    file = tmp_path / "history.jsonl"
    file.write_text("\n".join(lines) + "\n")
    env = os.environ | {"CONVMEM_KAFKA_BOOTSTRAP": endpoints.kafka_bootstrap,
                        "CONVMEM_DATABASE_URL": endpoints.database_url}
    first = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "composition.cli", "import", str(file)],
                                    capture_output=True, text=True, env=env, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "imported 3 message(s) from 4 line(s)" in first.stdout and "msg/s" in first.stdout
    assert "line 2: conversation" in first.stderr

    token_ana = token(ana)
    convs = await eventually(lambda: _conversation_with(api, ana, 3), timeout=60)
    detail = (await api.get(f"/v1/conversations/{convs}", headers=token_ana)).json()
    assert [m["role"] for m in detail["messages"]] == ["user", "assistant", "user"]
    assert datetime.fromisoformat(detail["messages"][0]["occurred_at"]) == PAST
    assert detail["messages"][0]["metadata"] == {"source": "legacy-crm"} and detail["channel"] == "import"

    second = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "composition.cli", "import", str(file)],
                                     capture_output=True, text=True, env=env, timeout=120)
    assert second.returncode == 0 and "imported 0 message(s)" in second.stdout and "3 already stored" in second.stdout
    await asyncio.sleep(2)
    ids = {m["message_id"] for m in detail["messages"]}
    assert not [r for r in tap.on(topics.REPLIES) if json.loads(r.value)["in_reply_to"] in ids]
    assert len((await api.get(f"/v1/conversations/{convs}", headers=token_ana)).json()["messages"]) == 3


async def _conversation_with(api: httpx.AsyncClient, user: str, n: int) -> str | None:
    body = (await api.get("/v1/conversations", headers=token(user))).json()
    full = [c for c in body["conversations"] if c["message_count"] == n]
    return full[0]["conversation_id"] if full else None
