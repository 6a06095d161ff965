"""The layers, enforced: contracts -> domain services -> ports -> adapters -> composition root
-> entry points. Read from the import statements of every module, so a shortcut across
layers fails the suite instead of waiting for a reviewer to notice."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Transport and storage libraries: adapters and the delivery layer use them, domain code never.
INFRASTRUCTURE = {"faststream", "aiokafka", "asyncpg", "fastapi", "starlette", "uvicorn", "qdrant_client",
                  "qdrant_edge", "onnxruntime", "openai", "httpx"}


def imports(package: str) -> Iterator[tuple[str, str]]:
    """(module path, imported top-level name or dotted module) for every import in a package."""
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield str(path.relative_to(ROOT)), alias.name
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                yield str(path.relative_to(ROOT)), node.module


def top(module: str) -> str:
    return module.split(".")[0]


def test_contracts_depend_on_nothing_of_ours() -> None:
    bad = [(p, m) for p, m in imports("contracts") if top(m) in {"convmem", "services", "composition"}]
    assert bad == []


def test_the_platform_never_imports_services_or_the_composition_root() -> None:
    bad = [(p, m) for p, m in imports("convmem") if top(m) in {"services", "composition"}]
    assert bad == []


def test_services_never_import_each_other_or_the_root() -> None:
    bad = []
    for path, module in imports("services"):
        own = Path(path).parts[1]
        parts = module.split(".")
        if parts[0] == "composition" or (parts[0] == "services" and len(parts) > 1 and parts[1] != own):
            bad.append((path, module))
    assert bad == []


def test_only_entry_points_and_tests_import_the_composition_root() -> None:
    for package in ("contracts", "convmem", "services"):
        assert [(p, m) for p, m in imports(package) if top(m) == "composition"] == []


def test_domain_code_never_touches_kafka_sql_or_http_directly() -> None:
    """A service's Kafka side (worker.py) and its HTTP edge (ingest/http) are adapters; the
    rest of a service is domain code over ports."""
    bad = []
    for path, module in imports("services"):
        adapter = path.endswith("/worker.py") or "/http/" in path
        if not adapter and top(module) in INFRASTRUCTURE:
            bad.append((path, module))
    assert bad == []


# The platform's folders, lowest first. A folder may import the shared root modules and the
# folders listed as below it here; never one above it, so each concern reads on its own.
PLATFORM_FOLDERS: dict[str, set[str]] = {
    "ports": set(),
    "telemetry": set(),
    "privacy": {"ports"},
    "memory": {"ports"},
    "delivery": {"ports", "privacy", "telemetry"},
    "adapters": {"ports", "telemetry", "memory", "privacy"},
    "ops": {"ports", "telemetry", "delivery"},
    "devstack": set(),
    "migrations": set(),
}
# What every layer shares stays at the root of convmem/; `opener` is the README's public path
# to convmem.privacy.opener and re-exports it.
ROOT_MODULES = {"__init__", "settings", "errors", "home", "opener"}


def folder_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "convmem" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in PLATFORM_FOLDERS else None


def test_the_platform_root_holds_only_what_every_layer_shares() -> None:
    at_root = {p.stem for p in (ROOT / "convmem").glob("*.py")}
    assert at_root <= ROOT_MODULES, at_root - ROOT_MODULES
    folders = {p.name for p in (ROOT / "convmem").iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders == set(PLATFORM_FOLDERS)


def test_platform_folders_import_only_folders_below_them() -> None:
    bad = []
    for path, module in imports("convmem"):
        parts = Path(path).parts
        own = parts[1] if len(parts) > 2 else None
        target = folder_of(module)
        if own is None:
            # settings may validate a stage list (memory.stages, a leaf); nothing else at the
            # root reaches into a folder, except the opener's re-export.
            allowed = {"convmem.memory.stages", "convmem.privacy.opener"}
            if target is not None and module not in allowed:
                bad.append((path, module))
        elif target is not None and target != own and target not in PLATFORM_FOLDERS[own]:
            bad.append((path, module))
    assert bad == []


def test_memory_and_privacy_are_domain_code() -> None:
    """Memory and privacy are plain functions over ports, like the services' domain code."""
    bad = [(p, m) for p, m in imports("convmem")
           if p.startswith(("convmem/memory/", "convmem/privacy/sealing")) and top(m) in INFRASTRUCTURE]
    assert bad == []


def test_only_the_cli_tests_and_benchmarks_use_the_dev_stack() -> None:
    bad = [(p, m) for package in ("contracts", "convmem", "services") for p, m in imports(package)
           if m.startswith("convmem.devstack") and not p.startswith("convmem/devstack/")]
    assert bad == []
