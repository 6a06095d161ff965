"""The published contracts, generated from code: AsyncAPI 3.0 (FastStream, from the
declared publishers and subscribers of every role) and OpenAPI (FastAPI)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from convmem.home import project_root

ASYNCAPI = Path("docs/asyncapi.json")
DESCRIPTION = (
    "Conversation events on Kafka. Keys are conversation ids; every event carries event_id, schema_version and "
    "emitted_at.\n\n"
    "Sealed text: MessageReceived, TurnRecorded, ReplyGenerated and ReplyTokensGenerated carry their `text` and "
    "`metadata` empty and the real ones inside `sealed` (see the Sealed schema), encrypted with the user's data key, "
    "which erasure destroys. To read them: GET /v1/keys/{sealed.key_id} on the HTTP API with a `service` token of "
    "the event's tenant (audited; 410 once the user was erased; cache it as its Cache-Control says), then "
    "AES-256-GCM-decrypt base64(sealed.box) with nonce base64(sealed.nonce) and associated data "
    "`tenant_id U+001F user_id U+001F message_id` (UTF-8); the plaintext is JSON {text, metadata}. The Python "
    "client convmem.opener.EventOpener does this (README: reading replies downstream)."
)
OPENAPI = Path("docs/openapi.json")


def asyncapi_document() -> dict[str, Any]:
    from faststream.specification import AsyncAPI

    from composition.resources import Resources
    from composition.roles import ROLES, RoleSettings, build_broker, declare
    from convmem.delivery import DeliveryPolicy
    from convmem.settings import CommonSettings, load

    # Declaring needs no connection: the broker is described, never started.
    common = load(CommonSettings, kafka_bootstrap="localhost:9092", database_url="postgresql://docs/unused",
                  _env_file=None)
    policy = DeliveryPolicy()
    broker = build_broker(common.kafka_bootstrap, policy)
    declared = declare(broker, policy, ROLES, Resources(), RoleSettings(), "convmem", bootstrap=None)
    spec = AsyncAPI(broker, title="convmem events", version="1.0.0", description=DESCRIPTION)
    doc: dict[str, Any] = json.loads(spec.to_specification().to_json())
    # Subscribers take raw records (the delivery layer decodes them), so FastStream cannot see
    # their contract: name it from what each subscription declared it consumes.
    schemas = doc["components"]["schemas"]
    for title, model in declared.subscriptions.consumed.items():
        if model.__name__ not in schemas:
            raise RuntimeError(f"{title} consumes {model.__name__}, which no publisher documents")
        doc["components"]["messages"][f"{title}:SubscribeMessage"]["payload"] = {
            "$ref": f"#/components/schemas/{model.__name__}"}
    schemas.pop("EmptyPayload", None)
    return doc


def openapi_document() -> dict[str, Any]:
    from convmem.settings import IngestSettings, load
    from services.ingest.http.app import create_app

    # Placeholder secrets: the document depends on routes and models, not on their values.
    placeholder = "unused-for-the-openapi-document" * 2
    settings = load(IngestSettings, 
        kafka_bootstrap="localhost:9092", database_url="postgresql://docs/unused", max_body_bytes=262144,
        whatsapp_tenants={}, jwt_secret=placeholder, whatsapp_app_secret=placeholder,
        whatsapp_verify_token=placeholder, _env_file=None)
    app = create_app(settings, _no_ports)
    document: dict[str, Any] = app.openapi()
    return document


def _no_ports() -> Any:
    raise RuntimeError("the OpenAPI document is made without serving requests")


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
