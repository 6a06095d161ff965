"""deploy/grafana/convmem.json: every query is over the fixed metric names (issue 11) and
their labels, and every one of those metrics is on the dashboard."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "convmem.json"
# The fixed metric names and their labels, shared by the metrics, the dashboard and KEDA.
COUNTERS = {
    "convmem_events_total": {"group", "topic", "outcome"},
    "convmem_model_calls_total": {"operation", "outcome"},
    "convmem_model_tokens_total": {"kind"},
    "convmem_sends_total": {"outcome"},
    "convmem_http_requests_total": {"route", "method", "status"},
    "convmem_log_lines_suppressed_total": {"logger"},
    "convmem_whatsapp_unknown_total": {"kind"},
}
GAUGES = {
    "convmem_consumer_lag": {"group", "topic", "partition"},
    "convmem_vector_index_points": set(),
    "convmem_ready": {"check"},
}
HISTOGRAMS = {
    "convmem_event_seconds": {"group"},
    "convmem_model_seconds": {"operation"},
    "convmem_send_seconds": set(),
    "convmem_http_request_seconds": {"route", "method"},
}
FIXED = {**COUNTERS, **GAUGES, **HISTOGRAMS}
# Label values the metrics may take, where they are a fixed set.
OUTCOMES = {"processed", "retried", "dead_lettered", "dropped", "skipped"}


def _queries(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "definition") and isinstance(value, str):
                yield value
            elif key == "query" and isinstance(value, str) and "convmem_" in value:
                yield value
            else:
                yield from _queries(value)
    elif isinstance(node, list):
        for item in node:
            yield from _queries(item)


def _metric(series: str) -> tuple[str, set[str]]:
    """The metric a series name belongs to, and the labels it adds (`le` for buckets)."""
    for suffix, extra in (("_bucket", {"le"}), ("_sum", set()), ("_count", set())):
        base = series.removesuffix(suffix)
        if series.endswith(suffix) and base in HISTOGRAMS:
            return base, extra
    return series, set()


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def test_the_dashboard_uses_only_the_fixed_metrics_and_their_labels() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = list(_queries(dashboard))
    assert queries
    used: set[str] = set()
    for query in queries:
        series = set(re.findall(r"\bconvmem_[a-z_]+", query))
        assert series, f"a query over no convmem metric: {query}"
        labels: set[str] = set()
        for name in series:
            metric, extra = _metric(name)
            assert metric in FIXED, f"{name} is not one of the fixed metric names"
            used.add(metric)
            labels |= FIXED[metric] | extra
        for name, selector in re.findall(r"\b(convmem_[a-z_]+)\{([^}]*)\}", query):
            for label, value in re.findall(r'(\w+)\s*(?:=~|!~|!=|=)\s*"([^"]*)"', selector):
                assert label in FIXED[_metric(name)[0]], f"{name} has no label {label}"
                if label == "outcome" and name.startswith("convmem_events"):
                    assert set(value.split("|")) <= OUTCOMES, value
        for clause in re.findall(r"\bby\s*\(([^)]*)\)", query):
            grouped = {label.strip() for label in clause.split(",") if label.strip()}
            assert grouped <= labels, f"{query}: no label {grouped - labels}"
        for name, label in re.findall(r"label_values\((convmem_[a-z_]+),\s*(\w+)\)", query):
            assert label in FIXED[name], query
    assert used == set(FIXED), f"not on the dashboard: {set(FIXED) - used}"
    # Histograms are read through their buckets, counters through rate().
    for query in queries:
        for name in re.findall(r"\bconvmem_[a-z_]+", query):
            if name in HISTOGRAMS:
                raise AssertionError(f"{name} is a histogram: query its _bucket series ({query})")
            if name in COUNTERS:
                assert re.search(rf"(rate|increase)\({name}\b", query) or "label_values" in query, query


def test_the_dashboard_is_importable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and isinstance(dashboard["schemaVersion"], int)
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    panels = list(_panels(dashboard))
    assert len({p["id"] for p in panels}) == len(panels), "panel ids are unique"
    for panel in panels:
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]) and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]  # chosen on import
        for target in panel["targets"]:
            for variable in re.findall(r"\$(\w+)", target["expr"]):
                assert variable in variables or variable.startswith("__"), variable
