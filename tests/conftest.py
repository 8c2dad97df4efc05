"""Shared fixtures: a real SQLite file per test, migrated, with reference and sample data."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime
from pathlib import Path

import pytest

from bot.app.services import Services, build_services, prepare_database
from bot.app.settings import Settings, load_settings
from bot.channels.terminal import to_event as to_terminal_event
from bot.content.sample import load_sample, load_sample_campaigns
from bot.core.conversation import Incoming, Reply
from bot.core.dispatch import Dispatcher
from bot.domain.clock import TZ, FixedClock
from handlers import build_router

TODAY = date(2026, 11, 29)
NOW = datetime(2026, 11, 29, 7, 0, tzinfo=TZ)  # every test's 'now', whatever the real date
_TEMPLATE_DB: dict[str, bytes] = {}


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    return load_settings(db_url=f"sqlite+aiosqlite:///{tmp_path / 'chungsuc.sqlite3'}", **overrides)


async def _template_db(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A migrated database with reference and sample data, built once and copied per test."""
    if "db" not in _TEMPLATE_DB:
        folder = tmp_path_factory.mktemp("template")
        settings = make_settings(folder)
        services = await build_services(settings)
        services.clock = FixedClock(NOW)
        await load_sample(services.db, services.reference, services.statuses, TODAY)
        await load_sample_campaigns(services)
        async with services.db.engine.connect() as conn:
            await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        await services.close()
        _TEMPLATE_DB["db"] = (folder / "chungsuc.sqlite3").read_bytes()
    return _TEMPLATE_DB["db"]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
async def services(
    settings: Settings, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Services]:
    """Services on a fresh copy of the sample database; the date is fixed to TODAY."""
    (tmp_path / "chungsuc.sqlite3").write_bytes(await _template_db(tmp_path_factory))
    built = await build_services(settings, await prepare_database(settings))
    built.clock = FixedClock(NOW)
    yield built
    await built.close()


@pytest.fixture
async def empty_services(settings: Settings) -> AsyncIterator[Services]:
    """Services on a migrated database with reference data but no statuses."""
    built = await build_services(settings)
    built.clock = FixedClock(NOW)
    yield built
    await built.close()


@pytest.fixture
def dispatcher(services: Services) -> Dispatcher:
    router, fallbacks = build_router()
    return Dispatcher(services, router, fallbacks)


def texts(replies: list[Reply]) -> str:
    return "\n".join(r.text for r in replies)


def button_ids(replies: list[Reply]) -> list[str]:
    return [b.id for r in replies for b in r.all_buttons()]


NUMBERED = {"terminal", "zalo"}  # channels without buttons: a typed number picks one


class Chat:
    """A transcript helper: say something or press a button, read what the bot answered."""

    def __init__(self, dispatcher: Dispatcher, channel: str = "terminal", user_id: str = "u1"):
        self.dispatcher = dispatcher
        self.channel = channel
        self.user_id = user_id
        self.last: list[Reply] = []

    async def say(self, text: str) -> str:
        numbered = self.channel in NUMBERED
        event = Incoming(self.channel, self.user_id, text=text, numbered=numbered)
        return await self.send(event)

    async def press(self, button_id: str) -> str:
        """Press a button the bot offered (the terminal and Zalo type its number instead)."""
        if self.channel in NUMBERED:
            offered = [b.id for r in self.last for b in r.all_buttons()]
            number = str(offered.index(button_id) + 1)
            if self.channel == "terminal":
                event = to_terminal_event(number, self.user_id)
            else:
                event = Incoming(self.channel, self.user_id, text=number, numbered=True)
            assert event is not None
        else:
            event = Incoming(self.channel, self.user_id, button=button_id)
        return await self.send(event)

    async def press_unoffered(self, button_id: str) -> str:
        """A button id the bot did not offer now: stale, or forged."""
        return await self.send(Incoming(self.channel, self.user_id, button=button_id))

    async def send(self, event: Incoming) -> str:
        """The bot's answer; notices it sends to others after answering have gone out too."""
        self.last = await self.dispatcher.handle(event)
        await self.dispatcher.services.notifier.settled()
        return texts(self.last)

    @property
    def buttons(self) -> list[str]:
        return button_ids(self.last)

    def label(self, button_id: str) -> str:
        return next(b.label for r in self.last for b in r.all_buttons() if b.id == button_id)


@pytest.fixture(params=["terminal", "telegram", "zalo"])
def chat(dispatcher: Dispatcher, request: pytest.FixtureRequest) -> Chat:
    """A conversation on each channel the core serves (end to end: test_telegram, test_zalo_*)."""
    return Chat(dispatcher, channel=request.param)
