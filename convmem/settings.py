"""Settings: one object per service, all read from `CONVMEM_*` variables (and, for the
local stack, the `.convmem/stack.env` file `convmem stack up` writes). Nothing else in the
code base reads the environment. A missing or invalid value fails at start-up and the
error names the variable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from convmem.home import stack_env_file

ENV_PREFIX = "CONVMEM_"


class ConfigError(Exception):
    """Raised at start-up; the message names every offending variable."""


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=str(stack_env_file()), extra="ignore", frozen=True,
    )

    kafka_bootstrap: str = Field(min_length=1)
    database_url: SecretStr
    log_level: str = "INFO"
    log_format: str = Field(default="json", pattern="^(json|console)$")
    # Consumers are members of these groups; scale a role by starting more of them.
    group_prefix: str = "convmem"
    # Exhausted, non-retryable failures go to <topic>.dlq after this many attempts.
    max_attempts: int = Field(default=3, ge=1)
    retry_backoff_max_s: float = Field(default=30.0, gt=0)

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, v: SecretStr) -> SecretStr:
        if not v.get_secret_value().startswith(("postgres://", "postgresql://")):
            raise ValueError("must be a postgresql:// URL")
        return v


class VectorSettings(CommonSettings):
    qdrant_url: AnyHttpUrl | None = None
    qdrant_api_key: SecretStr | None = None
    qdrant_collection: str = "convmem_turns"
    vector_path: Path | None = None  # embedded index folder; default under .convmem/
    embedding_base_url: AnyHttpUrl | None = None  # OpenAI-compatible /embeddings instead of local
    embedding_model: str = "all-MiniLM-L6-v2"
    embedding_api_key: SecretStr | None = None
    embedding_dim: int = Field(default=384, ge=8)
    embed_batch_size: int = Field(default=64, ge=1, le=1024)
    # Retrieval stages on by default (comma list of convmem.retrieval.STAGES, or "none").
    retrieval_stages: str = "confidence,speakers,context,neighbours,temporal"
    # The context block (the responder's prompt, GET /v1/context, the MCP tool): its recent
    # window, recalled memories and token budget, counted with this tokenizer file (the chat
    # model's own, in the Hugging Face tokenizers format); unset: the bundled MiniLM one.
    recent_turns: int = Field(default=12, ge=0, le=200)
    recall_k: int = Field(default=5, ge=0, le=50)
    recall_min_score: float = Field(default=0.25, ge=-1, le=1)
    context_token_budget: int = Field(default=3000, ge=256)
    tokenizer_file: Path | None = None

    @field_validator("tokenizer_file")
    @classmethod
    def _tokenizer_file(cls, v: Path | None) -> Path | None:
        if v is not None and not v.is_file():
            raise ValueError("must name an existing tokenizer.json file")
        return v

    @field_validator("retrieval_stages")
    @classmethod
    def _stages(cls, v: str) -> str:
        from convmem.retrieval import Stages

        Stages.parse("hybrid", v)
        return v


class IngestSettings(VectorSettings):
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    jwt_secret: SecretStr = Field(min_length=32)  # RFC 7518: HS256 keys of at least 256 bits
    whatsapp_app_secret: SecretStr = Field(min_length=8)
    whatsapp_verify_token: SecretStr = Field(min_length=8)
    # phone_number_id -> tenant, e.g. {"10987654321": "acme"}; unmapped numbers go to `default`.
    whatsapp_tenants: dict[str, str] = Field(default_factory=dict)
    max_body_bytes: int = Field(default=256 * 1024, ge=1024)

    @field_validator("whatsapp_tenants", mode="before")
    @classmethod
    def _json_map(cls, v: Any) -> Any:
        return json.loads(v) if isinstance(v, str) and v.strip() else (v or {})


class IndexerSettings(VectorSettings):
    # Intent detection: "default" (the built-in rule set), "off", or a JSON file mapping
    # intent -> list of regular expressions. The composition root loads it at start-up and
    # fails naming the variable, not on the first message.
    intent_rules: str = "default"


class ResponderSettings(VectorSettings):
    llm_base_url: AnyHttpUrl | None = None
    llm_model: str = "gpt-4o-mini"
    llm_api_key: SecretStr | None = None
    llm_timeout_s: float = Field(default=60.0, gt=0)
    llm_temperature: float = Field(default=0.3, ge=0, le=2)
    llm_max_tokens: int = Field(default=512, ge=1)
    summary_every: int = Field(default=20, ge=1)
    summary_max_chars: int = Field(default=2000, ge=200)


class RetentionSettings(VectorSettings):
    # Defaults for tenants without their own policy (PUT /v1/tenant/policy); from the seeds.
    message_retention_days: int = Field(default=90, ge=1)
    summary_retention_days: int = Field(default=730, ge=1)
    pii_mode: Literal["immediate", "delayed", "off"] = "delayed"
    pii_delay_hours: int = Field(default=24, ge=0)
    phone_region: str = Field(default="US", pattern="^[A-Z]{2}$")
    # Deleted conversations leave every read at once and storage after this long.
    deleted_grace_hours: float = Field(default=24.0, ge=0)
    sweep_interval_s: float = Field(default=3600.0, gt=0)
    sweep_batch: int = Field(default=500, ge=1, le=10_000)


S = TypeVar("S", bound=BaseSettings)


def load(cls: type[S], **overrides: Any) -> S:
    """Build a settings object or raise ConfigError naming each bad variable."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "?"
            var = f"{ENV_PREFIX}{field.upper()}"
            reason = "is required but not set" if err["type"] == "missing" else err["msg"]
            problems.append(f"{var} {reason}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None


class StackSettings(BaseSettings):
    """Ports and paths of the local development stack (`convmem stack ...`)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX + "STACK_", extra="ignore", frozen=True)

    kafka_port: int = 19092
    kafka_controller_port: int = 19093
    postgres_port: int = 15432
    kafka_heap: str = "-Xms256m -Xmx512m"
    start_timeout_s: float = 90.0


class ExternalServices(BaseSettings):
    """Servers the operator already runs; the local stack then leaves that part alone."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    database_url: SecretStr | None = None
    kafka_bootstrap: str | None = None
