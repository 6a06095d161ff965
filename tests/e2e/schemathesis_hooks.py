"""Hooks for the Schemathesis CLI runs of test_fuzz: every request comes from a new client
address (the edge trusts X-Forwarded-For from localhost), as a real API's callers do, so the
per-address limit on rejected tokens answers the anonymous run 401, not 429."""

from __future__ import annotations

import itertools
from typing import Any

import schemathesis

_CALLERS = itertools.count(1)


@schemathesis.hook
def before_call(ctx: Any, case: Any, **kwargs: Any) -> None:
    n = next(_CALLERS)
    case.headers = {**(case.headers or {}), "X-Forwarded-For": f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"}
