"""Fuzz the HTTP edge from the outside, as a new user would, and print figures per area.

Starts `convmem run ingest` (and `convmem run indexer`, to see what the recorder does with what
the edge accepted) as separate processes on the local stack, then:
- Schemathesis over the served OpenAPI document, every operation, as an anonymous caller (its
  own generated Authorization header) and with user, service and admin tokens, positive and
  negative examples;
- signed WhatsApp webhooks of wrong shapes and sizes (Hypothesis), and the verify handshake;
- the hand-written cases of issue 12;
- abuse: chunked 50 MB bodies in parallel, a bad-token flood, verify-token guessing.
It reports requests and 5xx per area, schema violations, 429s, what reached a dead-letter
topic, and the ingest process's resident memory (start, peak, end).

Usage: python bench/edge_fuzz.py [--examples 25] [--webhook-examples 400] [--abuse-s 5]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import itertools
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from convmem.settings import IngestSettings, load  # noqa: E402

TENANT = "fuzz"


class Figures:
    def __init__(self) -> None:
        self.statuses: dict[str, Counter[int]] = defaultdict(Counter)
        self.violations: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = defaultdict(list)
        self.lock = threading.Lock()

    def record(self, area: str, status: int, what: str = "") -> None:
        with self.lock:
            self.statuses[area][status] += 1
            if status >= 500 and len(self.examples[area]) < 8:
                self.examples[area].append(f"{status} {what}"[:200])

    def violation(self, kind: str, what: str) -> None:
        with self.lock:
            self.violations[kind] += 1
            if len(self.examples["violations"]) < 8:
                self.examples["violations"].append(f"{kind}: {what}"[:300])


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_kb, self.stop = pid, 0, threading.Event()

    def rss_kb(self, field: str = "VmRSS") -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        return 0

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.peak_kb = max(self.peak_kb, self.rss_kb())
            except OSError:
                return
            time.sleep(0.1)


def token(secret: str, sub: str, roles: list[Any], **extra: Any) -> str:
    now = int(time.time())
    claims = {"sub": sub, "tenant": TENANT, "roles": roles, "iat": now, "exp": now + 3600, **extra}
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, secret, algorithm="HS256")


_CALLERS = itertools.count(1)


def random_address() -> str:
    """A new client address as the ingest process (which trusts X-Forwarded-For from localhost)
    sees it. Counted, not drawn: Hypothesis seeds `random` the same way for every test."""
    n = next(_CALLERS)
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def sign(secret: str, raw: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


# ------------------------------------------------------------------------------- schemathesis


def run_schemathesis(base: str, secret: str, examples: int, fig: Figures) -> None:
    import requests
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error, response_schema_conformance

    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    session = requests.Session()
    roles: dict[str, str | None] = {"anonymous": None,
                                    "user": token(secret, "fuzz-user", ["user"]),
                                    "service": token(secret, "fuzz-bot", ["service"]),
                                    "admin": token(secret, "fuzz-admin", ["admin"])}
    def fuzz_operation(op: Any, mode: Any, bearer: str | None, area: str) -> None:
        @given(case=op.as_strategy(generation_mode=mode))
        @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        def one(case: Any) -> None:
            if bearer is not None:
                case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
                case.headers["Authorization"] = f"Bearer {bearer}"
            # Many callers, as in the field: one address's rejected tokens must not lock the others out.
            case.headers = {**(case.headers or {}), "X-Forwarded-For": random_address()}
            try:
                try:
                    response = case.call(base_url=base, session=session, timeout=60)
                except requests.ConnectionError:  # the server dropped the kept-alive connection: once more
                    response = case.call(base_url=base, session=session, timeout=60)
            except Exception as exc:  # a refused request (bad header bytes) is the client's doing
                fig.record(area, 0, type(exc).__name__)
                return
            fig.record(area, response.status_code, f"{case.method} {case.formatted_path}")
            for check, kind in ((not_a_server_error, None), (response_schema_conformance, "schema")):
                try:
                    case.validate_response(response, checks=[check])
                except BaseExceptionGroup as exc:  # Schemathesis reports its failures as a group
                    if kind is not None:
                        fig.violation(kind, f"{area} {response.status_code}: {str(exc)[:200]}")

        try:
            one()
        except Unsatisfiable:  # nothing to make invalid (an operation without parameters)
            pass

    for result in schema.get_all_operations():
        op = result.ok()
        area = f"api {op.method.upper()} {op.path}"
        for bearer in roles.values():
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                fuzz_operation(op, mode, bearer, area)


# ---------------------------------------------------------------------------------- webhooks


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


# ------------------------------------------------------------------------------- hand cases


def hand_cases(secret: str, app_secret: str) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """(name, method, path, httpx kwargs): the cases issue 12 lists."""
    user = {"Authorization": f"Bearer {token(secret, 'hand-user', ['user'])}"}
    admin = {"Authorization": f"Bearer {token(secret, 'hand-admin', ['admin'])}"}
    svc = {"Authorization": f"Bearer {token(secret, 'hand-bot', ['service'])}"}

    def post(name: str, body: dict[str, Any], headers: dict[str, str] = user) -> tuple[str, str, str, dict[str, Any]]:
        return name, "POST", "/v1/messages", {"json": body, "headers": headers}

    def raw_post(name: str, raw: bytes, headers: dict[str, str] = user) -> tuple[str, str, str, dict[str, Any]]:
        return name, "POST", "/v1/messages", {"content": raw, "headers": headers | {"content-type": "application/json"}}

    base = {"user_id": "hand-user", "text": "hi"}
    yield post("NUL in text", base | {"text": "a\x00b"})
    yield post("NUL in metadata key", base | {"metadata": {"k\x00": 1}})
    yield post("NUL in metadata value", base | {"metadata": {"k": "v\x00"}})
    yield post("NUL in external_id", base | {"external_id": "e\x00"})
    yield post("NUL in user_id (service)", {"user_id": "u\x00", "text": "hi"}, svc)
    yield post("occurred_at 0001+14:00", base | {"occurred_at": "0001-01-01T00:00:00+14:00"})
    yield post("occurred_at 9999-12-31-14:00", base | {"occurred_at": "9999-12-31T23:59:59-14:00"})
    yield post("occurred_at year 1", base | {"occurred_at": "0001-01-01T00:00:00Z"})
    deep: Any = 1
    for _ in range(300):
        deep = {"a": deep}
    yield post("metadata nested 300", base | {"metadata": deep})
    yield post("metadata int 10^30", base | {"metadata": {"n": 10**30}})
    yield raw_post("metadata NaN", b'{"user_id": "hand-user", "text": "hi", "metadata": {"n": NaN}}')
    yield raw_post("metadata Infinity", b'{"user_id": "hand-user", "text": "hi", "metadata": {"n": Infinity}}')
    yield raw_post("lone surrogate in text", b'{"user_id": "hand-user", "text": "\\ud800"}')
    yield post("user sets reply_expected false", base | {"reply_expected": False})
    conv = str(uuid.uuid4())
    yield "after_seq 2^31", "GET", f"/v1/conversations/{conv}/messages", {"params": {"after_seq": 2**31},
                                                                            "headers": user}
    yield "since extreme", "GET", "/v1/conversations", {"params": {"since": "0001-01-01T00:00:00+14:00"},
                                                        "headers": user}
    yield "until extreme", "GET", "/v1/search", {"params": {"q": "x", "until": "9999-12-31T23:59:59-14:00"},
                                                 "headers": user}
    yield "NUL in type", "GET", "/v1/conversations", {"params": {"type": "a\x00"}, "headers": user}
    yield "NUL in admin user_id", "GET", "/v1/conversations", {"params": {"user_id": "a\x00"}, "headers": admin}
    yield "NUL in search q", "GET", "/v1/search", {"params": {"q": "a\x00"}, "headers": user}
    yield "NUL in PATCH title", "PATCH", f"/v1/conversations/{conv}", {"json": {"title": "a\x00"}, "headers": user}
    yield "NUL in path user_id", "GET", "/v1/users/a%00b/summary", {"headers": admin}
    for claim, value in (("sub", "a\x00b"), ("tenant", "t\x00"), ("roles", [["admin"]]), ("roles", "admin"),
                         ("exp", None)):
        now = int(time.time())
        claims: dict[str, Any] = {"sub": "hand-user", "tenant": TENANT, "roles": ["user"], "iat": now,
                                  "exp": now + 3600, claim: value}
        bad = jwt.encode({k: v for k, v in claims.items() if v is not None}, secret, algorithm="HS256")
        yield f"JWT {claim}={value!r}", "GET", "/v1/stats", {"headers": {"Authorization": f"Bearer {bad}"}}
    yield "policy retention true", "PUT", "/v1/tenant/policy", {"json": {"message_retention_days": True},
                                                               "headers": admin}
    raw = json.dumps(valid_webhook()).encode()
    yield "non-ASCII signature", "POST", "/webhooks/whatsapp", {
        "content": raw, "headers": {"X-Hub-Signature-256": "sha256=é".encode()}}
    for name, path, value in (("entry abc", ("entry",), "abc"), ("changes {}", ("entry", 0, "changes"), {}),
                              ("messages [5]", ("entry", 0, "changes", 0, "value", "messages"), [5]),
                              ("message id number", ("entry", 0, "changes", 0, "value", "messages", 0, "id"), 5),
                              ("statuses x", ("entry", 0, "changes", 0, "value", "statuses"), "x"),
                              ("contacts wa_id list", ("entry", 0, "changes", 0, "value", "contacts"),
                               [{"wa_id": ["x"]}]),
                              ("from NUL", ("entry", 0, "changes", 0, "value", "messages", 0, "from"), "a\x00")):
        doc = valid_webhook()
        set_path(doc, path, value)
        raw = json.dumps(doc).encode()
        yield f"webhook {name}", "POST", "/webhooks/whatsapp", {
            "content": raw, "headers": {"X-Hub-Signature-256": sign(app_secret, raw)}}


def run_hand_cases(client: httpx.Client, secret: str, app_secret: str, fig: Figures) -> None:
    for name, method, path, kwargs in hand_cases(secret, app_secret):
        try:
            try:
                r = client.request(method, path, **kwargs)
            except (httpx.ReadError, httpx.RemoteProtocolError):  # the server dropped the kept-alive connection
                r = client.request(method, path, **kwargs)
            status = r.status_code
        except httpx.HTTPError as exc:
            status = 0
            print(f"  {name}: {type(exc).__name__}")
        fig.record("hand cases", status, name)
        print(f"  {status} {name}")


# ------------------------------------------------------------------------------------ abuse


def chunked(total: int, piece: int = 1 << 20) -> Iterator[bytes]:
    block = b"x" * piece
    for _ in range(total // piece):
        yield block


def run_abuse(base: str, secret: str, app_secret: str, seconds: float, sampler: RssSampler, fig: Figures) -> None:
    before = sampler.rss_kb()

    def big(signed: bool) -> None:
        headers = {"Content-Type": "application/json"}
        if signed:
            body = b"x" * (50 << 20)
            headers["X-Hub-Signature-256"] = sign(app_secret, body)
        try:
            with httpx.Client(base_url=base, timeout=120) as c:
                r = c.post("/webhooks/whatsapp", content=chunked(50 << 20), headers=headers)
            fig.record("abuse 50 MB chunked", r.status_code, "signed" if signed else "unsigned")
        except httpx.HTTPError as exc:
            fig.record("abuse 50 MB chunked", 0, type(exc).__name__)

    threads = [threading.Thread(target=big, args=(False,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    mid = sampler.peak_kb
    big(True)
    print(f"  4 x 50 MB chunked unsigned: RSS {before // 1024} -> peak {mid // 1024} MB")

    def flood(area: str, call: Callable[[httpx.Client], httpx.Response]) -> None:
        stop = time.monotonic() + seconds
        counts: Counter[int] = Counter()

        def worker() -> None:
            with httpx.Client(base_url=base, timeout=10) as c:
                while time.monotonic() < stop:
                    counts[call(c).status_code] += 1

        pool = [threading.Thread(target=worker) for _ in range(4)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        for status, n in counts.items():
            for _ in range(n):
                fig.record(area, status)
        total = sum(counts.values())
        print(f"  {area}: {total / seconds:.0f} req/s, {dict(counts)}")

    bad = {"Authorization": "Bearer " + jwt.encode({"sub": "x", "exp": int(time.time()) + 60}, "wrong-" * 8,
                                                    algorithm="HS256")}
    flood("abuse bad tokens", lambda c: c.get("/v1/stats", headers=bad))
    flood("abuse verify guesses", lambda c: c.get("/webhooks/whatsapp", params={
        "hub.mode": "subscribe", "hub.verify_token": uuid.uuid4().hex, "hub.challenge": "1"}))


# ---------------------------------------------------------------------------- dead letters


WATCHED = ("conv.inbound.v1", "conv.statuses.v1")


async def end_offsets(bootstrap: str, topics: tuple[str, ...]) -> dict[Any, int]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    c = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await c.start()
    try:
        await c._client.force_metadata_update()
        parts = [TopicPartition(t, p) for t in topics for p in (c.partitions_for_topic(t) or {0})]
        return dict(await c.end_offsets(parts))
    finally:
        await c.stop()


async def dead_letters_of_this_run(bootstrap: str, dlq_start: dict[Any, int], inbound_start: dict[Any, int]
                                   ) -> Counter[str]:
    """Dead letters of records published during the run (their original offset says so): the
    recorder may also be working through older records of the shared stack."""
    from aiokafka import AIOKafkaConsumer

    first = {(tp.topic, tp.partition): offset for tp, offset in inbound_start.items()}
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await c.start()
    reasons: Counter[str] = Counter()
    try:
        c.assign(list(dlq_start))
        end = await c.end_offsets(list(dlq_start))
        for tp, offset in dlq_start.items():
            c.seek(tp, offset)
        while [tp for tp in dlq_start if await c.position(tp) < end[tp]]:
            for records in (await c.getmany(timeout_ms=500)).values():
                for r in records:
                    h = {k: v.decode(errors="replace") for k, v in r.headers}
                    origin = (h.get("x-original-topic", ""), int(h.get("x-original-partition", "0")))
                    if int(h.get("x-original-offset", "-1")) >= first.get(origin, 0):
                        reasons[h.get("x-error", "?").split(":")[0][:80]] += 1
    finally:
        await c.stop()
    return reasons


# ------------------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, default=25, help="Schemathesis examples per operation, role and mode")
    ap.add_argument("--webhook-examples", type=int, default=400)
    ap.add_argument("--abuse-s", type=float, default=5.0)
    ap.add_argument("--port", type=int, default=int(os.environ.get("CONVMEM_HTTP_PORT", "8080")))
    ap.add_argument("--no-indexer", action="store_true")
    args = ap.parse_args()
    settings = load(IngestSettings)
    secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else ""
    app_secret = settings.whatsapp_app_secret.get_secret_value()
    base = f"http://127.0.0.1:{args.port}"
    convmem = str(ROOT / ".venv" / "bin" / "convmem")
    logs = open(ROOT / ".convmem" / "edge_fuzz.log", "wb")
    procs = [subprocess.Popen([convmem, "run", "ingest", "--port", str(args.port)],  # noqa: S603 - our own CLI
                              stdout=logs, stderr=logs)]
    if not args.no_indexer:
        # Qdrant Edge opens a folder from one process only: the recorder gets its own (search is
        # not what this run measures).
        env = os.environ | {"CONVMEM_VECTOR_PATH": str(ROOT / ".convmem" / "edge-fuzz-vectors")}
        procs.append(subprocess.Popen([convmem, "run", "indexer"], stdout=logs, stderr=logs, env=env))  # noqa: S603
    fig = Figures()
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            for _ in range(1800):
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            sampler = RssSampler(procs[0].pid)
            start_kb = sampler.rss_kb()
            sampler.start()
            dlq_start = asyncio.run(end_offsets(settings.kafka_bootstrap, tuple(f"{t}.dlq" for t in WATCHED)))
            inbound_start = asyncio.run(end_offsets(settings.kafka_bootstrap, WATCHED))
            t0 = time.perf_counter()
            print("hand cases:")
            run_hand_cases(client, secret, app_secret, fig)
            print("schemathesis ...")
            run_schemathesis(base, secret, args.examples, fig)
            print("webhook fuzz ...")
            run_webhook_fuzz(client, app_secret, args.webhook_examples, fig)
            after_fuzz_kb = sampler.rss_kb()
            print("abuse ...")
            run_abuse(base, secret, app_secret, args.abuse_s, sampler, fig)
            elapsed = time.perf_counter() - t0
            time.sleep(5)  # let the recorder catch up before counting dead letters
            end_kb, hwm_kb = sampler.rss_kb(), sampler.rss_kb("VmHWM")
            sampler.stop.set()
            reasons = asyncio.run(dead_letters_of_this_run(settings.kafka_bootstrap, dlq_start, inbound_start))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
    print(f"\n{'area':<52} {'requests':>8} {'5xx':>5} {'429':>5} {'2xx':>5}  statuses")
    total = Counter[int]()
    for area in sorted(fig.statuses):
        c = fig.statuses[area]
        total.update(c)
        n5 = sum(v for k, v in c.items() if k >= 500)
        n2 = sum(v for k, v in c.items() if 200 <= k < 300)
        print(f"{area:<52} {sum(c.values()):>8} {n5:>5} {c[429]:>5} {n2:>5}  {dict(sorted(c.items()))}")
    print(f"{'total':<52} {sum(total.values()):>8} {sum(v for k, v in total.items() if k >= 500):>5} "
          f"{total[429]:>5}  in {elapsed:.0f} s")
    print(f"schema violations: {sum(fig.violations.values())} {dict(fig.violations)}")
    for area, lines in fig.examples.items():
        print(f"  {area}: " + "; ".join(lines))
    print(f"dead-lettered, of what this run published: {sum(reasons.values())} {dict(reasons)}")
    print(f"ingest RSS: start {start_kb // 1024} MB, after fuzzing {after_fuzz_kb // 1024} MB, "
          f"peak {max(hwm_kb, sampler.peak_kb) // 1024} MB, end {end_kb // 1024} MB")


if __name__ == "__main__":
    main()
