"""Settings: one object per service, all read from `CONVMEM_*` variables (and, for the
local stack, the `.convmem/stack.env` file `convmem stack up` writes). Nothing else in the
code base reads the environment. A missing or invalid value fails at start-up and the
error names the variable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from convmem.home import stack_env_file

ENV_PREFIX = "CONVMEM_"


class ConfigError(Exception):
    """Raised at start-up; the message names every offending variable."""


class CommonSettings(BaseSettings):
    # An empty variable is an unset one (its default, or "required but not set"): docker
    # compose's `${CONVMEM_LLM_BASE_URL:-}` passes an empty string for a setting left out.
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=str(stack_env_file()), extra="ignore", frozen=True, env_ignore_empty=True,
    )

    kafka_bootstrap: str = Field(min_length=1)
    database_url: SecretStr
    log_level: str = "INFO"
    log_format: str = Field(default="json", pattern="^(json|console)$")
    # Consumers are members of these groups; scale a role by starting more of them.
    group_prefix: str = "convmem"
    # Connections to Postgres per process: replies in flight and conversations recorded at
    # once share them (each holds one only for a short query or transaction).
    database_pool_size: int = Field(default=20, ge=2, le=200)
    # Exhausted, non-retryable failures go to <topic>.dlq after this many attempts.
    max_attempts: int = Field(default=3, ge=1)
    retry_backoff_max_s: float = Field(default=30.0, gt=0)
    # Where a process without the ingest edge serves /metrics, /healthz and /readyz (port 0:
    # any free port); a process that runs ingest serves them on its HTTP port instead.
    ops_host: str = "127.0.0.1"
    ops_port: int = Field(default=9464, ge=0, le=65535)
    # Processes of `convmem run all`: 2 runs recording, statuses and conversation upkeep in a
    # second process (the second core); unset: 1.
    run_all_processes: int | None = Field(default=None, ge=1, le=2)
    # Off: nothing is recorded (to measure what the metrics cost); /metrics still answers.
    metrics_enabled: bool = True
    # A consumer that holds partitions with lag and shows no handler activity (or, key-ordered,
    # no turn of its fetch loop) for this long fails /healthz. Longer than the slowest attempt.
    consumer_stall_s: float = Field(default=300.0, gt=0)
    # Message content is kept this long (tenants may set their own). Here, not only in the
    # retention role's settings: the edge and the importer refuse what would be purged at once.
    message_retention_days: int = Field(default=90, ge=1)
    # On SIGTERM the process ends its streams, finishes or abandons (uncommitted) what is in
    # flight and exits within this many seconds: under Kubernetes' default grace of 30 s.
    shutdown_grace_s: float = Field(default=20.0, gt=0, le=3600)

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
    # Turns an embed batch takes at most: a backlog (an import) is sorted by length across the
    # whole batch, so bigger batches pad less (an import of 6,435 chat turns: 161-164/s at 256,
    # 178-183/s at 1,024). Live traffic never waits for a batch to fill.
    embed_batch_size: int = Field(default=1024, ge=1, le=1024)
    # Threads the local embedding model computes with. Unset: every core but one, which is
    # left to the event loop that answers HTTP, records turns and publishes replies; a model
    # that takes every core makes all of those wait behind each batch.
    embedding_threads: int | None = Field(default=None, ge=1, le=256)
    # Retrieval stages on by default (comma list of convmem.memory.retrieval.STAGES, or "none").
    retrieval_stages: str = "speakers,context,neighbours,temporal"
    # How users write dates in questions: the order of numeric ones ("auto": dots and dashes
    # day-first, slashes month-first) and the languages of named ones (dateparser's codes).
    date_order: Literal["auto", "DMY", "MDY", "YMD"] = "auto"
    date_languages: str = "en"
    # The context block (the responder's prompt, GET /v1/context, the MCP tool): its recent
    # window, recalled memories and token budget, counted with this tokenizer file (the chat
    # model's own, in the Hugging Face tokenizers format); unset: the bundled MiniLM one.
    recent_turns: int = Field(default=12, ge=0, le=200)
    recall_k: int = Field(default=5, ge=0, le=50)
    recall_min_score: float = Field(default=0.25, ge=-1, le=1)
    context_token_budget: int = Field(default=3000, ge=256)
    tokenizer_file: Path | None = None
    # The embedded index's owner looks this often for a rebuild's switch or an optimize
    # request (`convmem index optimize`), and this often (0: never) optimizes a copy of its
    # index in a child process, when at least index_optimize_min_unindexed points are not yet
    # in an HNSW graph (optimizing holds the GIL: never in the serving process itself).
    index_watch_interval_s: float = Field(default=2.0, gt=0)
    index_optimize_interval_s: float = Field(default=21_600.0, ge=0)
    index_optimize_min_unindexed: int = Field(default=20_000, ge=0)

    @field_validator("tokenizer_file")
    @classmethod
    def _tokenizer_file(cls, v: Path | None) -> Path | None:
        if v is not None and not v.is_file():
            raise ValueError("must name an existing tokenizer.json file")
        return v

    @field_validator("retrieval_stages")
    @classmethod
    def _stages(cls, v: str) -> str:
        from convmem.memory.stages import Stages

        Stages.parse("hybrid", v)
        return v


def _rate(v: Any) -> Any:
    """A rate limit as `limits` writes it ("20/minute", "5 per second"); off, none or empty: no limit."""
    if v is None or (isinstance(v, str) and v.strip().lower() in ("", "off", "none")):
        return None
    from limits import parse_many

    try:
        parse_many(str(v))
    except ValueError:
        raise ValueError("must be a rate such as 20/minute, or off") from None
    return str(v)


class IngestSettings(VectorSettings):
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    # Bearer tokens: HS256 with this shared secret, and/or RS256/ES256 signed by an identity
    # provider whose keys (JWKS) are published at jwt_jwks_url. At least one of the two.
    jwt_secret: SecretStr | None = Field(default=None, min_length=32)  # RFC 7518: HS256 keys of 256+ bits
    jwt_jwks_url: AnyHttpUrl | None = None
    jwt_issuer: str | None = None  # when set, tokens must carry this `iss`
    jwt_audience: str | None = None  # when set, tokens must carry this `aud` (a token with `aud` needs it set)
    jwt_max_lifetime_s: int = Field(default=86_400, ge=60)  # exp - iat (or exp - now) at most this
    jwt_leeway_s: int = Field(default=30, ge=0, le=300)  # clock skew allowed on exp, nbf, iat
    jwks_cache_s: float = Field(default=600.0, ge=10)  # the key set is fetched again after this long
    jwks_min_refresh_s: float = Field(default=10.0, ge=1)  # an unknown kid refetches at most this often
    whatsapp_app_secret: SecretStr = Field(min_length=8)
    whatsapp_verify_token: SecretStr = Field(min_length=8)
    # phone_number_id -> tenant, e.g. {"10987654321": "acme"}; unmapped numbers go to `default`.
    whatsapp_tenants: dict[str, str] = Field(default_factory=dict)
    # Abuse limits. Bodies are cut off at max_body_bytes as they arrive (chunked too) and must
    # arrive within body_timeout_s.
    max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    body_timeout_s: float = Field(default=30.0, gt=0)
    # Rate limits (429 with Retry-After), in `limits` notation: "600/minute", "10 per second".
    rate_limit_per_principal: str | None = None  # per tenant and subject of a valid token
    rate_limit_per_ip: str | None = None  # every request but health checks, per client address
    rate_limit_failed_auth: str | None = "60/minute"  # rejected tokens per client address
    rate_limit_webhook_verify: str | None = "20/minute"  # failed webhook verifications/signatures per address
    # Client addresses are taken from X-Forwarded-For only when the peer is one of these proxies.
    forwarded_allow_ips: str = "127.0.0.1"
    # Open connections (each may hold up to max_body_bytes), and per client address (proxies in
    # forwarded_allow_ips exempt); beyond either, a new connection pushes out the oldest one
    # waiting for a request head, or is refused when all are busy.
    http_max_connections: int = Field(default=1000, ge=1)
    http_max_connections_per_address: int = Field(default=100, ge=1)
    # A connection must deliver a complete request head within this (from opening, or from its
    # next byte after a finished request), or it is closed.
    http_header_timeout_s: float = Field(default=5.0, gt=0)
    # How long a request waits for Kafka's acknowledgement of what it publishes before a 503
    # (outcome_unknown once the producer holds the event).
    publish_timeout_s: float = Field(default=15.0, gt=0, le=60)
    # Browser origins allowed to call the API (CORS), e.g. ["https://app.example.com"]; none by default.
    cors_allow_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # A stream ticket (POST /v1/stream-tickets) opens its stream once, within this many seconds.
    stream_ticket_ttl_s: float = Field(default=15.0, ge=1, le=120)

    @field_validator("whatsapp_tenants", mode="before")
    @classmethod
    def _json_map(cls, v: Any) -> Any:
        return json.loads(v) if isinstance(v, str) and v.strip() else (v or {})

    @field_validator("rate_limit_per_principal", "rate_limit_per_ip", "rate_limit_failed_auth",
                     "rate_limit_webhook_verify", mode="before")
    @classmethod
    def _rates(cls, v: Any) -> Any:
        return _rate(v)

    @field_validator("cors_allow_origins", mode="before")
    @classmethod
    def _origins(cls, v: Any) -> Any:
        # A JSON list, or a comma-separated one as people write it in an environment variable.
        if isinstance(v, str):
            text = v.strip()
            return json.loads(text) if text.startswith("[") else [o.strip() for o in text.split(",") if o.strip()]
        return v

    @model_validator(mode="after")
    def _some_token_key(self) -> IngestSettings:
        if self.jwt_secret is None and self.jwt_jwks_url is None:
            raise ValueError("CONVMEM_JWT_SECRET or CONVMEM_JWT_JWKS_URL must be set: nothing could check tokens")
        return self


class IndexerSettings(VectorSettings):
    # Intent detection: "default" (the built-in rule set), "off", or a JSON file mapping
    # intent -> list of regular expressions. The composition root loads it at start-up and
    # fails naming the variable, not on the first message.
    intent_rules: str = "default"
    # Conversations recorded at once within a batch (each its own short transaction, each
    # conversation's turns in order); bounded by the database pool.
    record_concurrency: int = Field(default=8, ge=1, le=64)
    record_batch: int = Field(default=256, ge=1, le=2048)
    # Embed bursts (units, the `units` retrieval stage) beside turns. Unset: when the units
    # stage is among the default retrieval stages. Off: their full text is still searched,
    # their vectors are not written (a burst is a longer text: on a chat import they added
    # about a third to the embedding work, for a stage that is off by default).
    embed_units: bool | None = None

    @property
    def embeds_units(self) -> bool:
        from convmem.memory.stages import Stages

        if self.embed_units is not None:
            return self.embed_units
        return Stages.parse("hybrid", self.retrieval_stages).units


class ResponderSettings(VectorSettings):
    llm_base_url: AnyHttpUrl | None = None
    llm_model: str = "gpt-4o-mini"
    llm_api_key: SecretStr | None = None
    llm_timeout_s: float = Field(default=60.0, gt=0)
    llm_temperature: float = Field(default=0.3, ge=0, le=2)
    llm_max_tokens: int = Field(default=512, ge=1)
    summary_every: int = Field(default=20, ge=1)
    summary_max_chars: int = Field(default=2000, ge=200)
    # Turns answered at once per process, in order per conversation: the model is I/O, so
    # this, not the partition count, is what lets replies keep up with a slow model (replies
    # a second at most: this over the model's latency; a WhatsApp number may send 80 a second).
    # Also the size of the model client's connection pool, and of upkeep's, apart.
    max_in_flight: int = Field(default=128, ge=1, le=1024)


class SenderSettings(CommonSettings):
    # The Graph API with its version; the sender posts to {base}/{phone_number_id}/messages.
    whatsapp_api_base_url: AnyHttpUrl = AnyHttpUrl("https://graph.facebook.com/v23.0")
    # Unset: `run all` leaves the sender out (and `run sender` refuses to start).
    whatsapp_access_token: SecretStr | None = None
    # Offline-mode replies are assembled from memory, not a model's answer: not sent unless asked.
    whatsapp_send_offline: bool = False
    whatsapp_timeout_s: float = Field(default=10.0, gt=0, le=120)
    # A reply older than this when it reaches the sender is recorded as skipped, not sent: a
    # new deployment's consumer group must not send a week of old replies.
    whatsapp_max_reply_age_s: float = Field(default=3600.0, gt=0)
    # A part claimed this long ago and never recorded was left by a sender that stopped
    # mid-request: it is marked unknown and never sent again. Longer than the request timeout.
    sender_claim_lease_s: float = Field(default=60.0, gt=0)
    # Conversations sent to at once per process (in order within each); at least 2, so a
    # conversation that backs off never holds the others up.
    sender_max_in_flight: int = Field(default=32, ge=2, le=1024)


class RetentionSettings(VectorSettings):
    # Defaults for tenants without their own policy (PUT /v1/tenant/policy); from the seeds.
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
            reason = "is required but not set" if err["type"] == "missing" else err["msg"]
            if not err["loc"]:  # a rule over several variables names them itself
                problems.append(reason.removeprefix("Value error, "))
                continue
            problems.append(f"{ENV_PREFIX}{str(err['loc'][0]).upper()} {reason}")
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

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True, env_ignore_empty=True)

    database_url: SecretStr | None = None
    kafka_bootstrap: str | None = None
