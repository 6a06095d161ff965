from __future__ import annotations

from pathlib import Path

import pytest

from composition.docs import check_documents
from convmem.settings import ConfigError, ExternalServices, IngestSettings, ResponderSettings, SenderSettings, load


def test_missing_setting_fails_and_names_the_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CONVMEM_JWT_SECRET", raising=False)  # `make test` exports the local stack's
    with pytest.raises(ConfigError) as err:
        load(IngestSettings, _env_file=None, kafka_bootstrap="k:1", database_url="postgresql://x/y",
             whatsapp_app_secret="12345678", whatsapp_verify_token="12345678")
    assert "CONVMEM_JWT_SECRET or CONVMEM_JWT_JWKS_URL must be set" in str(err.value)
    with pytest.raises(ConfigError) as err:
        load(IngestSettings, _env_file=None, kafka_bootstrap="k:1", database_url="mysql://x",
             jwt_secret="x" * 40, whatsapp_app_secret="12345678", whatsapp_verify_token="12345678")
    assert "CONVMEM_DATABASE_URL" in str(err.value)


def test_limits_and_origins_are_read_as_people_write_them(monkeypatch: pytest.MonkeyPatch) -> None:
    base = {"_env_file": None, "kafka_bootstrap": "k:1", "database_url": "postgresql://x/y", "jwt_secret": "x" * 40,
            "whatsapp_app_secret": "12345678", "whatsapp_verify_token": "12345678"}
    monkeypatch.setenv("CONVMEM_CORS_ALLOW_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("CONVMEM_RATE_LIMIT_FAILED_AUTH", "off")
    monkeypatch.setenv("CONVMEM_RATE_LIMIT_PER_PRINCIPAL", "600/minute;20/second")
    s = load(IngestSettings, **base)
    assert s.cors_allow_origins == ["https://a.example", "https://b.example"]
    assert (s.rate_limit_failed_auth, s.rate_limit_per_principal) == (None, "600/minute;20/second")
    assert s.rate_limit_webhook_verify == "20/minute"  # on by default
    monkeypatch.setenv("CONVMEM_RATE_LIMIT_PER_IP", "lots")
    with pytest.raises(ConfigError, match="CONVMEM_RATE_LIMIT_PER_IP"):
        load(IngestSettings, **base)


def test_an_empty_variable_is_an_unset_one(monkeypatch: pytest.MonkeyPatch) -> None:
    # What docker compose passes for `${CONVMEM_LLM_BASE_URL:-}` when the variable is not set:
    # the responder then runs in offline mode instead of refusing to start.
    for name in ("LLM_BASE_URL", "LLM_API_KEY", "QDRANT_URL", "WHATSAPP_API_BASE_URL", "WHATSAPP_TENANTS",
                 "RATE_LIMIT_FAILED_AUTH", "DATABASE_URL"):
        monkeypatch.setenv(f"CONVMEM_{name}", "")
    base = {"_env_file": None, "kafka_bootstrap": "k:1", "database_url": "postgresql://x/y"}
    responder = load(ResponderSettings, **base)
    assert (responder.llm_base_url, responder.llm_api_key, responder.qdrant_url) == (None, None, None)
    assert str(load(SenderSettings, **base).whatsapp_api_base_url) == "https://graph.facebook.com/v23.0"
    ingest = load(IngestSettings, **base, jwt_secret="x" * 40, whatsapp_app_secret="12345678",
                  whatsapp_verify_token="12345678")
    assert (ingest.whatsapp_tenants, ingest.rate_limit_failed_auth) == ({}, "60/minute")  # the defaults
    assert ExternalServices().database_url is None  # the local stack starts its own
    # A required setting left empty is reported as not set, naming it.
    monkeypatch.setenv("CONVMEM_KAFKA_BOOTSTRAP", "")
    with pytest.raises(ConfigError, match="CONVMEM_KAFKA_BOOTSTRAP is required but not set"):
        load(ResponderSettings, _env_file=None, database_url="postgresql://x/y")


def test_published_asyncapi_and_openapi_documents_are_current() -> None:
    assert check_documents() == [], "run `convmem docs write` and commit docs/"
