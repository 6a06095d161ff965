"""`convmem demo`: a scripted exchange across users, conversations and channels, driven
through the public HTTP API of a running system (or one started in this process)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import socket
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from convmem.settings import IngestSettings, load
from services.ingest.auth import issue_token

TENANT = "default"


@dataclass
class Ledger:
    texts: dict[str, str] = field(default_factory=dict)  # message id -> what was said
    turns: int = 0
    replies: int = 0
    recalled: int = 0


async def _reply_for(api: httpx.AsyncClient, headers: dict[str, str], conv: str, message_id: str,
                     timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        resp = await api.get(f"/v1/conversations/{conv}/messages", headers=headers)
        if resp.status_code == 200:
            messages: list[dict[str, Any]] = resp.json()["messages"]
            for m in messages:
                if m["role"] == "assistant" and m["in_reply_to"] == message_id:
                    return m
        await asyncio.sleep(0.2)
    raise TimeoutError(f"no reply to {message_id} within {timeout}s")


async def _say(api: httpx.AsyncClient, ledger: Ledger, secret: str, user: str, text: str,
               conv: str | None = None) -> str:
    headers = {"Authorization": f"Bearer {issue_token(secret, user, TENANT)}"}
    body: dict[str, Any] = {"user_id": user, "text": text, "external_id": f"demo-{uuid.uuid4()}"}
    if conv:
        body["conversation_id"] = conv
    resp = await api.post("/v1/messages", json=body, headers=headers)
    resp.raise_for_status()
    accepted = resp.json()
    ledger.texts[accepted["message_id"]] = f"{user}: {text}"
    reply = await _reply_for(api, headers, accepted["conversation_id"], accepted["message_id"])
    ledger.turns += 2
    ledger.replies += 1
    sources = reply["metadata"].get("sources", [])
    ledger.recalled += len(sources)
    print(f"\n[{user} | conversation {accepted['conversation_id'][:8]}] {text}")
    print(f"  reply ({reply['metadata'].get('model')}):")
    for line in reply["text"].splitlines():
        print(f"    {line}")
    for s in sources:
        print(f"  recalled: {ledger.texts.get(s, s)}")
    return str(accepted["conversation_id"])


def _delivery(resp: httpx.Response) -> str:
    """What a webhook answer knows: a redelivery that came before its first copy was stored is
    not counted as a duplicate at the edge; it is accepted and deduplicated downstream."""
    if resp.status_code != 200:
        return str(resp.json())
    body = resp.json()
    fresh = body["messages"] - body["already_recorded"]
    said = f"{body['messages']} message(s): {body['already_recorded']} already recorded"
    return said + (f", {fresh} accepted (any redelivered ones deduplicated downstream)" if fresh else "")


async def _whatsapp(api: httpx.AsyncClient, settings: IngestSettings, ledger: Ledger, wa_id: str, text: str) -> None:
    body = {"object": "whatsapp_business_account", "entry": [{"id": "demo", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550001111", "phone_number_id": "demo-number"},
        "contacts": [{"profile": {"name": "Demo"}, "wa_id": wa_id}],
        "messages": [{"from": wa_id, "id": f"wamid.demo{uuid.uuid4().hex}", "timestamp": str(int(time.time())),
                      "type": "text", "text": {"body": text}}]}}]}]}
    raw = json.dumps(body).encode()
    sig = hmac.new(settings.whatsapp_app_secret.get_secret_value().encode(), raw, hashlib.sha256).hexdigest()
    headers = {"X-Hub-Signature-256": f"sha256={sig}", "Content-Type": "application/json"}
    first = await api.post("/webhooks/whatsapp", content=raw, headers=headers)
    again = await api.post("/webhooks/whatsapp", content=raw, headers=headers)  # Meta redelivers
    print(f"\n[whatsapp {wa_id}] {text}")
    print(f"  webhook: {first.status_code} {_delivery(first)}; redelivery: {again.status_code} {_delivery(again)}")
    ledger.turns += 1


async def run_demo(with_workers: bool = False) -> int:
    settings = load(IngestSettings)
    runtime = None
    base = f"http://{settings.http_host}:{settings.http_port}"
    if with_workers:
        from composition.roles import consumer_groups
        from composition.runtime import ROLES, Runtime
        from convmem.delivery.provisioning import start_groups_at_end
        from convmem.settings import IndexerSettings, ResponderSettings, RetentionSettings

        # The demo's workers answer the demo: consumer groups of their own, from the end of the
        # topics, so whatever else a long-lived stack holds is not replayed first.
        fresh = {"group_prefix": f"demo-{uuid.uuid4().hex[:8]}"}
        await start_groups_at_end(settings.kafka_bootstrap, consumer_groups(ROLES, fresh["group_prefix"]))
        runtime = Runtime(ROLES, ingest=load(IngestSettings, **fresh), indexer=load(IndexerSettings, **fresh),
                          responder=load(ResponderSettings, **fresh), retention=load(RetentionSettings, **fresh),
                          http_port=settings.http_port if _free(settings.http_host, settings.http_port) else 0)
        await runtime.start()
        base = f"http://127.0.0.1:{runtime.port}"
    if settings.jwt_secret is None:
        print("convmem demo mints its own tokens: it needs CONVMEM_JWT_SECRET", file=sys.stderr)
        return 2
    secret = settings.jwt_secret.get_secret_value()
    ledger = Ledger()
    started = time.perf_counter()
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as api:
            ready = await api.get("/readyz")
            print(f"convmem at {base}: {ready.json()}")
            ana, ben = f"ana-{uuid.uuid4().hex[:6]}", f"ben-{uuid.uuid4().hex[:6]}"
            c1 = await _say(api, ledger, secret, ana, "Hi! I'm Ana. I am allergic to peanuts.")
            await _say(api, ledger, secret, ana, "I live in Lisbon and my cat is called Miso.", c1)
            await _say(api, ledger, secret, ben, "My favourite football team is Benfica.")
            await _whatsapp(api, settings, ledger, "351910000000", "Please deliver to Rua Augusta 10.")
            await asyncio.sleep(1.0)  # let the last turns reach the vector index
            print("\n--- a week later, new conversations ---")
            await _say(api, ledger, secret, ana, "Can you suggest a snack for me?")
            await _say(api, ledger, secret, ana, "What is my cat called?")
            await _say(api, ledger, secret, ben, "What is my cat called?")
        print(f"\nsummary: {ledger.turns} turns stored, {ledger.replies} replies published, "
              f"{ledger.recalled} memories recalled, {time.perf_counter() - started:.1f}s")
        _console(base, secret, ana, ben)
        if runtime is not None and sys.stdin.isatty():
            print("\nThe demo's workers keep serving the console: press Enter (or Ctrl-C) to stop them.")
            with contextlib.suppress(EOFError, KeyboardInterrupt):
                await asyncio.to_thread(input)
        elif runtime is not None:
            print(f"(No terminal to wait on: the demo's workers stop now. `convmem run all` serves the console "
                  f"at http://{settings.http_host}:{settings.http_port}/console with the same token.)")
    finally:
        if runtime is not None:
            await runtime.stop()
    return 0


def _free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _console(base: str, secret: str, *users: str) -> None:
    """How to look at what the demo stored: on the screen only (stdout), never in a log or a URL."""
    admin = issue_token(secret, "demo-admin", TENANT, ("admin",), ttl_s=4 * 3600)
    print(f"\n--- the console: {base}/console ---")
    print(f"Sign in as the admin of tenant {TENANT!r} by pasting this token (valid 4 hours; shown only here):")
    print(f"\n{admin}\n")
    print(f"Then look for the demo's users ({', '.join(users)}) under Users, search their memory under Memory, "
          "and watch the pipeline under Overview.")
