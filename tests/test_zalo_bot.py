"""The Zalo Bot Platform channel end to end: the real adapter, a fake Bot API on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from bot.app.services import Services
from bot.channels.zalo_bot import (
    TEXT_LIMIT,
    Backoff,
    ZaloBot,
    ZaloBotClient,
    ZaloBotError,
    to_update,
)
from bot.core.conversation import Reply
from bot.core.dispatch import Dispatcher
from bot.domain.i18n import use_locale
from handlers import build_router
from handlers.menu import main_menu
from tests.fake_zalo import (
    BOT_TOKEN,
    FakeZaloBot,
    eventually,
    image_update,
    sticker_update,
    text_update,
    voice_update,
)
from tests.live_server import serve

ALICE = "a1ce0000000000000001"


@pytest.fixture
async def fake() -> AsyncIterator[FakeZaloBot]:
    fake = FakeZaloBot()
    async with serve(fake.app) as url:
        fake.url = url  # type: ignore[attr-defined]
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def make_bot(fake: FakeZaloBot, http: httpx.AsyncClient, dispatcher: Dispatcher) -> ZaloBot:
    client = ZaloBotClient(http, BOT_TOKEN, f"{fake.url}/bot")  # type: ignore[attr-defined]
    return ZaloBot(client, dispatcher, backoff=Backoff(first=0.01, most=0.05))


@pytest.fixture
async def bot(
    fake: FakeZaloBot, http: httpx.AsyncClient, dispatcher: Dispatcher
) -> AsyncIterator[ZaloBot]:
    bot = make_bot(fake, http, dispatcher)
    yield bot
    await bot.background.drain()  # nothing may outlive the test's HTTP client


@asynccontextmanager
async def polling(bot: ZaloBot) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(bot.poll(stop, wait=1))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


async def say(fake: FakeZaloBot, text: str, until: str, user: str = ALICE) -> list[str]:
    """Send a text through getUpdates; the messages the bot sent until one contains `until`."""
    seen = len(fake.sent())
    fake.push(text_update(user, text))
    await eventually(lambda: any(until in t for t in fake.sent()[seen:]))
    return fake.sent()[seen:]


def vi_menu() -> list[str]:
    with use_locale("vi"):
        return [b.label for row in main_menu() for b in row]


async def test_a_whole_conversation_by_polling_with_numbered_menus(
    fake: FakeZaloBot, bot: ZaloBot, caplog: pytest.LogCaptureFixture
) -> None:
    async with polling(bot):
        greeting, languages = await say(fake, "/start", until="English")
        assert "Xin chào! Mình là Chung Sức" in greeting
        assert "Gõ số để chọn:" in languages
        assert "1. Tiếng Việt" in languages and "2. English" in languages

        assert "Bạn sống ở xã, phường nào?" in (await say(fake, "1", until="phường nào"))[0]

        saved = "\n".join(await say(fake, "cho don", until="Đã lưu"))
        assert "Đã lưu: bạn ở Xã Chợ Đồn" in saved
        for number, label in enumerate(vi_menu(), start=1):
            assert f"{number}. {label}" in saved

        assert "Đạt 3/10 tiêu chí" in "\n".join(await say(fake, "1", until="tiêu chí"))
        # Words still work where a number is expected.
        assert "Hạ tầng" in "\n".join(await say(fake, "tieu chi giao thong", until="Tiêu chí 2"))

    assert {p["chat_id"] for p in fake.params("sendMessage")} == {ALICE}
    assert all(len(t) <= TEXT_LIMIT for t in fake.sent())
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_a_newcomers_first_hello_onboards_and_a_pledge_is_typed_in_words(
    fake: FakeZaloBot, bot: ZaloBot, services: Services
) -> None:
    async with polling(bot):
        greeting = "\n".join(await say(fake, "Xin chào", until="English"))
        assert "Xin chào! Mình là Chung Sức" in greeting and "2. English" in greeting
        assert "Đã lưu: bạn ở Xã Chợ Đồn" in "\n".join(await say(fake, "cho don", until="Đã lưu"))
        await say(fake, "toi muon gop", until="thôn, bản nào")
        await say(fake, "na lang", until="góp gì")
        await say(fake, "tien", until="bao nhiêu")
        await say(fake, "hai trieu", until="Khi nào")
        await say(fake, "bay gio", until="hiện tên")
        confirm = "\n".join(await say(fake, "khong", until="Đúng không?"))
        assert "2.000.000 đồng" in confirm
        assert "Cảm ơn bạn!" in "\n".join(await say(fake, "Đúng", until="Cảm ơn"))
    [mine] = await services.contributions.of_user("zalo", ALICE)
    assert (mine.kind, mine.amount, mine.village) == ("money", 2_000_000, "Nà Làng")
    sub = await services.subscriptions.get("zalo", ALICE)
    assert sub is not None and sub.active  # "Đúng" never stops anything


@pytest.mark.parametrize("update", [image_update, sticker_update, voice_update])
async def test_image_sticker_voice_get_text_please(
    fake: FakeZaloBot, bot: ZaloBot, update: Any
) -> None:
    async with polling(bot):
        fake.push(update(ALICE))
        await eventually(lambda: bool(fake.sent()))
    assert "Mình chỉ hiểu tin nhắn chữ" in fake.sent()[0]
    assert f"1. {vi_menu()[0]}" in fake.sent()[0]


async def test_a_long_reply_is_split_at_paragraphs_menu_last(
    fake: FakeZaloBot, bot: ZaloBot
) -> None:
    paragraph = "Thôn Bản Lác làm xong 1,2 km đường bê tông nhờ bà con góp ngày công. " * 4
    paragraphs = [f"{n}. {paragraph.strip()}" for n in range(40)]
    text = "\n\n".join(paragraphs)[:10_000]
    with use_locale("vi"):
        replies = [Reply(text, main_menu())]

    await bot.send_replies(ALICE, replies)

    parts = fake.sent()
    assert len(parts) >= 5
    assert all(len(p) <= TEXT_LIMIT for p in parts)
    for part in parts[:-1]:  # every cut falls between paragraphs
        assert all(chunk in paragraphs for chunk in part.split("\n\n"))
    assert " ".join(parts).split()[: len(text.split())] == text.split()
    assert parts[-1].endswith(f"{len(vi_menu())}. {vi_menu()[-1]}")


async def test_the_same_message_delivered_twice_is_answered_once(
    fake: FakeZaloBot, bot: ZaloBot
) -> None:
    update = text_update(ALICE, "/start")
    assert await bot.accept(update) is True
    assert await bot.accept({"ok": True, "result": update}) is False  # wrapped, same id
    await bot.background.drain()
    assert len(fake.sent()) == 2


async def test_errors_back_off_then_polling_recovers(
    fake: FakeZaloBot, bot: ZaloBot, caplog: pytest.LogCaptureFixture
) -> None:
    fake.fail["getUpdates"] = [
        (502, "<html>502 Bad Gateway</html>"),
        (200, {"ok": False, "error_code": 500, "description": "internal error"}),
        (500, {"ok": False, "error_code": 500, "description": "internal error"}),
    ]
    fake.push(text_update(ALICE, "/start"))
    # httpx logs each request URL at INFO (`chungsuc` raises it to WARNING; a test may have).
    with caplog.at_level(logging.DEBUG), caplog.at_level(logging.INFO, logger="httpx"):
        async with polling(bot):
            await eventually(lambda: len(fake.sent()) == 2)

    retries = [r.getMessage() for r in caplog.records if "polling again in" in r.getMessage()]
    assert len(retries) == 3
    assert all(float(line.split(" in ")[-1].split()[0]) <= 0.05 for line in retries)
    assert bot.backoff.failures == 0
    ours = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("uvicorn"))
    assert BOT_TOKEN not in ours  # (the fake server's own access log may show it)
    assert "<token>" in ours  # httpx logged the URL, with the token replaced


def test_backoff_doubles_up_to_a_ceiling_with_jitter() -> None:
    backoff = Backoff(first=1, most=8)
    delays = [backoff.failed() for _ in range(6)]
    assert all(c / 2 <= d <= c for d, c in zip(delays, [1, 2, 4, 8, 8, 8], strict=True))
    backoff.succeeded()
    assert backoff.failed() <= 1


async def test_a_failed_send_is_logged_without_the_token(
    fake: FakeZaloBot, bot: ZaloBot, caplog: pytest.LogCaptureFixture
) -> None:
    fake.fail["sendMessage"] = [(200, {"ok": False, "error_code": 403, "description": "blocked"})]
    await bot.accept(text_update(ALICE, "/start"))
    await bot.background.drain()
    failed = [r for r in caplog.records if "failed" in r.getMessage()]
    assert [r.levelno for r in failed] == [logging.WARNING]
    assert "403 blocked" in failed[0].getMessage()


async def test_the_token_is_never_in_an_error(http: httpx.AsyncClient) -> None:
    closed = "http://127.0.0.1:9/bot"  # the discard port: nothing listens
    with pytest.raises(ZaloBotError) as raised:
        await ZaloBotClient(http, BOT_TOKEN, closed).get_me()
    assert BOT_TOKEN not in str(raised.value)
    assert raised.value.code == 0


async def test_a_wrong_token_is_a_clear_error(fake: FakeZaloBot, http: httpx.AsyncClient) -> None:
    client = ZaloBotClient(http, "0:wrong", f"{fake.url}/bot")  # type: ignore[attr-defined]
    with pytest.raises(ZaloBotError, match="getMe failed: 401 Unauthorized"):
        await client.get_me()


async def test_a_restart_resumes_the_conversation(
    fake: FakeZaloBot, http: httpx.AsyncClient, services: Services
) -> None:
    first = make_bot(fake, http, Dispatcher(services, *build_router()))
    async with polling(first):
        await say(fake, "/start", until="English")
    services.users.forget()  # a new process: the offered buttons come from the database
    # getUpdates has no offset: a long poll the first bot left open would take the next
    # update to nobody, so let it run out as Zalo's would.
    await asyncio.sleep(fake.max_wait + 0.1)
    second = make_bot(fake, http, Dispatcher(services, *build_router()))
    async with polling(second):
        assert "Which commune or ward" in (await say(fake, "2", until="commune"))[0]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (text_update("u9", "  cho\u200b don "), ("u9", "cho don", None)),
        ({"ok": True, "result": text_update("u9", "/start")}, ("u9", "/start", None)),
        (image_update("u9"), ("u9", "", "photo")),
        ({"event_name": "message.text.received", "message": {"text": "x"}}, None),
        ({"ok": False, "error_code": 408}, None),
        ("not an object", None),
    ],
)
def test_updates_wrapped_or_bare(body: Any, expected: tuple[str, str, str | None] | None) -> None:
    update = to_update(body)
    if expected is None:
        assert update is None
        return
    assert update is not None
    event = update.event
    assert (event.user_id, event.text, event.unsupported) == expected
    assert event.numbered and event.channel == "zalo" and event.message_id
    assert event.display_name == "Người u9"


def test_group_chats_and_bots_are_ignored() -> None:
    group = text_update("u9", "hi")
    group["message"]["chat"]["chat_type"] = "GROUP"
    assert to_update(group) is None
    from_bot = text_update("u9", "hi")
    from_bot["message"]["from"]["is_bot"] = True
    assert to_update(from_bot) is None
