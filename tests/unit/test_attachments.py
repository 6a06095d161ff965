"""POST /v1/messages with attachments: validated field by field, stored as WhatsApp media are,
captions in the searchable text."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.test_http_edge import Client, auth, client

__all__ = ["client"]  # the fixture, shared with the edge's other tests

SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
PHOTO = {"url": "https://files.example/p/1.jpg", "mime_type": "image/jpeg", "file_name": "1.jpg", "size": 48213,
         "sha256": SHA, "caption": "the crack in the windscreen"}


async def test_attachments_are_stored_as_media_and_their_captions_are_text(client: Client) -> None:
    c, _, sink = client
    r = await c.post("/v1/messages", json={"user_id": "ana", "text": "see attached", "attachments": [
        PHOTO, {"id": "media-77", "mime_type": "application/pdf", "file_name": "quote.pdf"}]}, headers=auth("ana"))
    assert r.status_code == 202, r.text
    event = sink.inbound[-1]
    assert event.content_type == "text"
    assert event.text == "see attached\n[image] the crack in the windscreen\n[document] quote.pdf"
    assert event.metadata["attachments"] == [
        {"url": PHOTO["url"], "mime_type": "image/jpeg", "sha256": SHA, "caption": PHOTO["caption"],
         "filename": "1.jpg", "size": 48213},
        {"id": "media-77", "mime_type": "application/pdf", "filename": "quote.pdf"}]


async def test_one_attachment_without_text_is_a_media_message(client: Client) -> None:
    c, _, sink = client
    r = await c.post("/v1/messages", json={"user_id": "ana", "attachments": [
        {"url": "https://files.example/v.mp4", "mime_type": "video/mp4"}]}, headers=auth("ana"))
    assert r.status_code == 202, r.text
    assert (sink.inbound[-1].content_type, sink.inbound[-1].text) == ("video", "[video]")


@pytest.mark.parametrize(("attachment", "field"), [
    ({"mime_type": "image/png"}, "attachments.0.id"),  # neither url nor id
    ({"url": "ftp://files.example/x", "mime_type": "image/png"}, "attachments.0.url"),
    ({"url": "not a url", "mime_type": "image/png"}, "attachments.0.url"),
    ({"id": "m1", "mime_type": "jpeg"}, "attachments.0.mime_type"),
    ({"id": "m1"}, "attachments.0.mime_type"),
    ({"id": "m1", "mime_type": "image/png", "size": -1}, "attachments.0.size"),
    ({"id": "m1", "mime_type": "image/png", "size": "12"}, "attachments.0.size"),
    ({"id": "m1", "mime_type": "image/png", "sha256": "abc"}, "attachments.0.sha256"),
    ({"id": "m1", "mime_type": "image/png", "file_name": ""}, "attachments.0.file_name"),
    ({"id": "m1", "mime_type": "image/png", "caption": "a\x00b"}, "attachments.0.caption"),
    ({"id": "m1", "mime_type": "image/png", "colour": "red"}, "attachments.0.colour"),
    ({"id": "", "mime_type": "image/png"}, "attachments.0.id"),
])
async def test_a_bad_attachment_is_a_422_naming_its_field(client: Client, attachment: dict[str, Any],
                                                           field: str) -> None:
    c, _, _ = client
    r = await c.post("/v1/messages", json={"user_id": "ana", "text": "x", "attachments": [attachment]},
                     headers=auth("ana"))
    assert r.status_code == 422, r.text
    assert [f["field"] for f in r.json()["fields"]] == [field]


async def test_attachments_and_metadata_attachments_do_not_mix_and_there_are_at_most_ten(client: Client) -> None:
    c, _, _ = client
    r = await c.post("/v1/messages", json={"user_id": "ana", "text": "x", "attachments": [{"id": "1", "mime_type": "a/b"}],
                                           "metadata": {"attachments": []}}, headers=auth("ana"))
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "metadata"
    r = await c.post("/v1/messages", json={"user_id": "ana", "text": "x", "attachments": [
        {"id": str(i), "mime_type": "a/b"} for i in range(11)]}, headers=auth("ana"))
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "attachments"
    r = await c.post("/v1/messages", json={"user_id": "ana", "text": ""}, headers=auth("ana"))
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "text"
