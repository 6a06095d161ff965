"""Library log lines: JSON like ours, and a flood of one connection error folded into a line
and a count."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest

from convmem.telemetry import logs
from tests.scrape import value


@pytest.fixture
def stderr(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """The process's logging set up as a runtime does, writing into a buffer."""
    buffer = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buffer)
    logs.configure("INFO", "json")
    yield buffer
    monkeypatch.undo()
    logs.configure("INFO", "json")  # back on the real stderr


def lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def test_library_lines_come_out_as_json(stderr: io.StringIO) -> None:
    logging.getLogger("aiokafka.consumer.group_coordinator").error(
        "Group Coordinator Request failed: %s", "[Error 15] GroupCoordinatorNotAvailableError")
    logging.getLogger("uvicorn.error").warning("Invalid HTTP request received.")
    try:
        raise ConnectionRefusedError(111, "Connect call failed")
    except ConnectionRefusedError:
        logging.getLogger("asyncio").exception("Unclosed connection")
    out = lines(stderr)  # every line parses as one JSON object
    assert [(o["logger"], o["level"]) for o in out] == [
        ("aiokafka.consumer.group_coordinator", "error"), ("uvicorn.error", "warning"), ("asyncio", "error")]
    assert out[0]["event"] == "Group Coordinator Request failed: [Error 15] GroupCoordinatorNotAvailableError"
    assert "ConnectionRefusedError" in str(out[2]["exception"]) and "timestamp" in out[2]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_thousand_identical_connection_errors_are_one_line_and_a_count() -> None:
    buffer, clock = io.StringIO(), Clock()
    handler = logs.FoldingHandler(buffer, logs.Repeats(window_s=10.0, clock=clock))
    handler.setFormatter(logging.Formatter('{"event": "%(message)s", "logger": "%(name)s"}'))
    logger = logging.getLogger("aiokafka.conn")
    before = value("convmem_log_lines_suppressed_total", logger="aiokafka.conn")
    for i in range(1000):
        clock.now += 0.005  # 1000 lines in 5 s, as during a broker outage
        record = logger.makeRecord("aiokafka.conn", logging.ERROR, "conn.py", 1,
                                   "Unable connect to node with id %s: %s", (1, f"[Errno 111] attempt {i}"), None)
        handler.handle(record)
    assert len(buffer.getvalue().splitlines()) == 1
    clock.now += 10.0
    handler.flush_repeats()
    [first, summary] = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert first["event"].startswith("Unable connect to node with id 1")
    assert summary == {"event": "suppressed 999 similar lines", "logger": "aiokafka.conn"}
    assert value("convmem_log_lines_suppressed_total", logger="aiokafka.conn") - before == 999


def test_the_count_is_a_field_of_the_json_line(stderr: io.StringIO) -> None:
    [handler] = [h for h in logging.getLogger().handlers if isinstance(h, logs.FoldingHandler)]
    clock = Clock()
    handler.repeats = logs.Repeats(window_s=10.0, clock=clock)
    for _ in range(1000):
        logging.getLogger("aiokafka").error("Unable to update metadata from %r", "node 1")
    clock.now += 10.0
    handler.flush_repeats()
    out = lines(stderr)
    assert len(out) == 2
    assert out[1]["suppressed"] == 999 and out[1]["template"] == "Unable to update metadata from %r"
    assert out[1]["logger"] == "aiokafka" and out[1]["level"] == "error"
    # A different message is its own line, whatever the flood before it.
    logging.getLogger("aiokafka").error("Unexpected error in sender routine")
    assert len(lines(stderr)) == 3
