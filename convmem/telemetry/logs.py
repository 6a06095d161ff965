"""structlog JSON logs. Lines carry ids (event, message, conversation), never message text.

Libraries log through the standard library (aiokafka, uvicorn, asyncio, faststream, httpx):
their records reach one handler on the root logger that renders them with the same
processors as ours, so every line of a process is one JSON object. That handler also folds
repeats: during a broker outage aiokafka logs the same connection error many times a
second; the first line of each (logger, message template) passes, the next ones within
`REPEAT_WINDOW_S` are only counted (convmem_log_lines_suppressed_total), and once the window
is over one line says how many were suppressed."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

import structlog

from convmem.telemetry import metrics

REPEAT_WINDOW_S = 10.0
# Library loggers that install handlers of their own; theirs would print plain text.
_OWN_HANDLERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


def configure(level: str = "INFO", fmt: str = "json") -> None:
    renderer: Any = structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer()
    shared: list[Any] = [structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso", utc=True)]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            *shared,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared,
                           structlog.stdlib.ExtraAdder(allow=["suppressed", "template"])],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, renderer])
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, FoldingHandler)]:
        root.removeHandler(old)
        old.close()
    handler = FoldingHandler(sys.stderr)
    handler.setFormatter(formatter)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)  # libraries: warnings and errors only
    for name in _OWN_HANDLERS:
        lib = logging.getLogger(name)
        lib.handlers.clear()
        lib.propagate = True
    handler.start_flushing()


@dataclass
class _Seen:
    since: float  # start of the current window
    suppressed: int = 0
    level: int = logging.WARNING


class Repeats:
    """Which records pass: the first of each (logger, template) per window; the count of the
    others comes back from `closed` once their window is over."""

    def __init__(self, window_s: float = REPEAT_WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s, self._clock = window_s, clock
        self._seen: dict[tuple[str, str], _Seen] = {}
        self._lock = threading.Lock()

    def admit(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = self._clock()
        with self._lock:
            seen = self._seen.get(key)
            if seen is None or now - seen.since >= self.window_s:
                if seen is None or not seen.suppressed:  # else `closed` reports that window first
                    self._seen[key] = _Seen(now, level=record.levelno)
                    return True
            seen.suppressed += 1
        metrics.log_suppressed(record.name)
        return False

    def closed(self) -> list[logging.LogRecord]:
        """One record per (logger, template) whose window ended with lines suppressed."""
        now = self._clock()
        out = []
        with self._lock:
            for (name, template), seen in list(self._seen.items()):
                if now - seen.since < self.window_s:
                    continue
                del self._seen[(name, template)]
                if seen.suppressed:
                    record = logging.LogRecord(name, seen.level, __file__, 0, "suppressed %d similar lines",
                                               (seen.suppressed,), None)
                    record.suppressed, record.template = seen.suppressed, template
                    out.append(record)
        return out


class FoldingHandler(logging.StreamHandler[TextIO]):
    """The root handler: rate-limits repeats (Repeats), then writes through its formatter."""

    def __init__(self, stream: TextIO, repeats: Repeats | None = None) -> None:
        super().__init__(stream)
        self.repeats = repeats or Repeats()
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None

    def handle(self, record: logging.LogRecord) -> bool:
        self.flush_repeats()
        if not self.repeats.admit(record):
            return False
        return bool(super().handle(record))

    def flush_repeats(self) -> None:
        for summary in self.repeats.closed():
            super().handle(summary)

    def start_flushing(self, every_s: float = 1.0) -> None:
        """Report suppressed counts even when the flood stopped and nothing else is logged."""
        def loop() -> None:
            while not self._stop.wait(every_s):
                self.flush_repeats()

        self._flusher = threading.Thread(target=loop, name="convmem-log-repeats", daemon=True)
        self._flusher.start()

    def close(self) -> None:
        self._stop.set()
        self.flush_repeats()
        super().close()
