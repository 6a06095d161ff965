"""Signed WhatsApp webhooks of wrong shapes and sizes, drawn by Hypothesis."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx

from bench.fuzzing.common import Figures, random_address, sign


def valid_webhook(n: int = 1, sender: str = "4915100000000") -> dict[str, Any]:
    msgs = [{"from": sender, "id": f"wamid.fuzz{uuid.uuid4().hex}", "timestamp": str(int(time.time())),
             "type": "text", "text": {"body": f"fuzz message {i}"}} for i in range(n)]
    return {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "1555", "phone_number_id": "fuzz-number"},
        "contacts": [{"profile": {"name": "F"}, "wa_id": sender}], "messages": msgs,
        "statuses": [{"id": f"wamid.out{uuid.uuid4().hex}", "status": "delivered", "timestamp": str(int(time.time())),
                      "recipient_id": sender}]}}]}]}


PATHS: list[tuple[Any, ...]] = [
    ("object",), ("entry",), ("entry", 0), ("entry", 0, "changes"), ("entry", 0, "changes", 0),
    ("entry", 0, "changes", 0, "value"), *[("entry", 0, "changes", 0, "value", k) for k in
                                           ("metadata", "contacts", "messages", "statuses")],
    ("entry", 0, "changes", 0, "value", "metadata", "phone_number_id"),
    ("entry", 0, "changes", 0, "value", "contacts", 0), ("entry", 0, "changes", 0, "value", "contacts", 0, "wa_id"),
    ("entry", 0, "changes", 0, "value", "contacts", 0, "profile"),
    ("entry", 0, "changes", 0, "value", "messages", 0),
    *[("entry", 0, "changes", 0, "value", "messages", 0, k) for k in
      ("id", "from", "timestamp", "type", "text", "context", "interactive", "location", "reaction", "contacts")],
    ("entry", 0, "changes", 0, "value", "messages", 0, "text", "body"),
    ("entry", 0, "changes", 0, "value", "statuses", 0),
    *[("entry", 0, "changes", 0, "value", "statuses", 0, k) for k in ("id", "status", "timestamp", "recipient_id",
                                                                      "errors")],
]


def set_path(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    for step in path[:-1]:
        doc = doc[step]
    doc[path[-1]] = value


def run_webhook_fuzz(client: httpx.Client, app_secret: str, examples: int, fig: Figures) -> None:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    scalars = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
               | st.sampled_from(["text", "image", "interactive", "location", "reaction", "contacts", "\x00", "9" * 40]))
    values = st.recursive(scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c,
                                                                                        max_size=4), max_leaves=12)

    @given(path=st.sampled_from(PATHS), value=values, kind=st.sampled_from(["text", "interactive", "location",
                                                                           "contacts", "reaction", "order"]))
    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    def one(path: tuple[Any, ...], value: Any, kind: str) -> None:
        doc = valid_webhook()
        doc["entry"][0]["changes"][0]["value"]["messages"][0]["type"] = kind
        set_path(doc, path, value)
        raw = json.dumps(doc).encode()
        headers = {"X-Hub-Signature-256": sign(app_secret, raw), "Content-Type": "application/json",
                   "X-Forwarded-For": random_address()}
        try:
            r = client.post("/webhooks/whatsapp", content=raw, headers=headers)
        except (httpx.ReadError, httpx.RemoteProtocolError):  # the server dropped the kept-alive connection
            r = client.post("/webhooks/whatsapp", content=raw, headers=headers)
        fig.record("webhook fuzz", r.status_code, "/".join(map(str, path)))

    one()
    for n in (1, 50, 200, 500):  # many messages in one delivery, as Meta batches them
        raw = json.dumps(valid_webhook(n, sender=f"49{uuid.uuid4().int % 10**10}")).encode()
        t = time.perf_counter()
        r = client.post("/webhooks/whatsapp", content=raw, headers={"X-Hub-Signature-256": sign(app_secret, raw),
                                                                    "Content-Type": "application/json"})
        fig.record("webhook batches", r.status_code, f"{n} messages")
        print(f"  webhook with {n} messages: {r.status_code} in {time.perf_counter() - t:.2f} s")
