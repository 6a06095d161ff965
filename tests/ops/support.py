"""What the operations tests share: a database of their own on the stack's cluster (a full
rebuild reads every turn of a database, so it must not read the whole suite's), a seeded
chat history recorded through the recorder's own ledger and embedded by the indexer's own
function, search results to compare, and the environment of a `convmem` child process."""

from __future__ import annotations

import asyncio
import os
import random
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from contracts import MessageReceived, ReplyGenerated, TurnRecorded
from convmem.adapters.postgres import PostgresStorage
from convmem.memory.retrieval import Retriever, Stages
from convmem.ports import Embedder, MemoryScope, VectorIndex
from services.indexer.embedding import embed_turns

TENANT = "acme"
NAMES = ["Lucia", "Tomas", "Priya", "Kenji", "Amara", "Jonas", "Sofia", "Mateo", "Ingrid", "Omar"]
CITIES = ["Porto", "Lyon", "Krakow", "Osaka", "Nairobi", "Valencia", "Gothenburg", "Montreal"]
PETS = ["a beagle", "a tabby cat", "a grey parrot", "a tortoise", "a border collie"]
HOBBIES = ["pottery", "bouldering", "salsa dancing", "birdwatching", "sourdough baking", "chess"]
FOODS = ["ramen", "paella", "pho", "shakshuka", "pierogi", "mushroom risotto"]
FACTS = [
    "My sister {name} just moved to {city} for a new job.",
    "We adopted {pet} last spring and named it {name}.",
    "I have been doing {hobby} every Thursday evening since January.",
    "My favourite dinner is {food}, especially the way my dad makes it.",
    "I'm allergic to peanuts, so please keep that in mind.",
    "Next month I'm flying to {city} for my cousin's wedding.",
    "My manager {name} wants the quarterly report by Friday.",
    "The package with the new blender arrived damaged yesterday.",
    "I usually take the 7:40 train to work, it is always crowded.",
    "Our flat in {city} has a tiny balcony where I grow tomatoes.",
]
SMALL_TALK = ["ok", "thanks, that helps", "haha yes", "good morning!", "see you later", "sounds great"]
ACKS = ["Got it, I'll remember that.", "That sounds lovely!", "Thanks for telling me.", "Noted."]
QUERIES = ["where does my sister live now?", "what pet do we have?", "which hobby do I do on Thursdays?",
           "what food do I like best?", "am I allergic to anything?", "where am I travelling next month?"]


@dataclass(frozen=True)
class Fresh:
    url: str
    name: str


def database_url(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def create_database(base_url: str, prefix: str = "convmem_ops") -> Fresh:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(base_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return Fresh(database_url(base_url, name), name)


async def drop_database(base_url: str, name: str) -> None:
    admin = await asyncpg.connect(base_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def users(n: int) -> list[str]:
    return [f"user-{i:03d}" for i in range(n)]


async def record_history(store: PostgresStorage, people: Sequence[str], turns_each: int,
                         seed: int = 7, tenant: str = TENANT) -> list[TurnRecorded]:
    """Each user's conversation as the recorder stores it: facts among small talk, every
    user turn answered, 60 to 1 days ago."""
    rng = random.Random(seed)
    recorded: list[TurnRecorded] = []
    seen: dict[str, int] = {}

    def once(text: str) -> str:
        # Two turns of one text tie in every ranking, in an order no index promises: a
        # repeated text gets a number, so a ranking has one right answer to compare.
        seen[text] = seen.get(text, 0) + 1
        return text if seen[text] == 1 else f"{text} (#{seen[text]})"

    now = datetime.now(UTC)
    for user in people:
        conv = uuid.uuid4()
        start = now - timedelta(days=60)
        step = timedelta(days=59) / max(1, turns_each)
        for i in range(0, turns_each, 2):
            text = once(rng.choice(FACTS if rng.random() < 0.6 else SMALL_TALK).format(
                name=rng.choice(NAMES), city=rng.choice(CITIES), pet=rng.choice(PETS), hobby=rng.choice(HOBBIES),
                food=rng.choice(FOODS)))
            said = MessageReceived(tenant_id=tenant, user_id=user, conversation_id=conv, message_id=uuid.uuid4(),
                                   text=text, occurred_at=start + step * i, reply_expected=False)
            recorded.append((await store.turns.record_turn(said)).turn)
            reply = ReplyGenerated(tenant_id=tenant, user_id=user, conversation_id=conv, message_id=uuid.uuid4(),
                                   in_reply_to=said.message_id, text=once(rng.choice(ACKS)), model="m",
                                   occurred_at=start + step * (i + 1))
            recorded.append((await store.turns.record_turn(reply)).turn)
    return recorded


async def embed_history(turns: Sequence[TurnRecorded], store: PostgresStorage, embedder: Embedder,
                        index: VectorIndex) -> None:
    """What indexer.embed does with the TurnRecorded events, in its batches of 64."""
    for i in range(0, len(turns), 64):
        await embed_turns(turns[i:i + 64], embedder, index, store.embeddings)


async def search_results(store: PostgresStorage, index: VectorIndex, embedder: Embedder, people: Sequence[str],
                         k: int = 5, tenant: str = TENANT) -> dict[tuple[str, str, str], list[str]]:
    """Top-k message ids per user, query and mode (vector only, and the default hybrid
    search with its stages) through the Retriever the API uses."""
    retriever = Retriever(store.memory, index, embedder)
    now = datetime.now(UTC)
    found: dict[tuple[str, str, str], list[str]] = {}
    for mode, stages in (("vector", Stages.parse("vector", "none")), ("hybrid", Stages())):
        for user in people:
            for q in QUERIES:
                result = await retriever.search(q, MemoryScope(tenant, user), k, now, stages)
                found[(mode, user, q)] = [str(h.turn.message_id) for h in result.hits]
    return found


def child_env(database_url: str, vectors: Path, **extra: str) -> dict[str, str]:
    """The environment of a `convmem` child process: the stack's (the tests run with it
    exported), on this database and this index folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVMEM_") or k.startswith("CONVMEM_STACK_")
           or k in ("CONVMEM_KAFKA_BOOTSTRAP", "CONVMEM_WHATSAPP_APP_SECRET", "CONVMEM_WHATSAPP_VERIFY_TOKEN")}
    env.update(CONVMEM_DATABASE_URL=database_url, CONVMEM_VECTOR_PATH=str(vectors), CONVMEM_LOG_LEVEL="WARNING",
               **extra)
    return env


CLI = [sys.executable, "-m", "composition.cli"]


async def cli(*args: str, env: dict[str, str], timeout: float = 150) -> tuple[int, str, str]:
    """`convmem ARGS` as a child process: its exit code, standard output and error."""
    proc = await asyncio.create_subprocess_exec(*CLI, *args, env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()
