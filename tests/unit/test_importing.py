from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from contracts import MessageReceived
from convmem.ports import ConversationRef
from services.ingest.importing import ImportLineError, ImportRules, conversation_id_for, import_lines, parse_line


def line(**fields: object) -> bytes:
    base: dict[str, object] = {"tenant": "acme", "user": "ana", "conversation": "chat-1", "role": "user",
                               "text": "hello", "timestamp": "2025-02-01T10:00:00Z"}
    return json.dumps(base | fields).encode()


def test_a_line_becomes_a_history_event_with_derived_ids_and_its_own_time() -> None:
    event = parse_line(line(external_id="m-1", metadata={"source": "zendesk"}), 1)
    assert event.channel == "import" and not event.reply_expected
    assert event.occurred_at.year == 2025 and event.metadata == {"source": "zendesk"}
    assert event.message_id == parse_line(line(external_id="m-1"), 9).message_id
    assert event.conversation_id == conversation_id_for("acme", "ana", "chat-1")
    assert parse_line(line(user="ben"), 1).conversation_id != event.conversation_id  # keys are per user
    given = uuid.uuid4()
    assert parse_line(line(conversation=str(given)), 1).conversation_id == given
    # without an external id the content decides, so a re-run still lands on the same ids
    assert parse_line(line(), 1).message_id == parse_line(line(), 2).message_id
    assert parse_line(line(), 1).message_id != parse_line(line(text="bye"), 1).message_id


def test_bad_lines_name_their_number_and_the_field() -> None:
    for raw, reason in [(b"{nope", "not JSON"), (b"[1]", "not a JSON object"),
                        (line(role="robot"), "role"), (line(timestamp="2025-02-01T10:00:00"), "UTC offset"),
                        (line(text=""), "text"), (line(colour="red"), "colour")]:
        try:
            parse_line(raw, 7)
        except ImportLineError as exc:
            assert exc.line_no == 7 and reason in str(exc), (raw, str(exc))
        else:
            raise AssertionError(f"accepted {raw!r}")


async def test_import_skips_bad_lines_and_what_is_stored_and_keeps_file_order() -> None:
    stored: set[tuple[str, str]] = set()
    published: list[MessageReceived] = []

    async def publish(events: Sequence[MessageReceived]) -> None:
        published.extend(events)
        stored.update((e.user_id, e.external_id) for e in events if e.external_id)

    async def known(tenant: str, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        return stored & set(keys)

    lines = [line(external_id=f"m-{i}", text=f"message {i}") for i in range(7)]
    lines.insert(3, b"{broken")
    lines.insert(5, b"   ")
    first = await import_lines(lines, publish=publish, known=known, batch=3)
    assert first.published == 7 and first.lines == 8 and [e.line_no for e in first.malformed] == [4]
    assert [e.text for e in published] == [f"message {i}" for i in range(7)]
    again = await import_lines(lines, publish=publish, known=known, batch=3)
    assert again.published == 0 and again.already_stored == 7 and len(published) == 7


async def test_lines_past_retention_or_in_another_users_conversation_are_refused_and_reported() -> None:
    published: list[MessageReceived] = []

    async def publish(events: Sequence[MessageReceived]) -> None:
        published.extend(events)

    async def known(tenant: str, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        return set()

    bens = uuid.uuid4()

    async def conversation(conversation_id: uuid.UUID) -> ConversationRef | None:
        return ConversationRef(bens, "acme", "ben", "active") if conversation_id == bens else None

    async def cutoff(tenant: str) -> datetime:
        return datetime.now(UTC) - timedelta(days=90)

    recent = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    lines = [line(external_id="new", timestamp=recent), line(external_id="old"),  # 2025-02-01: past 90 days
             line(external_id="ours", conversation=str(uuid.uuid4()), timestamp=recent),
             line(external_id="theirs", conversation=str(bens), timestamp=recent)]
    report = await import_lines(lines, publish=publish, known=known,
                                rules=ImportRules(cutoff=cutoff, conversation=conversation))
    assert [e.external_id for e in published] == ["new", "ours"]
    assert (report.expired, report.expired_kept, report.foreign, report.published) == (1, 0, 1, 2)
    assert [(e.line_no, "retention" in e.reason or "another user" in e.reason) for e in report.refused] == [
        (2, True), (4, True)]
    published.clear()
    kept = await import_lines(lines[:2], publish=publish, known=known,
                              rules=ImportRules(cutoff=cutoff, keep_expired=True))
    assert (kept.published, kept.expired, kept.expired_kept) == (2, 1, 1)  # told it will be purged
