"""The published OpenAPI document says what the server enforces: how every operation is
authenticated, where it is served, and the formats its parameters take. Checked here from the
document itself, and by Redocly's linter with its recommended rules (the one users run)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from composition.docs import openapi_document
from services.ingest.cursor import CURSOR_PATTERN, decode_cursor, encode_cursor

ROOT = Path(__file__).resolve().parents[2]
METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}
# Pinned: the linter's rules change between versions; take a new one on purpose.
REDOCLY = "@redocly/cli@2.77.0"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi_document()


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in document["paths"].items()
            for method, op in item.items() if method in METHODS]


def test_every_operation_says_how_it_is_authenticated(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"] == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                                 "description": schemes["bearer"]["description"]}
    assert schemes["whatsappSignature"]["in"] == "header"
    undeclared = [f"{m.upper()} {p}" for p, m, op in operations(document) if "security" not in op]
    assert undeclared == []
    public = {f"{m.upper()} {p}" for p, m, op in operations(document) if op["security"] == []}
    assert public == {"GET /healthz", "GET /readyz", "GET /metrics", "GET /webhooks/whatsapp"}
    by_scheme = {f"{m.upper()} {p}": [name for s in op["security"] for name in s] for p, m, op in operations(document)}
    assert by_scheme["POST /webhooks/whatsapp"] == ["whatsappSignature"]
    assert by_scheme["POST /v1/messages"] == ["bearer"] and by_scheme["POST /mcp"] == ["bearer"]


def test_the_document_names_its_server_and_the_mcp_endpoint(document: dict[str, Any]) -> None:
    assert document["servers"] and all(s["url"] for s in document["servers"])
    assert set(document["paths"]["/mcp"]) == {"post"}


def test_formats_the_server_enforces_are_stated(document: dict[str, Any]) -> None:
    params = {(p, prm["name"]): prm["schema"] for p, m, op in operations(document)
              for prm in op.get("parameters", [])}

    def schema_of(path: str, name: str) -> dict[str, Any]:
        s = params[(path, name)]
        return next((b for b in s.get("anyOf", []) if b.get("type") == "string"), s)

    assert schema_of("/v1/conversations", "cursor")["pattern"] == CURSOR_PATTERN
    assert "pattern" in schema_of("/v1/search", "stages")
    assert "pattern" in schema_of("/v1/search", "since") and schema_of("/v1/search", "since")["format"] == "date-time"
    assert schema_of("/v1/search", "q")["pattern"] == "^[^\\x00]*$"  # the NUL ban


def test_a_cursor_round_trips_and_every_string_of_its_shape_is_one() -> None:
    from datetime import UTC, datetime
    from uuid import uuid4

    when, row = datetime(2026, 12, 7, 10, 30, 1, 123456, tzinfo=UTC), uuid4()
    assert decode_cursor(encode_cursor(when, row)) == (when, row)
    assert decode_cursor("9999999999999999." + "f" * 32)[0].year == 2286


@pytest.mark.skipif(shutil.which("npx") is None, reason="Node.js (npx) is not installed")
def test_redocly_recommended_rules_find_no_error(tmp_path: Path) -> None:
    path = tmp_path / "openapi.json"
    path.write_text(json.dumps(openapi_document()))
    run = subprocess.run(["npx", "--yes", REDOCLY, "lint", str(path), "--format", "stylish"],  # noqa: S603,S607
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
