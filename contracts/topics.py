"""Topic names. Every conversation event is keyed by its conversation id, so one
conversation's events stay in order on one partition whatever the partition count."""

from typing import Final

INBOUND: Final = "conv.inbound.v1"
TURNS: Final = "conv.turns.v1"
REPLIES: Final = "conv.replies.v1"
STATUSES: Final = "conv.statuses.v1"
# Edits and revokes of earlier messages (WhatsApp), applied to the recorded turn.
AMENDMENTS: Final = "conv.amendments.v1"

CONVERSATION_TOPICS: Final = (INBOUND, TURNS, REPLIES, STATUSES, AMENDMENTS)

# A reply's text as it is generated, for live views; short retention, nobody's record.
TOKENS: Final = "conv.tokens.v1"

# Privacy: erasure requests (keyed by tenant and user) and the audit trail of what was done.
PRIVACY_REQUESTS: Final = "privacy.requests.v1"
PRIVACY_EVENTS: Final = "privacy.events.v1"
PRIVACY_TOPICS: Final = (PRIVACY_REQUESTS, PRIVACY_EVENTS)

DLQ_SUFFIX: Final = ".dlq"


def dead_letter_topic(topic: str) -> str:
    return f"{topic}{DLQ_SUFFIX}"


CONSUMED_TOPICS: Final = (*CONVERSATION_TOPICS, PRIVACY_REQUESTS)
ALL_TOPICS: Final = (*CONVERSATION_TOPICS, TOKENS, *PRIVACY_TOPICS, *(dead_letter_topic(t) for t in CONSUMED_TOPICS))
