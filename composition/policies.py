"""Settings become the domain's policies here, validated, by keyword: the services define
their policies as plain dataclasses and never see a settings object."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from convmem.memory.context import RecallPolicy
from convmem.settings import (
    ConfigError,
    IndexerSettings,
    ResponderSettings,
    RetentionSettings,
    SenderSettings,
    VectorSettings,
)
from services.indexer.enrichment import IntentRules, load_rules
from services.retention.scrubbing import ScrubPolicy
from services.retention.sweep import RetentionPolicy
from services.sender.sending import SendPolicy


def intent_rules(settings: IndexerSettings) -> IntentRules | None:
    try:
        return load_rules(settings.intent_rules)
    except ValueError as exc:
        raise ConfigError(f"invalid configuration: CONVMEM_INTENT_RULES {exc}") from None


def recall_policy(settings: VectorSettings) -> RecallPolicy:
    """The same context policy for the responder and the HTTP edge (which serves the block
    the responder would send); summaries are the responder's to refresh."""
    policy = RecallPolicy(recent_turns=settings.recent_turns, recall_k=settings.recall_k,
                          min_similarity=settings.recall_min_score, token_budget=settings.context_token_budget)
    if isinstance(settings, ResponderSettings):
        policy = replace(policy, summary_every=settings.summary_every, summary_max_chars=settings.summary_max_chars)
    return policy


def retention_policy(settings: RetentionSettings) -> RetentionPolicy:
    return RetentionPolicy(message_days=settings.message_retention_days,
                           summary_days=settings.summary_retention_days,
                           deleted_grace_hours=settings.deleted_grace_hours, batch=settings.sweep_batch)


def scrub_policy(settings: RetentionSettings) -> ScrubPolicy:
    return ScrubPolicy(mode=settings.pii_mode, delay_hours=settings.pii_delay_hours, region=settings.phone_region)


def send_policy(settings: SenderSettings) -> SendPolicy:
    return SendPolicy(send_offline=settings.whatsapp_send_offline,
                      max_age=timedelta(seconds=settings.whatsapp_max_reply_age_s),
                      lease=timedelta(seconds=settings.sender_claim_lease_s))
