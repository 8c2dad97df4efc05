"""The Telegram channel end to end: the real Application, an offline Bot API behind it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from telegram import Update
from telegram.ext import Application

from bot.app.services import Services
from bot.app.settings import Settings
from bot.channels.telegram import TEXT_LIMIT, build_application, register_commands, send_replies
from bot.core.conversation import Reply
from bot.core.dispatch import Dispatcher
from bot.domain.i18n import _, use_locale
from handlers.menu import main_menu
from tests.conftest import make_settings
from tests.offline_telegram import (
    TOKEN,
    Call,
    OfflineRequest,
    callback_update,
    photo_update,
    sticker_update,
    text_update,
)

App = Application[Any, Any, Any, Any, Any, Any]
ALICE, BINH = 1001, 1002


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return make_settings(tmp_path, db_url, telegram_token=TOKEN)


@pytest.fixture
def offline() -> OfflineRequest:
    return OfflineRequest()


@pytest.fixture
async def app(
    settings: Settings,
    dispatcher: Dispatcher,
    offline: OfflineRequest,
    caplog: pytest.LogCaptureFixture,
) -> AsyncIterator[App]:
    application = build_application(settings, dispatcher, request=offline)
    async with application:
        yield application
    # A failing handler or Bot API call only reaches the log, so the log is checked too.
    assert offline.unexpected == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


class TelegramChat:
    """One user in a private chat: send an update, read the messages the bot sent back."""

    def __init__(self, app: App, offline: OfflineRequest, user_id: int = ALICE) -> None:
        self.app, self.offline, self.user_id = app, offline, user_id
        self.last: list[dict[str, Any]] = []
        self.language_code = "vi"

    async def send(self, update: dict[str, Any]) -> str:
        seen = len(self.offline.calls)
        # process_update awaits the handler even with concurrent_updates(True): the replies
        # are on the wire when it returns.
        await self.app.process_update(Update.de_json(update, self.app.bot))
        self.last = [c.params for c in self.offline.calls[seen:] if c.method == "sendMessage"]
        assert all(p["chat_id"] == self.user_id for p in self.last)
        return "\n".join(p["text"] for p in self.last)

    async def say(self, text: str) -> str:
        return await self.send(text_update(self.user_id, text, self.language_code))

    async def press(self, data: str) -> str:
        return await self.send(callback_update(self.user_id, data, self.language_code))

    @property
    def buttons(self) -> list[str]:
        """callback_data of the keyboard under the last message that has one."""
        keyboards = [p["reply_markup"] for p in self.last if "reply_markup" in p]
        return [b["callback_data"] for row in keyboards[-1]["inline_keyboard"] for b in row]

    @property
    def labels(self) -> list[str]:
        keyboards = [p["reply_markup"] for p in self.last if "reply_markup" in p]
        return [b["text"] for row in keyboards[-1]["inline_keyboard"] for b in row]

    async def onboard(self) -> None:
        await self.say("/start")
        await self.press("lang:vi")
        assert "Xã Chợ Đồn" in await self.say("cho don")


MENU = [b.id for row in main_menu() for b in row]


@pytest.fixture
def alice(app: App, offline: OfflineRequest) -> TelegramChat:
    return TelegramChat(app, offline, ALICE)


async def test_start_language_commune(alice: TelegramChat, offline: OfflineRequest) -> None:
    assert "Chung Sức" in await alice.say("/start")
    assert alice.buttons == ["lang:vi", "lang:en"]

    assert "xã, phường nào" in await alice.press("lang:vi")
    assert offline.params("answerCallbackQuery")[-1]["callback_query_id"]

    assert "Đã lưu: bạn ở Xã Chợ Đồn" in await alice.say("cho don")
    saved = next(p for p in alice.last if p["text"].startswith("Đã lưu"))
    menu = [b["callback_data"] for row in saved["reply_markup"]["inline_keyboard"] for b in row]
    assert menu == MENU


async def test_status_card_then_criterion(alice: TelegramChat) -> None:
    await alice.onboard()

    card = await alice.press("status:card")
    assert "Đạt" in card
    assert "/10 tiêu chí" in card
    criteria = [b for b in alice.buttons if b.startswith("status:crit:")]
    assert criteria

    assert "Tiêu chí 2: Hạ tầng kinh tế – xã hội" in await alice.press("status:crit:2")


async def test_switch_to_english(alice: TelegramChat) -> None:
    await alice.onboard()
    await alice.say("/language")
    assert alice.buttons == ["lang:vi", "lang:en"]
    await alice.press("lang:en")

    # The client still says "vi": the user's choice wins.
    card = await alice.say("/status")
    with use_locale("en"):
        met_line = _("Đạt {met}/{total} tiêu chí").split("{met}")[1].format(total=10)
    assert met_line in card
    assert "Criterion 2: Economic and social infrastructure" in alice.labels
    assert "Tiêu chí" not in " ".join(alice.labels)


@pytest.mark.parametrize("update", [sticker_update, photo_update])
async def test_sticker_or_photo_gets_the_menu(alice: TelegramChat, update: Any) -> None:
    await alice.onboard()
    assert "chỉ hiểu tin nhắn chữ" in await alice.send(update(ALICE))
    assert alice.buttons == MENU


@pytest.mark.parametrize("forged", ["status:crit:99", "nonsense:1"])
async def test_forged_button_gets_the_menu(
    alice: TelegramChat, offline: OfflineRequest, caplog: pytest.LogCaptureFixture, forged: str
) -> None:
    await alice.onboard()
    answered = len(offline.params("answerCallbackQuery"))

    with caplog.at_level(logging.WARNING, logger="bot.core.dispatch"):
        assert "chưa hiểu ý bạn" in await alice.press(forged)

    assert alice.buttons == MENU
    assert len(offline.params("answerCallbackQuery")) == answered + 1
    assert any(forged in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


async def test_command_menus(app: App, dispatcher: Dispatcher, offline: OfflineRequest) -> None:
    await register_commands(app, dispatcher)

    calls = offline.params("setMyCommands")
    assert [c.get("language_code") for c in calls] == ["vi", None, "en"]
    assert all(c["scope"] == {"type": "default"} for c in calls)
    vi, default, en = ([c["command"] for c in call["commands"]] for call in calls)
    assert vi == default
    assert {"tiendo", "tieuchi", "trogiup", "ngonngu", "huy"} <= set(vi)
    assert {"status", "criterion", "help", "language", "cancel"} <= set(en)
    assert "start" not in vi + en
    assert "status" not in vi


async def test_command_menus_are_optional(
    app: App, dispatcher: Dispatcher, offline: OfflineRequest, caplog: pytest.LogCaptureFixture
) -> None:
    offline.fail["setMyCommands"] = "Bad Request: too many requests"

    await register_commands(app, dispatcher)

    failed = [r for r in caplog.records if "setMyCommands" in r.getMessage()]
    assert [r.levelno for r in failed] == [logging.WARNING] * 3


async def test_long_reply_is_split_keyboard_on_last(app: App, offline: OfflineRequest) -> None:
    paragraph = "Thôn Bản Lác làm xong 1,2 km đường bê tông nhờ bà con góp ngày công. " * 8
    text = "\n\n".join(f"{n}. {paragraph}" for n in range(20))[:10_000]

    await send_replies(app, ALICE, [Reply(text, main_menu())])

    sent = offline.sent(ALICE)
    assert len(sent) == 3
    assert all(len(p["text"]) <= TEXT_LIMIT for p in sent)
    assert ["reply_markup" in p for p in sent] == [False, False, True]
    assert " ".join(p["text"] for p in sent).split() == text.split()


async def test_users_run_concurrently_each_in_order(app: App, offline: OfflineRequest) -> None:
    alice, binh = TelegramChat(app, offline, ALICE), TelegramChat(app, offline, BINH)
    await alice.onboard()
    await binh.onboard()
    offline.clear()
    binh_answered = asyncio.Event()
    held: list[Call] = []

    async def network(call: Call) -> None:
        # Alice's first reply is held back on a slow link until Binh has had his: Binh is not
        # queued behind Alice, and Alice's later replies must still come after her first.
        if call.method != "sendMessage":
            return
        if call.params["chat_id"] == BINH:
            binh_answered.set()
        elif not held:
            held.append(call)
            await asyncio.wait_for(binh_answered.wait(), timeout=5)
            await asyncio.sleep(0.05)

    offline.before_answer = network
    updates = [
        text_update(ALICE, "/tiendo"),
        text_update(ALICE, "/tieuchi 2"),
        text_update(ALICE, "/trogiup"),
        text_update(BINH, "/tiendo"),
    ]
    await asyncio.gather(*(app.process_update(Update.de_json(u, app.bot)) for u in updates))

    to_alice = [p["text"] for p in offline.sent(ALICE)]
    assert len(to_alice) == 3
    assert "/10 tiêu chí" in to_alice[0]
    assert to_alice[1].startswith("Tiêu chí 2:")
    assert "/tiendo" in to_alice[2]  # the help text
    assert offline.calls[0].params["chat_id"] == BINH


async def test_a_redelivered_confirmation_update_records_one_pledge(
    alice: TelegramChat, services: Services
) -> None:
    await alice.onboard()
    await alice.say("góp 500k")
    await alice.press("contrib:vil:0")
    await alice.press("contrib:when:now")
    await alice.press("contrib:public:no")
    ok = next(b for b in alice.buttons if b.startswith("contrib:ok:"))
    update = callback_update(ALICE, ok)  # the very same update, delivered twice
    first = await alice.send(update)
    again = await alice.send(update)
    assert "Đã ghi nhận đăng ký" in first and "Đã ghi nhận trước đó." in again
    assert len(await services.contributions.of_user("telegram", str(ALICE))) == 1
