"""Shared fixtures: a real database per test, migrated, with reference and sample data — a SQLite
file, and a PostgreSQL database too when CHUNGSUC_TEST_PG_URL names a server (tests/databases.py).

Every test that asks for `db_url`, `settings`, `services` or `empty_services` runs once per
database in databases.DATABASES (its id ends in [sqlite] or [postgresql]); a test or module
marked `sqlite_only` runs on SQLite alone. The rest of the suite touches no database of ours.
"""

from __future__ import annotations

import asyncio
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
from tests import databases
from tests.databases import DATABASES, PG_URL, POSTGRESQL, SQLITE

TODAY = date(2026, 11, 29)
NOW = datetime(2026, 11, 29, 7, 0, tzinfo=TZ)  # every test's 'now', whatever the real date
_TEMPLATE_DB: dict[str, bytes] = {}


def make_settings(tmp_path: Path, db_url: str | None = None, **overrides: object) -> Settings:
    """Settings for a test: its database is `db_url` (the `db_url` fixture), else a SQLite file."""
    url = db_url or f"sqlite+aiosqlite:///{tmp_path / 'chungsuc.sqlite3'}"
    overrides.setdefault("photo_dir", str(tmp_path / "photos"))
    return load_settings(db_url=url, **overrides)


async def _template_db(tmp_path_factory: pytest.TempPathFactory, kind: str = "sample") -> bytes:
    """A migrated database with reference data — and the sample data too, for kind "sample"
    (kind "empty": no statuses) — built once per process and copied per test."""
    if kind not in _TEMPLATE_DB:
        folder = tmp_path_factory.mktemp(f"template-{kind}")
        settings = make_settings(folder)
        services = await build_services(settings)
        services.clock = FixedClock(NOW)
        if kind == "sample":
            await load_sample(services.db, services.reference, services.statuses, TODAY)
            await load_sample_campaigns(services)
        async with services.db.engine.connect() as conn:
            await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        await services.close()
        _TEMPLATE_DB[kind] = (folder / "chungsuc.sqlite3").read_bytes()
    return _TEMPLATE_DB[kind]


# On PostgreSQL a conversation test runs on one channel, not on each: what it stores is the same
# whatever the messenger, and the suite stays well under ten minutes. Zalo, as it is numbered:
# the buttons it offered are stored with the profile (a JSON column).
PG_CHANNEL = "zalo"


def pytest_report_header(config: pytest.Config) -> str:
    if POSTGRESQL in DATABASES:
        where = databases.server_url().render_as_string(hide_password=True)
        return (
            f"databases: {', '.join(DATABASES)} (PostgreSQL at {where}: the tests that use a"
            f" database, conversations on {PG_CHANNEL} only)"
        )
    return f"databases: sqlite (set {PG_URL} to add PostgreSQL)"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    terminalreporter.write_line(pytest_report_header(terminalreporter.config))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test that uses the database fixtures runs once per database."""
    if "database" in metafunc.fixturenames:
        marked = metafunc.definition.get_closest_marker
        if marked("sqlite_only") is not None:
            metafunc.parametrize("database", [SQLITE], indirect=True)
        elif marked("postgres_only") is not None:
            # Without a server the test is not collected at all (the run's first and last
            # lines say PostgreSQL did not run), rather than skipped one by one.
            metafunc.parametrize("database", [POSTGRESQL], indirect=True)
        else:
            metafunc.parametrize("database", DATABASES, indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On PostgreSQL, the `chat` fixture's other channels are deselected (see PG_CHANNEL); with
    no PostgreSQL, the tests about several workers on it are."""
    kept, dropped = [], []
    for item in items:
        params = getattr(item, "callspec", None)
        params = params.params if params is not None else {}
        on_pg = params.get("database") == POSTGRESQL
        other_channel = on_pg and params.get("chat", PG_CHANNEL) != PG_CHANNEL
        no_server = on_pg and POSTGRESQL not in DATABASES
        (dropped if other_channel or no_server else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_sessionfinish(session: pytest.Session) -> None:
    if POSTGRESQL in DATABASES:
        asyncio.run(databases.drop_all())


@pytest.fixture
def database(request: pytest.FixtureRequest) -> str:
    """Which database this test runs on: "sqlite" or "postgresql" (see pytest_generate_tests)."""
    return str(request.param)


@pytest.fixture
def db_url(database: str, tmp_path: Path) -> str:
    """This test's database: a SQLite file in tmp_path, or the run's PostgreSQL database (which
    `services` and `empty_services` bring to the state they promise)."""
    if database == SQLITE:
        return f"sqlite+aiosqlite:///{tmp_path / 'chungsuc.sqlite3'}"
    return databases.url_of(databases.WORK)


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return make_settings(tmp_path, db_url)


async def _fill_empty(url: str) -> None:
    await (await build_services(load_settings(db_url=url))).close()


async def _fill_sample(url: str) -> None:
    services = await build_services(load_settings(db_url=url))
    services.clock = FixedClock(NOW)
    await load_sample(services.db, services.reference, services.statuses, TODAY)
    await load_sample_campaigns(services)
    await services.close()


async def _fresh(
    kind: str, database: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """This test's database in state `kind` ("sample" or "empty"), from a copy made once."""
    if database == SQLITE:
        (tmp_path / "chungsuc.sqlite3").write_bytes(await _template_db(tmp_path_factory, kind))
    else:
        await databases.reset(kind, _fill_sample if kind == "sample" else _fill_empty)


@pytest.fixture
async def services(
    settings: Settings, database: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Services]:
    """Services on a fresh copy of the sample database; the date is fixed to TODAY."""
    await _fresh("sample", database, tmp_path, tmp_path_factory)
    built = await build_services(settings, await prepare_database(settings))
    built.clock = FixedClock(NOW)
    yield built
    await built.close()


@pytest.fixture
async def empty_services(
    settings: Settings, database: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Services]:
    """Services on a migrated database with reference data but no statuses."""
    await _fresh("empty", database, tmp_path, tmp_path_factory)
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
