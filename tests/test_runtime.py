"""The one runtime (bot/app/runtime.py): what each mode builds from the settings, that it stops
clean, that a crash is heard. Offline by construction: Telegram answers from the offline Bot
API, the Zalo Bot API is the fake on 127.0.0.1; nothing here reaches a network."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from rich.console import Console
from sqlalchemy import select

from bot.app import runtime as runtime_module
from bot.app.runtime import CannotStart, Runtime, plan
from bot.app.services import Services
from bot.app.settings import Settings
from bot.core.conversation import Reply
from bot.delivery.notify import enqueue
from bot.interfaces.server import create_app
from bot.storage.schema import schedules
from tests.conftest import make_settings
from tests.fake_zalo import BOT_TOKEN, FakeZaloBot, eventually
from tests.live_server import serve
from tests.offline_telegram import TOKEN, Call, OfflineRequest

ALICE = 1001  # a villager on Telegram


class TelegramApi(OfflineRequest):
    """The offline Bot API as a polling bot meets it: getUpdates waits a little, like a long
    poll with nothing new (an instant [] would spin), and setWebhook is answered."""

    def __init__(self) -> None:
        super().__init__(before_answer=self._pace)
        self.shut = False

    async def _pace(self, call: Call) -> None:
        if call.method == "getUpdates":
            await asyncio.sleep(0.05)

    def _answer(self, call: Call) -> Any:
        return True if call.method == "setWebhook" else super()._answer(call)

    async def shutdown(self) -> None:
        self.shut = True

    def methods(self) -> set[str]:
        return {c.method for c in self.calls}


@pytest.fixture
async def zalo() -> AsyncIterator[FakeZaloBot]:
    fake = FakeZaloBot()
    async with serve(fake.app) as url:
        fake.url = url  # type: ignore[attr-defined]
        yield fake


@pytest.fixture
def settings(tmp_path: Path, db_url: str, zalo: FakeZaloBot) -> Settings:
    """Every channel configured: each mode must take only its own."""
    return make_settings(
        tmp_path,
        db_url,
        telegram_token=TOKEN,
        telegram_webhook_secret="tg-secret_0123456789",
        zalo_bot_token=BOT_TOKEN,
        zalo_bot_webhook_secret="zalo-webhook-secret",
        zalo_bot_api_url=f"{zalo.url}/bot",  # type: ignore[attr-defined]
        zalo_oa_app_id="4318",
        zalo_oa_secret_key="k",
        zalo_oa_app_secret="s",
        zalo_oa_refresh_token="r",
    )


@pytest.fixture
def telegram() -> TelegramApi:
    return TelegramApi()


def running_tasks() -> set[asyncio.Task[Any]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()}


# --- what each mode builds ----------------------------------------------------------------------


async def test_run_telegram_builds_telegram_polling_the_sender_and_the_scheduler(
    settings: Settings, services: Services, telegram: TelegramApi
) -> None:
    async with Runtime.start(settings, services, "telegram", telegram_request=telegram) as rt:
        assert rt.channels == ["telegram"]
        assert rt.telegram is not None and rt.telegram.updater is not None
        assert rt.telegram.updater.running  # polling
        assert (rt.zalo_bot, rt.zalo_oa, rt.terminal, rt.http) == (None, None, None, None)
        assert list(rt.transports) == ["telegram"]
        assert rt.transports["telegram"].limiter is rt.limiter  # type: ignore[attr-defined]
        assert sorted(rt.loops) == ["scheduler", "sender"]
        assert rt.accounts == {"telegram": "@ChungSucBot"}
        await eventually(lambda: "getUpdates" in telegram.methods())
    assert {"getMe", "setMyCommands", "deleteWebhook", "getUpdates"} <= telegram.methods()
    assert "setWebhook" not in telegram.methods()
    assert telegram.unexpected == []


async def test_run_zalo_builds_the_zalo_poller_the_sender_and_the_scheduler(
    settings: Settings, services: Services, zalo: FakeZaloBot
) -> None:
    async with Runtime.start(settings, services, "zalo") as rt:
        assert rt.channels == ["zalo"]
        assert rt.zalo_bot is not None
        assert (rt.telegram, rt.zalo_oa, rt.terminal) == (None, None, None)
        assert list(rt.transports) == ["zalo"]
        assert sorted(rt.loops) == ["scheduler", "sender", "zalo"]
        assert rt.accounts == {"zalo": "bot.chungsuc"}
        await eventually(lambda: bool(zalo.params("getUpdates")))
    assert [c.method for c in zalo.calls][:3] == ["getMe", "deleteWebhook", "getUpdates"]
    assert zalo.params("setWebhook") == []


async def test_serve_builds_every_configured_webhook_and_registers_them(
    settings: Settings, services: Services, telegram: TelegramApi, zalo: FakeZaloBot
) -> None:
    async with Runtime.start(
        settings, services, "serve", telegram_request=telegram, set_webhooks="https://x.org"
    ) as rt:
        assert rt.channels == ["telegram", "zalo", "zalo_oa"]
        assert rt.telegram is not None and rt.telegram.updater is None  # no poller
        assert rt.zalo_bot is not None and rt.zalo_oa is not None and rt.terminal is None
        assert list(rt.transports) == ["telegram", "zalo", "zalo_oa"]
        # No poller among them; on PostgreSQL the inbox's sweep (bot/core/inbox.py).
        inbox = [] if services.db.is_sqlite else ["inbox"]
        assert sorted(rt.loops) == [*inbox, "scheduler", "sender"]
        assert (rt.inbox is None) is services.db.is_sqlite
    assert [p["url"] for p in telegram.params("setWebhook")] == ["https://x.org/telegram/webhook"]
    assert [p["url"] for p in zalo.params("setWebhook")] == ["https://x.org/zalo/bot/webhook"]
    assert "getUpdates" not in telegram.methods() and zalo.params("getUpdates") == []
    assert zalo.params("getMe") == []  # a webhook is not checked at start


async def test_chat_is_the_terminal_and_its_notices(settings: Settings, services: Services) -> None:
    async with services.db.write() as conn:  # confirmed while nobody had the chat open
        await enqueue(conn, "terminal", "an", Reply("Cho An: đã xác nhận"))
        await enqueue(conn, "terminal", "bob", Reply("Cho Bob: đã xác nhận"))
    screen = io.StringIO()
    console = Console(file=screen, width=100, highlight=False)
    typed = io.StringIO("/start\n")
    async with Runtime.start(
        settings, services, "chat", terminal_user="an", stdin=typed, console=console
    ) as rt:
        assert rt.channels == ["terminal"]
        assert (rt.telegram, rt.zalo_bot, rt.zalo_oa, rt.http) == (None, None, None, None)
        assert rt.transports == {}  # broadcasts wait for a messenger's process
        assert sorted(rt.loops) == ["notices", "terminal"]
        await asyncio.wait_for(rt.wait(), 10)  # ends with the input
    assert "🔔 Cho An: đã xác nhận" in screen.getvalue()
    assert "Bob" not in screen.getvalue()  # his waits for his own chat
    assert "› /start" in screen.getvalue()
    assert "Tiếng Việt" in screen.getvalue()


async def test_serve_with_no_messenger_still_runs_the_sender_and_the_scheduler(
    tmp_path: Path, services: Services
) -> None:
    settings = make_settings(tmp_path)
    async with Runtime.start(settings, services, "serve") as rt:
        assert rt.channels == [] and rt.transports == {}
        assert sorted(rt.loops) == ["scheduler", "sender"]
        assert {"digest:daily", "digest:weekly", "reminders:daily"} <= await _schedules(services)
        assert not any(task.done() for task in rt.loops.values())
    # And as `chungsuc serve` serves it: /healthz, no webhook.
    app = create_app(settings, services=services, jobs=True)
    async with serve(app) as url, httpx.AsyncClient() as http:
        assert (await http.get(f"{url}/healthz")).json() == {"database": "ok", "channels": []}
        assert (await http.post(f"{url}/telegram/webhook", json={})).status_code == 404


async def _schedules(services: Services, within: float = 5.0) -> set[str]:
    """The recurring jobs the scheduler has written down, once it has (its first pass)."""
    async with asyncio.timeout(within):
        while True:
            async with services.db.read() as conn:
                names = set((await conn.execute(select(schedules.c.name))).scalars())
            if names:
                return names
            await asyncio.sleep(0.02)


def test_each_mode_takes_only_its_channel(settings: Settings) -> None:
    assert plan(settings, "telegram").channels == ("telegram",)
    assert plan(settings, "zalo").channels == ("zalo",)
    assert plan(settings, "serve").channels == ("telegram", "zalo", "zalo_oa")
    assert plan(settings, "chat").channels == ("terminal",)
    assert plan(settings, "chat").jobs == ("notices",)
    with pytest.raises(ValueError, match="no runtime mode 'discord'"):
        plan(settings, "discord")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("mode", "line"),
    [
        ("telegram", "Cannot start the Telegram bot: CHUNGSUC_TELEGRAM_TOKEN is not set."),
        ("zalo", "Cannot start the Zalo bot: CHUNGSUC_ZALO_BOT_TOKEN is not set."),
    ],
)
def test_a_polling_mode_without_its_channel_cannot_start(
    tmp_path: Path, mode: Any, line: str
) -> None:
    with pytest.raises(CannotStart) as refused:
        plan(make_settings(tmp_path), mode)
    assert (str(refused.value), refused.value.code) == (line, 2)


# --- a notice on its way --------------------------------------------------------------------------


async def test_a_notice_recorded_by_another_process_reaches_the_villager_within_a_second(
    settings: Settings, services: Services, telegram: TelegramApi
) -> None:
    async with Runtime.start(settings, services, "telegram", telegram_request=telegram):
        await eventually(lambda: "getUpdates" in telegram.methods())
        async with services.db.write() as conn:  # an official's answer, in another process: no kick
            await enqueue(conn, "telegram", str(ALICE), Reply("Đóng góp của bạn đã được xác nhận."))
        started = asyncio.get_running_loop().time()
        await eventually(lambda: bool(telegram.sent(ALICE)), within=3)
        assert asyncio.get_running_loop().time() - started < 1.5
    assert telegram.sent(ALICE)[0]["text"] == "Đóng góp của bạn đã được xác nhận."


# --- stopping -------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["telegram", "zalo", "serve", "chat"])
async def test_start_then_stop_leaves_nothing_running_and_closes_the_clients(
    settings: Settings, services: Services, telegram: TelegramApi, mode: Any
) -> None:
    before = running_tasks()
    async with Runtime.start(
        settings, services, mode, telegram_request=telegram, stdin=io.StringIO("")
    ) as rt:
        job = "notices" if mode == "chat" else "sender"
        assert not rt.loops[job].done()
        loops = dict(rt.loops)
    # The fake Zalo server's side of a long poll cut short notices it within its 20 ms tick.
    await eventually(lambda: running_tasks() <= before, within=1)
    assert all(task.done() for task in loops.values())
    assert rt.failed == []
    if rt.http is not None:
        assert rt.http.is_closed
    if mode in ("telegram", "serve"):
        assert rt.telegram is not None and not rt.telegram.running and telegram.shut
        assert rt.telegram.updater is None or not rt.telegram.updater.running
    else:
        assert not telegram.calls  # Telegram was not started at all


async def test_a_zalo_token_refused_at_start_is_one_line_and_leaves_nothing_open(
    settings: Settings, services: Services, zalo: FakeZaloBot
) -> None:
    refused = settings.model_copy(update={"zalo_bot_token": SecretStr("0:no")})
    before = running_tasks()
    with pytest.raises(CannotStart) as error:
        async with Runtime.start(refused, services, "zalo"):
            raise AssertionError("started with a refused token")
    assert error.value.code == 2
    assert str(error.value) == (
        f"Cannot start the Zalo bot ({settings.zalo_bot_api_url}): getMe failed: 401 Unauthorized"
    )
    assert running_tasks() <= before


# --- a crash is heard -----------------------------------------------------------------------------


async def test_a_job_that_crashes_is_logged_and_the_others_run_on(
    tmp_path: Path,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken_scheduler(services: Services, stop: asyncio.Event) -> None:
        raise RuntimeError("the schedules table is gone")

    monkeypatch.setattr(runtime_module, "run_scheduler", broken_scheduler)
    async with Runtime.start(make_settings(tmp_path), services, "serve") as rt:
        await eventually(lambda: rt.loops["scheduler"].done())
        assert rt.failed == ["scheduler"]
        assert not rt.loops["sender"].done()
    [line] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert line.getMessage() == "scheduler stopped with an error"
    assert line.exc_info is not None and "schedules table is gone" in str(line.exc_info[1])


async def test_a_poller_that_crashes_ends_the_wait_and_is_logged(
    settings: Settings,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from bot.channels.zalo_bot import ZaloBot

    async def broken_poll(self: ZaloBot, stop: asyncio.Event) -> None:
        raise KeyError("result")

    monkeypatch.setattr(ZaloBot, "poll", broken_poll)
    async with Runtime.start(settings, services, "zalo") as rt:
        await asyncio.wait_for(rt.wait(asyncio.Event()), 5)  # nobody sets it: the crash ends it
        assert rt.failed == ["zalo"]
    assert any(r.getMessage() == "zalo stopped with an error" for r in caplog.records)
