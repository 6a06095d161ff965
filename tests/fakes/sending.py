"""Fakes of the sender's side: its ledger of reply parts, and the WhatsApp API."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from convmem.errors import RetryableError, SendOutcomeUnknown, SendRejected
from convmem.ports import ClaimOutcome, OutgoingText, SendLedger, SendPart, WhatsAppApi
from tests.fakes.db import FakeDb, SendRow


class FakeSendLedger(SendLedger):
    def __init__(self, db: FakeDb) -> None:
        self.db = db

    async def claim_send(self, part: SendPart, lease_s: float) -> ClaimOutcome:
        key, now = (part.reply_id, part.part), datetime.now(UTC)
        row = self.db.sends.get(key)
        if row is None:
            self.db.sends[key] = SendRow(part.tenant_id, part.user_id, part.conversation_id, part.parts, "sending",
                                         claimed_at=now, attempts=1)
            return "claimed"
        if row.state == "pending":
            self.db.sends[key] = replace(row, state="sending", claimed_at=now, attempts=row.attempts + 1)
            return "claimed"
        if row.state == "sending" and row.claimed_at is not None and row.claimed_at < now - timedelta(seconds=lease_s):
            self.db.sends[key] = row = replace(row, state="unknown")
        return "busy" if row.state == "sending" else row.state  # type: ignore[return-value]

    def _settle(self, part: SendPart, to: str, from_states: Sequence[str] = ("sending",), **changes: object) -> None:
        row = self.db.sends.get((part.reply_id, part.part))
        if row is not None and row.state in from_states:
            self.db.sends[(part.reply_id, part.part)] = replace(row, state=to, **changes)  # type: ignore[arg-type]

    async def record_sent(self, part: SendPart, wamid: str) -> None:
        self._settle(part, "sent", ("sending", "unknown"), wamid=wamid, error=None, error_code=None)

    async def record_failed(self, part: SendPart, code: int, error: str) -> None:
        self._settle(part, "failed", error_code=code, error=error)

    async def record_unknown(self, part: SendPart) -> None:
        self._settle(part, "unknown")

    async def release_send(self, part: SendPart, error: str) -> None:
        self._settle(part, "pending", error=error)

    async def record_skipped(self, part: SendPart, reason: str) -> None:
        self.db.sends.setdefault((part.reply_id, part.part), SendRow(
            part.tenant_id, part.user_id, part.conversation_id, part.parts, "skipped", error=reason))


@dataclass
class FakeWhatsAppApi(WhatsAppApi):
    """Answers each send with a new wamid, or with the next scripted outcome: an exception
    instance to raise (RetryableError, SendRejected, SendOutcomeUnknown)."""

    script: list[Exception] = field(default_factory=list)
    sent: list[OutgoingText] = field(default_factory=list)
    attempts: int = 0

    async def send_text(self, message: OutgoingText) -> str:
        self.attempts += 1
        if self.script:
            outcome = self.script.pop(0)
            if isinstance(outcome, SendOutcomeUnknown):
                self.sent.append(message)  # it did reach the channel; the answer was lost
            raise outcome
        self.sent.append(message)
        return f"wamid.fake{len(self.sent)}"


__all__ = ["FakeSendLedger", "FakeWhatsAppApi", "RetryableError", "SendOutcomeUnknown", "SendRejected"]
