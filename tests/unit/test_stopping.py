"""The stop's watchdog: it ends a process whose stop outlived the grace period, and only
that; a stop in time (or a start-up that failed, whose caller goes on) leaves nothing armed."""

from __future__ import annotations

import threading

import pytest

from composition.runtime import run_roles
from convmem.settings import ConfigError


async def test_a_failed_start_leaves_no_watchdog_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"KAFKA_BOOTSTRAP": "127.0.0.1:9", "DATABASE_URL": "postgresql://u@127.0.0.1:9/none"}.items():
        monkeypatch.setenv(f"CONVMEM_{name}", value)
    before = {t for t in threading.enumerate() if isinstance(t, threading.Timer)}
    with pytest.raises(ConfigError):
        await run_roles(["responder"], groups=["nope"])
    armed = [t for t in threading.enumerate() if isinstance(t, threading.Timer) and t not in before]
    for timer in armed:
        timer.join(timeout=2)  # a cancelled timer's thread ends at once
    assert not [t for t in armed if t.is_alive()]
