"""The Dockerfile and docker-compose.yml, checked without Docker: the image holds every package
and runs as a non-root user; compose starts with no model configured, probes every convmem
service the way the image allows, restarts, keeps its data, and pins versions that match
what the code is tested with."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
CONVMEM = {name: s for name, s in SERVICES.items() if s.get("command", [None])[0] == "run"}
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_the_image_copies_every_package_and_its_entry_point() -> None:
    packages = [p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]]
    copied = {args.split()[0] for op, args in _instructions() if op == "COPY"}
    missing = [p for p in packages if p not in copied]
    assert not missing, f"the Dockerfile does not copy {missing}"
    entry = PYPROJECT["project"]["scripts"]["convmem"].split(".")[0]  # composition.cli:main
    assert entry in copied


def test_the_image_runs_as_a_numeric_non_root_user() -> None:
    users = [args for op, args in _instructions() if op == "USER"]
    assert users, "no USER: the processes would run as root"
    uid = users[-1].split(":")[0]
    # Numeric, so Kubernetes can check runAsNonRoot without knowing the image's passwd file.
    assert uid.isdigit() and int(uid) != 0


def test_compose_starts_without_a_model_configured() -> None:
    # `${VAR:-}` hands an empty string to a setting that may only be unset or valid.
    assert not re.search(r"\$\{[A-Z_]+:-\}", COMPOSE_TEXT)
    for name, service in CONVMEM.items():
        env = service["environment"]
        assert env.get("CONVMEM_LLM_BASE_URL") is None, name  # no value: passed on only when set
        assert all(v != "" for v in env.values()), name


def test_every_service_restarts_and_keeps_its_data_in_volumes() -> None:
    for name, service in SERVICES.items():
        assert service.get("restart") in ("unless-stopped", "always"), name
    mounts = {name: [v.split(":") for v in SERVICES[name].get("volumes", [])] for name in ("kafka", "postgres", "qdrant")}
    assert mounts["postgres"] == [["pgdata", "/var/lib/postgresql/data"]]
    assert mounts["qdrant"] == [["qdrant", "/qdrant/storage"]]
    # The broker keeps its log where KAFKA_LOG_DIRS points, not in the image's /tmp default.
    assert mounts["kafka"] == [["kafka", SERVICES["kafka"]["environment"]["KAFKA_LOG_DIRS"]]]
    assert {"kafka", "pgdata", "qdrant"} <= set(COMPOSE["volumes"])


def test_one_image_for_every_role() -> None:
    assert {s["command"][1] for s in CONVMEM.values()} == {"ingest", "indexer", "responder", "retention", "sender"}
    assert len({(s["image"], s["build"]) for s in CONVMEM.values()}) == 1


class _Probe(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def _serving(status: int) -> Iterator[int]:
    handler = type("Probe", (_Probe,), {"status": status})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _port_of(service: dict[str, Any]) -> int:
    if service["command"][1] == "ingest":
        return int(service["environment"]["CONVMEM_HTTP_PORT"])
    return int(service["environment"]["CONVMEM_OPS_PORT"])


def test_every_convmem_service_is_probed_with_what_the_image_has() -> None:
    for name, service in CONVMEM.items():
        test = service["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "-c"], f"{name}: the slim image has no curl"
        url = re.search(r"http://127\.0\.0\.1:(\d+)(/\w+)", test[3])
        assert url is not None, name
        assert (int(url[1]), url[2]) == (_port_of(service), "/healthz"), name
    # The probe's code itself: exit 0 on a healthy answer, non-zero on 503 and when nothing listens.
    code = CONVMEM["indexer"]["healthcheck"]["test"][3]
    for status, healthy in ((200, True), (503, False)):
        with _serving(status) as port:
            run = subprocess.run([sys.executable, "-c", code.replace(":9464/", f":{port}/")],  # noqa: S603
                                 capture_output=True, timeout=30, check=False)
        assert (run.returncode == 0) is healthy, (status, run.stderr)
    with _serving(200) as port:
        pass
    run = subprocess.run([sys.executable, "-c", code.replace(":9464/", f":{port}/")],  # noqa: S603
                         capture_output=True, timeout=30, check=False)
    assert run.returncode != 0


def _tag(service: str) -> str:
    return str(SERVICES[service]["image"]).rsplit(":", 1)[1]


def test_versions_are_pinned_to_what_the_code_is_tested_with() -> None:
    pom = ET.parse(ROOT / "deploy" / "kafka" / "pom.xml")  # noqa: S314 - our own file
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    [broker] = [d.findtext("m:version", namespaces=ns) for d in pom.findall(".//m:dependency", ns)
                if d.findtext("m:groupId", namespaces=ns) == "org.apache.kafka"]
    assert _tag("kafka") == broker, "the local stack's broker (deploy/kafka/pom.xml)"
    assert _tag("postgres").isdigit(), "a pinned Postgres major"
    # qdrant-client warns when its minor version is more than one away from the server's.
    [client] = [d for d in PYPROJECT["project"]["dependencies"] if d.startswith("qdrant-client")]
    allowed = SpecifierSet(client.removeprefix("qdrant-client"))
    server = Version(_tag("qdrant").removeprefix("v"))
    lowest = min(v for v in (Version(f"1.{m}") for m in range(100)) if v in allowed)
    highest = max(v for v in (Version(f"1.{m}.99") for m in range(100)) if v in allowed)
    assert server.major == lowest.major == highest.major
    assert lowest.minor - 1 <= server.minor and highest.minor <= server.minor + 1, (client, server)
