"""Messages without an idempotency key that the edge answered 503 `outcome_unknown` for: the
producer holds them and may publish them later, and a client retrying without a key would
get a new message id, so the message would be recorded twice. The edge remembers such a
message by what its request said (author, conversation, text, role, time, metadata) for a
while, and a keyless retry saying the same gets the same ids: the recorder stores it once.

Per process, bounded in entries and age: a retry that reaches another ingest process is not
recognised (an Idempotency-Key is the way that always works). A message that is accepted
(202) is forgotten at once, so the same words sent again later are a new message."""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from uuid import UUID

import orjson

from services.ingest.schemas import PostMessage

MAX_ENTRIES = 10_000
TTL_S = 900.0  # clients retry within minutes; the producer holds a record at most while the broker is away


def fingerprint(tenant_id: str, post: PostMessage) -> bytes:
    said = post.model_dump(mode="json", exclude={"external_id"})
    return hashlib.sha256(orjson.dumps([tenant_id, said], option=orjson.OPT_SORT_KEYS)).digest()


class Unconfirmed:
    def __init__(self, max_entries: int = MAX_ENTRIES, ttl_s: float = TTL_S) -> None:
        self.max_entries, self.ttl_s = max_entries, ttl_s
        self._ids: OrderedDict[bytes, tuple[UUID, UUID, float]] = OrderedDict()

    def remember(self, key: bytes, message_id: UUID, conversation_id: UUID) -> None:
        self._ids.pop(key, None)
        self._ids[key] = (message_id, conversation_id, time.monotonic() + self.ttl_s)
        while len(self._ids) > self.max_entries:
            self._ids.popitem(last=False)  # the oldest

    def recall(self, key: bytes) -> tuple[UUID, UUID] | None:
        """The ids the first attempt was answered with, if it is remembered."""
        now = time.monotonic()
        while self._ids:  # entries are in order of expiry: drop the expired ones first
            oldest = next(iter(self._ids.values()))
            if oldest[2] > now:
                break
            self._ids.popitem(last=False)
        found = self._ids.get(key)
        return None if found is None else (found[0], found[1])

    def forget(self, key: bytes) -> None:
        self._ids.pop(key, None)

    def __len__(self) -> int:
        return len(self._ids)
