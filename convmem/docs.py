"""The published contracts, generated from code: AsyncAPI 3.0 (FastStream, from the
declared publishers and subscribers of every role) and OpenAPI (FastAPI)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from convmem.home import project_root

ASYNCAPI = Path("docs/asyncapi.json")
OPENAPI = Path("docs/openapi.json")


def asyncapi_document() -> dict[str, Any]:
    from faststream.specification import AsyncAPI

    from convmem.delivery import DeliveryPolicy
    from convmem.resources import Resources
    from convmem.runtime import ROLES, build_broker, declare
    from convmem.settings import CommonSettings

    # Declaring needs no connection: the broker is described, never started.
    common = CommonSettings.model_construct(kafka_bootstrap="localhost:9092", group_prefix="convmem",
                                            max_attempts=3, retry_backoff_max_s=30.0)
    policy = DeliveryPolicy(group="convmem")
    broker = build_broker(common, policy)
    declare(broker, ROLES, Resources(), policy, common)
    spec = AsyncAPI(broker, title="convmem events", version="1.0.0",
                    description="Conversation events on Kafka. Keys are conversation ids; every "
                                "event carries event_id, schema_version and emitted_at.")
    return json.loads(spec.to_specification().to_json())


def openapi_document() -> dict[str, Any]:
    from pydantic import SecretStr

    from convmem.settings import IngestSettings
    from services.ingest.app import create_app

    # Placeholder secrets: the document depends on routes and models, not on their values.
    settings = IngestSettings.model_construct(
        max_body_bytes=262144, whatsapp_tenants={}, jwt_secret=SecretStr("unused-for-docs" * 3),
        whatsapp_app_secret=SecretStr("unused!!"), whatsapp_verify_token=SecretStr("unused!!"))
    app = create_app(settings, lambda: None, lambda: None)  # type: ignore[arg-type, return-value]
    return app.openapi()


def _render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def _targets() -> list[tuple[Path, str]]:
    root = project_root()
    return [(root / ASYNCAPI, _render(asyncapi_document())), (root / OPENAPI, _render(openapi_document()))]


def write_documents() -> list[Path]:
    written = []
    for path, text in _targets():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written


def check_documents() -> list[Path]:
    return [path for path, text in _targets() if not path.exists() or path.read_text() != text]
