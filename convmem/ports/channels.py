"""Ports to the channels that carry replies to people (WhatsApp's Cloud API today)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class OutgoingText:
    phone_number_id: str  # the business number that sends
    to: str  # the user's WhatsApp id
    body: str  # at most the channel's limit (WhatsApp: 4,096 characters)
    callback_data: str  # echoed by the channel's status callbacks for this message


class WhatsAppApi(Protocol):
    async def send_text(self, message: OutgoingText) -> str:
        """The sent message's id (wamid). Raises RetryableError when it was not sent and may
        be later (rate limits, throughput limits, server errors, no connection),
        SendRejected when it never will be, SendOutcomeUnknown when it may have been."""
        ...
