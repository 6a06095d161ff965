from __future__ import annotations

from pathlib import Path

import pytest

from composition.docs import check_documents
from convmem.settings import ConfigError, IngestSettings, load


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


def test_published_asyncapi_and_openapi_documents_are_current() -> None:
    assert check_documents() == [], "run `convmem docs write` and commit docs/"
