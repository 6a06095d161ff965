"""Headless Chromium (Debian's, never a downloaded one) driven by Playwright, for the console's
tests. Every test saves screenshots under .convmem/test-output/console/ (gitignored) so a
person can look at what the browser saw."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, ViewportSize, async_playwright

from composition.runtime import Runtime
from convmem.home import state_dir
from services.ingest.auth import issue_token
from tests.conftest import JWT_SECRET

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]
SHOTS = state_dir() / "test-output" / "console"
LAPTOP: ViewportSize = {"width": 1280, "height": 860}
PHONE: ViewportSize = {"width": 390, "height": 844}


@pytest.fixture(scope="session")
def shots() -> Path:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (make install, as root)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS


@pytest.fixture(scope="session")
async def browser(shots: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield chromium
        await chromium.close()


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    ctx = await browser.new_context(viewport=LAPTOP)
    yield ctx
    await ctx.close()


@pytest.fixture
def base(runtime: Runtime) -> str:
    return f"http://127.0.0.1:{runtime.port}"


async def shot(page: Page, name: str) -> Path:
    path = SHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def sign_in(page: Page, base: str, user: str, roles: tuple[str, ...] = ("user",),
                  tenant: str = "default") -> None:
    await page.goto(f"{base}/console/sign-in")
    await page.fill("#token", issue_token(JWT_SECRET, user, tenant, roles))
    await page.click("form[action='/console/sign-in'] button")
    await page.wait_for_url(re.compile(r"/console(/me)?$"))


async def say(api: httpx.AsyncClient, user: str, text: str, conversation_id: str | None = None,
              wait: int = 20) -> dict[str, str]:
    """A message posted from outside (the API, as a bot backend would), answered."""
    body = {"user_id": user, "text": text, **({"conversation_id": conversation_id} if conversation_id else {})}
    answer = await api.post(f"/v1/messages?wait={wait}", json=body,
                            headers={"Authorization": f"Bearer {issue_token(JWT_SECRET, user)}"})
    assert answer.status_code in (200, 202), answer.text
    found: dict[str, str] = answer.json()
    return found
