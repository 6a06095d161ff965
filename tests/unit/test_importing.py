from __future__ import annotations

import json
import uuid
from collections.abc import Sequence

from contracts import MessageReceived
from services.ingest.importing import ImportLineError, conversation_id_for, import_lines, parse_line


def line(**fields: object) -> bytes:
    base: dict[str, object] = {"tenant": "acme", "user": "ana", "conversation": "chat-1", "role": "user",
                               "text": "hello", "timestamp": "2025-02-01T10:00:00Z"}
    return json.dumps(base | fields).encode()


def test_a_line_becomes_a_history_event_with_derived_ids_and_its_own_time() -> None:
    event = parse_line(line(external_id="m-1", metadata={"source": "zendesk"}), 1)
    assert event.channel == "import" and not event.reply_expected
    assert event.occurred_at.year == 2025 and event.metadata == {"source": "zendesk"}
    assert event.message_id == parse_line(line(external_id="m-1"), 9).message_id
    assert event.conversation_id == conversation_id_for("acme", "chat-1")
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
    stored: set[str] = set()
    published: list[MessageReceived] = []

    async def publish(events: Sequence[MessageReceived]) -> None:
        published.extend(events)
        stored.update(e.external_id for e in events if e.external_id)

    async def known(tenant: str, ids: Sequence[str]) -> set[str]:
        return stored & set(ids)

    lines = [line(external_id=f"m-{i}", text=f"message {i}") for i in range(7)]
    lines.insert(3, b"{broken")
    lines.insert(5, b"   ")
    first = await import_lines(lines, publish=publish, known=known, batch=3)
    assert first.published == 7 and first.lines == 8 and [e.line_no for e in first.malformed] == [4]
    assert [e.text for e in published] == [f"message {i}" for i in range(7)]
    again = await import_lines(lines, publish=publish, known=known, batch=3)
    assert again.published == 0 and again.already_stored == 7 and len(published) == 7
