"""Reading metric values in tests: from this process's registry, or from the Prometheus
text a /metrics endpoint answered."""

from __future__ import annotations

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families


def value(name: str, **labels: str) -> float:
    """A sample of this process's registry; 0 when it has not been recorded yet."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def samples(text: str, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
    """The samples called `name` whose labels include `labels`, from Prometheus text."""
    out = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                out.append((dict(s.labels), float(s.value)))
    return out


def total(text: str, name: str, **labels: str) -> float:
    return sum(v for _, v in samples(text, name, **labels))
