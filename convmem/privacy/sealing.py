"""Sealing message text inside events (crypto-shredding). Publishers seal a turn's text and
metadata with its user's data key; consumers open it. Erasure destroys the key in Postgres,
after which no copy of those events, in any topic or replay, can be read again.

Keys are cached in the process for a short time, so an erasure takes at most `ttl_s` to be
felt by other processes; the erasing process forgets at once."""

from __future__ import annotations

import base64
import os
import time
from typing import TypeVar
from uuid import UUID

import orjson
from cachetools import TTLCache
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from contracts import MessageAmended, MessageReceived, ReplyGenerated, ReplyTokensGenerated, Sealed, TurnRecorded
from convmem.errors import ConvmemError, PoisonError
from convmem.ports import SubjectKeys

E = TypeVar("E", MessageReceived, ReplyGenerated, ReplyTokensGenerated, TurnRecorded, MessageAmended)
SEALABLE = (MessageReceived, ReplyGenerated, ReplyTokensGenerated, TurnRecorded, MessageAmended)


class SubjectKeyDestroyed(ConvmemError):
    """The event belongs to an erased subject: it cannot be opened and must be dropped."""


def _aad(event: MessageReceived | ReplyGenerated | ReplyTokensGenerated | TurnRecorded | MessageAmended) -> bytes:
    return f"{event.tenant_id}\x1f{event.user_id}\x1f{event.message_id}".encode()


def open_with(event: E, secret: bytes | AESGCM) -> E:
    """The event with its text and metadata opened by its key (PoisonError when they do not
    open: tampered, or sealed under another key). Shared with the consumers' client
    (convmem.privacy.opener), so both open events the one way."""
    if event.sealed is None:
        return event
    try:
        cipher = secret if isinstance(secret, AESGCM) else AESGCM(secret)
        plain = cipher.decrypt(base64.b64decode(event.sealed.nonce), base64.b64decode(event.sealed.box),
                               _aad(event))
    except (InvalidTag, ValueError) as exc:
        raise PoisonError("sealed payload does not open with its key (tampered or mis-keyed)") from exc
    inner = orjson.loads(plain)
    return event.model_copy(update={"text": inner["text"], "metadata": inner["metadata"], "sealed": None})


class Sealer:
    """Seals and opens events with their subjects' keys, cached by subject and by key id for
    `ttl_s` and at most `max_entries` each (least recently used leave first), so a process
    that sees a million users keeps a bounded set of keys, not one per user forever. A key
    sealed with is also cached by its id: the process that sealed an event opens it without
    asking the store again."""

    def __init__(self, keys: SubjectKeys, ttl_s: float = 30.0, max_entries: int = 10_000) -> None:
        self._keys = keys
        self._by_subject: TTLCache[tuple[str, str], tuple[UUID, AESGCM]] = TTLCache(max_entries, ttl_s, time.monotonic)
        self._by_id: TTLCache[UUID, tuple[AESGCM | None, tuple[str, str]]] = TTLCache(max_entries, ttl_s, time.monotonic)

    async def _subject_key(self, tenant_id: str, user_id: str) -> tuple[UUID, AESGCM]:
        hit = self._by_subject.get((tenant_id, user_id))
        if hit is not None:
            return hit
        key_id, secret = await self._keys.subject_key(tenant_id, user_id)
        found = (key_id, AESGCM(secret))
        self._by_subject[(tenant_id, user_id)] = found
        self._by_id[key_id] = (found[1], (tenant_id, user_id))
        return found

    async def _key(self, key_id: UUID, subject: tuple[str, str]) -> AESGCM | None:
        hit = self._by_id.get(key_id)
        if hit is not None:
            return hit[0]
        secret = await self._keys.key_by_id(key_id)
        cipher = None if secret is None else AESGCM(secret)
        self._by_id[key_id] = (cipher, subject)
        return cipher

    def forget(self, tenant_id: str, user_id: str) -> None:
        """Drop every cached key of a subject (called by the process that erased it)."""
        self._by_subject.pop((tenant_id, user_id), None)
        for key_id in [k for k, v in list(self._by_id.items()) if v[1] == (tenant_id, user_id)]:
            self._by_id.pop(key_id, None)

    async def seal(self, event: E) -> E:
        if event.sealed is not None:
            return event
        key_id, cipher = await self._subject_key(event.tenant_id, event.user_id)
        nonce = os.urandom(12)
        plain = orjson.dumps({"text": event.text, "metadata": event.metadata})
        box = cipher.encrypt(nonce, plain, _aad(event))
        sealed = Sealed(key_id=key_id, nonce=base64.b64encode(nonce).decode(), box=base64.b64encode(box).decode())
        return event.model_copy(update={"text": "", "metadata": {}, "sealed": sealed})

    async def open(self, event: E) -> E:
        """The event with its text and metadata back; SubjectKeyDestroyed after erasure."""
        if event.sealed is None:
            return event
        cipher = await self._key(event.sealed.key_id, (event.tenant_id, event.user_id))
        if cipher is None:
            raise SubjectKeyDestroyed(f"key {event.sealed.key_id} was destroyed by an erasure")
        return open_with(event, cipher)
