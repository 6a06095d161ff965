"""The process's Prometheus metrics, in one place: every name and label set is declared here,
and the code that records them calls the small functions below, never prometheus_client.

Labels are bounded by construction: consumer groups, topics and partitions come from the
declared subscriptions, operations and outcomes from fixed sets, routes from route templates.
Never a user, tenant or conversation id.

`configure(enabled=False)` (CONVMEM_METRICS_ENABLED=false) turns recording into a no-op, so
the cost of the metrics can be measured against the same pipeline without them."""

from __future__ import annotations

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, disable_created_metrics, generate_latest

__all__ = ["CONTENT_TYPE", "configure", "enabled", "render"]

# No `*_created` series beside every counter and histogram: half the series, nothing we read.
disable_created_metrics()  # type: ignore[no-untyped-call]  # the library leaves it unannotated
# The classic text format, which is what generate_latest writes for names like ours; every
# Prometheus version (and KEDA's Prometheus scaler) reads it.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
EVENT_OUTCOMES = ("processed", "retried", "dead_lettered", "dropped")
MODEL_OPERATIONS = ("reply", "stream", "summary", "title", "rewrite")
MODEL_OUTCOMES = ("ok", "timeout", "rate_limited", "error")
SEND_OUTCOMES = ("sent", "retried", "failed", "unknown", "skipped")
READY_CHECKS = ("kafka", "postgres", "vector_index")

EVENTS = Counter("convmem_events_total", "Records handled per consumer group, topic and outcome "
                 "(processed, retried, dead_lettered, dropped: subject erased, skipped: a replay for "
                 "another group).", ["group", "topic", "outcome"])
EVENT_SECONDS = Histogram("convmem_event_seconds", "Handler time per record or batch, per attempt.", ["group"],
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
CONSUMER_LAG = Gauge("convmem_consumer_lag", "Log end offset minus committed offset, per consumer group and "
                     "partition, for the groups this process consumes.", ["group", "topic", "partition"])
MODEL_CALLS = Counter("convmem_model_calls_total", "Chat model calls per operation and outcome.",
                      ["operation", "outcome"])
MODEL_SECONDS = Histogram("convmem_model_seconds", "Chat model call time, to the end of the answer.", ["operation"],
                          buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120))
MODEL_TOKENS = Counter("convmem_model_tokens_total", "Tokens the chat model reported (prompt, completion).",
                       ["kind"])
SENDS = Counter("convmem_sends_total", "WhatsApp reply parts per outcome.", ["outcome"])
SEND_SECONDS = Histogram("convmem_send_seconds", "Graph API call time per reply part.",
                         buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
HTTP_REQUESTS = Counter("convmem_http_requests_total", "HTTP requests per route template, method and status.",
                        ["route", "method", "status"])
HTTP_SECONDS = Histogram("convmem_http_request_seconds", "HTTP request time, to the last byte of the answer.",
                         ["route", "method"],
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
VECTOR_POINTS = Gauge("convmem_vector_index_points", "Points in the vector index this process serves.")
READY = Gauge("convmem_ready", "1 when the readiness check passed at its last run, else 0.", ["check"])
WHATSAPP_UNKNOWN = Counter("convmem_whatsapp_unknown_total",
                           "Parts of WhatsApp webhooks convmem does not know (change_field, status, message_type, "
                           "system_type, amendment): kept raw in metadata or skipped, never refused.", ["kind"])
WHATSAPP_UNKNOWN_KINDS = ("change_field", "status", "message_type", "system_type", "amendment")
LOG_SUPPRESSED = Counter("convmem_log_lines_suppressed_total",
                         "Repeated library log lines folded into one by the rate limiter.", ["logger"])

_state = {"enabled": True}


def configure(enabled: bool) -> None:
    _state["enabled"] = enabled


def enabled() -> bool:
    return _state["enabled"]


def render() -> bytes:
    """The Prometheus text format of every metric of this process (and its process_* ones)."""
    return generate_latest(REGISTRY)


def events(group: str, topic: str, outcome: str, n: int = 1) -> None:
    if _state["enabled"] and n > 0:
        EVENTS.labels(group, topic, outcome).inc(n)


def event_seconds(group: str, seconds: float) -> None:
    if _state["enabled"]:
        EVENT_SECONDS.labels(group).observe(seconds)


def model_call(operation: str, outcome: str, seconds: float, prompt_tokens: int = 0,
               completion_tokens: int = 0) -> None:
    if not _state["enabled"]:
        return
    MODEL_CALLS.labels(operation, outcome).inc()
    MODEL_SECONDS.labels(operation).observe(seconds)
    if prompt_tokens:
        MODEL_TOKENS.labels("prompt").inc(prompt_tokens)
    if completion_tokens:
        MODEL_TOKENS.labels("completion").inc(completion_tokens)


def send(outcome: str, seconds: float | None = None) -> None:
    if not _state["enabled"]:
        return
    SENDS.labels(outcome).inc()
    if seconds is not None:
        SEND_SECONDS.observe(seconds)


def http_request(route: str, method: str, status: int, seconds: float) -> None:
    if _state["enabled"]:
        HTTP_REQUESTS.labels(route, method, str(status)).inc()
        HTTP_SECONDS.labels(route, method).observe(seconds)


def whatsapp_unknown(kind: str) -> None:
    if _state["enabled"]:
        WHATSAPP_UNKNOWN.labels(kind if kind in WHATSAPP_UNKNOWN_KINDS else "other").inc()


def vector_points(n: int) -> None:
    VECTOR_POINTS.set(n)


def ready(check: str, ok: bool) -> None:
    READY.labels(check).set(1 if ok else 0)


def log_suppressed(logger: str) -> None:
    # Counted even with metrics off: the log limiter's count is the only trace of those lines.
    LOG_SUPPRESSED.labels(logger).inc()
