"""The console in a real browser against the real stack: sign in with a token, open every
page, watch a conversation while a message is posted from outside, search memory, replay a
dead letter after a dry run, erase a user behind a confirmation that names them; and a user
token that cannot reach anyone else's pages."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from playwright.async_api import BrowserContext, Dialog, expect

from composition.runtime import Runtime
from contracts import MessageReceived, topics
from tests.browser.conftest import PHONE, say, shot, sign_in
from tests.conftest import Tap, eventually, token, unique
from tests.services import Endpoints

pytestmark = pytest.mark.stack


async def test_an_admin_signs_in_and_opens_every_page(context: BrowserContext, base: str, api: httpx.AsyncClient,
                                                      runtime: Runtime) -> None:
    ana = unique("ana")
    first = await say(api, ana, "Hi! I live in Lisbon and my cat is called Miso.")
    await say(api, ana, "I am allergic to peanuts.", first["conversation_id"])
    page = await context.new_page()

    await page.goto(f"{base}/console")
    await expect(page).to_have_url(re.compile(r"/console/sign-in$"))  # no session: the sign-in form
    await shot(page, "01-sign-in")
    await page.fill("#token", "not-a-token")
    await page.click("form[action='/console/sign-in'] button")
    await expect(page.locator("[role=alert]")).to_contain_text("invalid bearer token")

    await sign_in(page, base, unique("root"), ("admin",))
    await expect(page.locator("h1")).to_contain_text("Overview")
    await expect(page.locator(".card", has_text="postgres")).to_contain_text("ready")
    groups = page.locator("section", has=page.locator("h2", has_text="Consumer groups"))
    await expect(groups).to_contain_text("indexer.record-inbound")
    await expect(page.locator("figure.chart svg rect.bar").first).to_be_visible()
    await shot(page, "02-overview")

    await page.goto(f"{base}/console/analytics")
    await expect(page.locator("h1")).to_contain_text("Analytics")
    await expect(page.locator("figure.chart")).to_have_count(9)
    await expect(page.locator("figure.chart", has_text="Messages by role").locator("rect.bar").first).to_be_visible()
    await shot(page, "02b-analytics")
    await page.click(".periods a:text-is('Weeks')")
    await expect(page.locator(".periods a[aria-current=true]")).to_have_text("Weeks")
    await page.fill("input[name=user_id]", ana)
    await page.click("form.filters button")
    await expect(page.locator("h1")).to_contain_text(f"user {ana}")
    await expect(page.locator(".card", has_text="messages")).to_contain_text("4")
    await shot(page, "02c-analytics-user-weeks")

    await page.goto(f"{base}/console/users")
    await page.fill("input[name=q]", ana[:10])
    await page.click("form[role=search] button")
    await page.click(f"a:text-is('{ana}')")
    await expect(page.locator("h1")).to_have_text(ana)
    await expect(page.locator(".card", has_text="conversations")).to_contain_text("1")
    await shot(page, "03-user")

    await page.click("table a[href^='/console/conversations/']")
    turns = page.locator("#turns tbody tr")
    await expect(turns).to_have_count(4)
    await expect(turns.nth(1)).to_contain_text("fake-gpt")  # the reply's model
    await expect(turns.nth(1)).to_contain_text(" ms")  # its latency
    await shot(page, "04-conversation")

    await page.goto(f"{base}/console/memory?user_id={ana}")
    await page.fill("input[name=q]", "what is my cat called?")
    await page.click("form[role=search] button")
    first_hit = page.locator("li.hit").first
    await expect(first_hit).to_contain_text("Miso")
    await expect(first_hit.locator(".tag").first).to_contain_text(re.compile(r"(fts|vector) #\d"))
    await expect(page.locator("h2", has_text="Context block")).to_contain_text(re.compile(r"\d+ of \d+ tokens"))
    await expect(page.locator("pre.block")).to_contain_text("Miso")
    await shot(page, "05-memory")

    await page.goto(f"{base}/console/dead-letters")
    await expect(page.locator("h1")).to_have_text("Dead letters")
    await shot(page, "06-dead-letters")
    await page.goto(f"{base}/console/privacy?user_id={ana}")
    await expect(page.locator("h2", has_text="Erase")).to_contain_text(ana)
    await shot(page, "07-privacy")

    await page.set_viewport_size(PHONE)
    await page.goto(f"{base}/console")
    await expect(page.locator("h1")).to_contain_text("Overview")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"] + 1, f"the overview scrolls sideways on a phone ({width}px)"
    await shot(page, "08-overview-phone")


async def test_a_message_posted_from_outside_appears_live(context: BrowserContext, base: str,
                                                          api: httpx.AsyncClient) -> None:
    ana = unique("ana")
    conv = (await say(api, ana, "Good morning, let's plan a trip."))["conversation_id"]
    page = await context.new_page()
    await sign_in(page, base, unique("root"), ("admin",))
    await page.goto(f"{base}/console/conversations/{conv}")
    await expect(page.locator("#live")).to_have_attribute("data-state", "live")
    rows = page.locator("#turns tbody tr")
    await expect(rows).to_have_count(2)

    said = f"Is Porto nice in May? ({uuid.uuid4().hex[:6]})"
    await say(api, ana, said, conv, wait=0)  # from outside: no reload of the page
    await expect(page.locator("#turns tbody tr.user", has_text=said)).to_be_visible(timeout=30_000)
    await expect(page.locator("#turns tbody tr.assistant", has_text=said)).to_be_visible(timeout=30_000)
    await expect(rows).to_have_count(4)
    await shot(page, "09-conversation-live")


async def test_a_dead_letter_is_replayed_after_a_dry_run(context: BrowserContext, base: str, runtime: Runtime,
                                                         tap: Tap, producer: AIOKafkaProducer,
                                                         endpoints: Endpoints) -> None:
    conv = uuid.uuid4()
    db = await asyncpg.connect(endpoints.database_url)
    try:  # a conversation owned by someone else: the recorder refuses ana's message for good
        await db.execute("INSERT INTO conversations (id, tenant_id, user_id, channel) "
                         "VALUES ($1, 'default', $2, 'http')", conv, unique("bob"))
    finally:
        await db.close()
    said = MessageReceived(tenant_id="default", user_id=unique("ana"), conversation_id=conv, message_id=uuid.uuid4(),
                           text="my secret plans", occurred_at=datetime.now(UTC), reply_expected=False)
    await producer.send_and_wait(topics.INBOUND, said.model_dump_json().encode(), key=said.key)
    dlq = topics.dead_letter_topic(topics.INBOUND)
    [dead] = await eventually(lambda: [r for r in tap.on(dlq) if r.key == said.key])
    where = f"{dead.topic}:{dead.partition}:{dead.offset}"

    page = await context.new_page()
    await sign_in(page, base, unique("root"), ("admin",))
    await page.goto(f"{base}/console/dead-letters?topic={dlq}&reason=belongs+to+another+user")
    await page.click(f"a:text-is('{where}')")
    await expect(page.locator(".facts")).to_contain_text("belongs to another user")
    await expect(page.locator("body")).not_to_contain_text("secret plans")  # text is withheld
    await shot(page, "10-dead-letter")

    await page.click("text=Replay: dry run first")
    await expect(page.locator("h1")).to_have_text("Dry run: nothing was sent")
    await expect(page.locator("[role=status]")).to_contain_text("would replay 1")
    await shot(page, "11-replay-dry-run")
    await page.click("button:has-text('for real')")
    await expect(page.locator("h1")).to_have_text("Replayed")
    await expect(page.locator("[role=status]")).to_contain_text("replayed 1")
    await shot(page, "12-replayed")
    await eventually(lambda: [r for r in tap.on(topics.INBOUND) if r.key == said.key
                              and any(k == "x-replay-of" and v.decode() == where for k, v in r.headers)])

    await page.goto(f"{base}/console/dead-letters/{where}")
    await expect(page.locator(".facts")).to_contain_text("yes")  # replayed
    await page.goto(f"{base}/console/privacy")
    await expect(page.locator("table").last).to_contain_text("dlq_replay")


async def test_an_admin_erases_a_user_after_naming_them(context: BrowserContext, base: str, api: httpx.AsyncClient,
                                                        runtime: Runtime) -> None:
    gone = unique("gone")
    await say(api, gone, "Please forget me: my number is +351 910 000 000.")
    page = await context.new_page()
    admin = unique("root")
    await sign_in(page, base, admin, ("admin",))
    await page.goto(f"{base}/console/privacy?user_id={gone}")

    async with page.expect_download() as exported:
        await page.click("button:has-text('Export as JSON')")
    path = await (await exported.value).path()
    assert path is not None
    body = json.loads(path.read_text())
    assert body["user_id"] == gone and body["messages"]

    await page.fill("input[name=confirm]", "someone-else")
    await page.click(f"button:has-text('Erase {gone}')")
    await expect(page.locator("[role=alert]")).to_contain_text("Nothing was erased")
    await shot(page, "13-erase-refused")
    await page.fill("input[name=confirm]", gone)
    await page.click(f"button:has-text('Erase {gone}')")
    await expect(page.locator("[role=status]")).to_contain_text(f"Erasure of {gone}")
    actions = page.locator("table").last
    await expect(actions.locator("tr", has_text="erase").first).to_contain_text(admin)
    await expect(actions.locator("tr", has_text="export").first).to_contain_text(gone)
    await shot(page, "14-erased")

    async def erased() -> bool:
        answer = await api.get(f"/v1/users/{gone}/erasure", headers=token(admin, roles=("admin",)))
        return answer.status_code == 200 and answer.json()["status"] == "completed"

    await eventually(erased, timeout=60)
    assert (await api.get(f"/v1/users/{gone}/summary", headers=token(admin, roles=("admin",)))).status_code == 404


async def test_a_user_sees_only_itself(context: BrowserContext, base: str, api: httpx.AsyncClient) -> None:
    ana, ben = unique("ana"), unique("ben")
    ana_conv = (await say(api, ana, "My favourite colour is green."))["conversation_id"]
    await say(api, ana, "Another chat about gardening.")
    ben_conv = (await say(api, ben, "I support Benfica."))["conversation_id"]

    page = await context.new_page()
    await sign_in(page, base, ana)
    await expect(page).to_have_url(re.compile(r"/console/me$"))
    await expect(page.locator("h1")).to_contain_text("What convmem remembers about you")
    await expect(page.locator("table a[href^='/console/conversations/']")).to_have_count(2)
    await shot(page, "15-me")

    for path, status in ((f"/console/users/{ben}", 403), (f"/console/analytics?user_id={ben}", 403), (f"/console/conversations/{ben_conv}", 404),
                         (f"/console/memory?user_id={ben}&q=football", 403), ("/console", 403),
                         ("/console/users", 403), ("/console/dead-letters", 403), (f"/console/privacy?user_id={ben}", 403),
                         (f"/console/conversations/{ben_conv}/turns", 404)):
        answer = await page.goto(f"{base}{path}")
        assert answer is not None and answer.status == status, (path, answer and answer.status)
        await expect(page.locator("body")).not_to_contain_text("Benfica")
    await shot(page, "16-user-refused")
    # A form posted for ben with ana's session is refused too (export is a POST with CSRF).
    refused = await page.evaluate(
        """async ([who]) => {
             const csrf = "x";
             const r = await fetch(`/console/users/${who}/export`, {method: "POST", body: new URLSearchParams({csrf, format: "json"})});
             return r.status;
           }""", [ben])
    assert refused == 403

    await page.goto(f"{base}/console/conversations/{ana_conv}")
    await expect(page.locator("#turns")).to_contain_text("green")
    await page.goto(f"{base}/console/me")
    page.once("dialog", lambda d: asyncio.ensure_future(_accept(d)))
    await page.locator("tr", has_text="green").locator("button:has-text('Delete')").click()
    await expect(page.locator("table a[href^='/console/conversations/']")).to_have_count(1)
    answer = await page.goto(f"{base}/console/conversations/{ana_conv}")
    assert answer is not None and answer.status == 404
    await page.goto(f"{base}/console/me")
    async with page.expect_download() as exported:
        await page.click("button:has-text('Export as CSV')")
    csv = await (await exported.value).path()
    # Everything stored: a deleted conversation stays in storage (and the export) for its grace period.
    assert csv is not None and "Another chat about gardening." in csv.read_text()
    await shot(page, "17-me-after-delete")


async def _accept(dialog: Dialog) -> None:
    assert "Delete the conversation" in dialog.message
    await dialog.accept()
