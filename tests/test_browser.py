"""The site in a real browser: Debian's Chromium driven by Playwright against `chungsuc serve`'s
app on 127.0.0.1. Screenshots at 360 px and 1280 px go to var/screenshots/; no console errors;
Vietnamese glyphs drawn; and an accessibility check written here (axe-core is not vendored):
the lang attribute, one h1 and no skipped heading level, a label on every input, alt text,
discernible links, and WCAG AA contrast of every text's computed colours.

Chromium missing is a failure, never a skip: `.ci/run` installs it (apt-get install chromium).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright
from pydantic import SecretStr

from bot.app.services import Services
from bot.app.settings import Settings
from bot.interfaces.server import create_app
from bot.storage.projects import BUILDING, NewUpdate
from tests.live_server import serve
from tests.offline_telegram import TOKEN, OfflineRequest
from tests.public_data import COMMUNE, seed

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[1] / "var" / "screenshots"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PAGES = {
    "province": "/",
    "commune": f"/xa/{COMMUNE}",
    "commune-en": f"/xa/{COMMUNE}?lang=en",
    "data": "/du-lieu",
    "search": "/tim?q=bang+lung",
}
pytestmark = pytest.mark.sqlite_only  # what the browser sees does not depend on the database

AUDIT = (Path(__file__).parent / "browser_audit.js").read_text(encoding="utf-8")


# Runs in the page: the width the h1's font gives a Vietnamese letter and the width of a glyph
# no font has (the "tofu" box). Equal widths mean the letters are drawn as boxes.
GLYPHS = """() => {
  const ctx = document.createElement('canvas').getContext('2d');
  ctx.font = getComputedStyle(document.querySelector('h1')).font;
  const w = s => ctx.measureText(s).width;
  const text = document.querySelector('h1').textContent;
  return {letters: ['ộ', 'Đ', 'ạ', 'ữ'].map(w), tofu: w('\\u{10FFFD}'), text};
}"""


LOAD_IMAGES = """async () => {
  const images = [...document.images];
  images.forEach(i => { i.loading = 'eager'; });
  await Promise.all(images.map(i => i.decode().catch(() => null)));
  return images.length;
}"""


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    assert CHROMIUM.exists(), (
        f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium; .ci/run"
        " does). The browser tests never download a browser and never skip."
    )
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        await launched.close()


@pytest.fixture
async def site(services: Services, settings: Settings) -> AsyncIterator[str]:
    """The seeded site with Telegram configured (offline), a project update with its photo."""
    await seed(services)
    offline = OfflineRequest()
    offline.files["tg-photo-1"] = (Path(__file__).parent / "data" / "site-photo.jpg").read_bytes()
    project = (await services.projects.of_commune(COMMUNE))[0]
    await services.projects.post_update(
        project.id,
        NewUpdate(BUILDING, 80, "Đã lát 600 m mặt đường", "tg-photo-1", "telegram", "b1"),
        "telegram:1",
    )
    with_token = settings.model_copy(
        update={"telegram_token": SecretStr(TOKEN), "telegram_webhook_secret": SecretStr("tg-s_1")}
    )
    async with serve(create_app(with_token, services=services, telegram_request=offline)) as url:
        yield url
    assert offline.unexpected == []


async def visit(browser: Browser, url: str, width: int) -> tuple[Page, list[str]]:
    context = await browser.new_context(viewport={"width": width, "height": 800})
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: errors.append(f"failed: {r.url}"))
    answer = await page.goto(url)
    assert answer is not None and answer.status == 200, url
    return page, errors


@pytest.mark.parametrize("width", [360, 1280])
@pytest.mark.parametrize("name", list(PAGES))
async def test_each_page_in_chromium(browser: Browser, site: str, name: str, width: int) -> None:
    page, errors = await visit(browser, site + PAGES[name], width)
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / f"{name}-{width}.png"
    await page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 5_000
    # Every image loaded now (lazy ones too), so the audit can tell a broken one.
    images = await page.evaluate(LOAD_IMAGES)
    if name.startswith("commune"):
        assert images == 1  # the project's photo, fetched from the (offline) Bot API
    problems: list[str] = await page.evaluate(AUDIT)
    assert problems == [], problems
    # Readable at 360 px: nothing wider than the screen but what scrolls inside itself.
    assert await page.evaluate("document.documentElement.scrollWidth") <= width
    await page.close()
    assert errors == []


async def test_vietnamese_is_drawn_not_boxed(browser: Browser, site: str) -> None:
    page, errors = await visit(browser, f"{site}/xa/{COMMUNE}", 360)
    seen: dict[str, Any] = await page.evaluate(GLYPHS)
    assert seen["text"] == "Xã Chợ Đồn, Tỉnh Thái Nguyên"
    assert all(w > 0 and abs(w - seen["tofu"]) > 0.01 for w in seen["letters"]), seen
    assert errors == []


async def test_every_link_answers_in_the_browser(browser: Browser, site: str) -> None:
    page, errors = await visit(browser, f"{site}/?lang=en", 1280)
    hrefs: list[str] = await page.eval_on_selector_all("a[href]", "as => as.map(a => a.href)")
    assert len(hrefs) > 10
    for href in sorted(set(hrefs)):
        if href.startswith(site):
            answer = await page.request.get(href)
            assert answer.status == 200, href
    assert errors == []
