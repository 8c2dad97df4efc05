"""Settings, the database handle, migrations and reference loading."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from pydantic import ValidationError
from sqlalchemy import insert, select, text

from bot.app.services import Services
from bot.app.settings import load_settings
from bot.content.reference import shipped_files, sync_reference
from bot.core.dispatch import KeyedLocks
from bot.domain.paths import MIGRATIONS_DIR
from bot.storage.db import Database
from bot.storage.officials import OfficialStore
from bot.storage.schema import schedules
from bot.storage.users import UserProfile

TOKEN = "123456789:" + "A" * 35


def test_settings_from_environment_and_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "chungsuc.toml"
    config.write_text('province = "06"\ndefault_locale = "en"\n', encoding="utf-8")
    monkeypatch.setenv("CHUNGSUC_CONFIG", str(config))
    monkeypatch.setenv("CHUNGSUC_TELEGRAM_TOKEN", TOKEN)
    monkeypatch.setenv("CHUNGSUC_DEFAULT_LOCALE", "vi")  # the environment wins over the file
    settings = load_settings()
    assert settings.province == "06"
    assert settings.default_locale == "vi"
    assert settings.telegram_token_problem() is None


def test_the_token_never_prints(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHUNGSUC_TELEGRAM_TOKEN", TOKEN)
    settings = load_settings()
    assert TOKEN not in repr(settings) and TOKEN not in str(settings.model_dump())


@pytest.mark.parametrize(
    ("token", "problem"),
    [(None, "is not set"), ("", "is not set"), ("not-a-token", "does not look like")],
)
def test_token_problems_are_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, token: str | None, problem: str
) -> None:
    monkeypatch.delenv("CHUNGSUC_TELEGRAM_TOKEN", raising=False)
    settings = load_settings(telegram_token=token)
    reason = settings.telegram_token_problem()
    assert reason is not None and problem in reason and "\n" not in reason


def test_unknown_default_locale_is_rejected() -> None:
    with pytest.raises(ValueError, match="must be one of"):
        load_settings(default_locale="fr")


async def test_migrations_are_recorded_and_idempotent(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}")
    try:
        await db.migrate()
        await db.migrate()
        async with db.read() as conn:
            version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
        head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
        assert version == [(head,)]
    finally:
        await db.close()


async def test_reference_files_reload_only_when_changed(services: Services, tmp_path: Path) -> None:
    assert await sync_reference(services.db) == 0
    faq_like = [(p, loader) for p, loader in shipped_files() if p.suffix == ".toml"]
    changed = tmp_path / "criteria" / faq_like[0][0].name
    changed.parent.mkdir()
    changed.write_text(faq_like[0][0].read_text(encoding="utf-8") + "\n# edited\n", "utf-8")
    assert await sync_reference(services.db, [(changed, faq_like[0][1])]) == 1
    assert await sync_reference(services.db, [(changed, faq_like[0][1])]) == 0


async def test_a_failed_write_leaves_nothing(services: Services) -> None:
    with pytest.raises(RuntimeError):
        async with services.db.write() as conn:
            await conn.execute(text("DELETE FROM users"))
            await conn.execute(
                text(
                    "INSERT INTO users (channel, user_id, locale, state_data, offered, created_at,"
                    " updated_at) VALUES ('t', '1', 'vi', '{}', '[]', '2026-01-01', '2026-01-01')"
                )
            )
            raise RuntimeError("boom")
    async with services.db.read() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM users"))).scalar_one() == 0


async def test_keyed_locks_serialise_one_key_and_are_dropped_after_use() -> None:
    locks = KeyedLocks()
    order: list[str] = []

    async def work(key: str, name: str, pause: float) -> None:
        async with locks.hold(key):
            order.append(f"{name}>")
            await asyncio.sleep(pause)
            order.append(f"<{name}")

    await asyncio.gather(work("a", "a1", 0.02), work("a", "a2", 0), work("b", "b1", 0))
    assert order.index("<a1") < order.index("a2>")
    assert order.index("b1>") < order.index("<a1")  # another key did not wait
    assert len(locks) == 0


async def test_saves_from_many_users_at_once_are_all_stored(services: Services) -> None:
    from bot.storage.users import UserProfile

    profiles = [UserProfile("telegram", f"g{i}", "vi", is_new=True) for i in range(40)]
    for p in profiles:
        await services.users.save(p.snapshot(), p)  # new users: inserted one by one

    async def change(p: UserProfile, i: int) -> None:
        before = p.snapshot()
        p.enter("contrib:step", draft={"n": i})
        await services.users.save(before, p)

    await asyncio.gather(*(change(p, i) for i, p in enumerate(profiles)))
    services.users.forget()
    stored = [await services.users.load("telegram", f"g{i}", "vi") for i in range(40)]
    assert [s.state_data["draft"]["n"] for s in stored] == list(range(40))


def test_a_snapshot_copies_every_field_and_shares_no_step_data() -> None:
    profile = UserProfile(
        "telegram",
        "42",
        "en",
        "02020",
        "contrib:amount",
        {"draft": {"kind": "money", "villages": ["Nà Làng"]}},
        [["contrib:ok:1", "Đúng, ghi nhận"]],
        datetime(2026, 11, 29, 7, tzinfo=UTC),
        is_new=True,
    )
    copy = profile.snapshot()
    assert copy == profile
    copy.state_data["draft"]["villages"].append("Bản Cái")
    copy.offered.append(["menu:main", "Menu"])
    copy.offered[0][1] = "changed"
    assert profile.state_data["draft"]["villages"] == ["Nà Làng"]
    assert profile.offered == [["contrib:ok:1", "Đúng, ghi nhận"]]


async def test_grants_are_cached_and_a_revoke_elsewhere_shows_within_the_ttl(
    services: Services,
) -> None:
    here = OfficialStore(services.db, ttl_seconds=0.2)
    elsewhere = OfficialStore(services.db)  # another process: `chungsuc admin revoke`
    who = "telegram:77"
    assert await here.grant(who, "commune_official", "02020", "test")
    assert await here.may(who, "commune_official", "02020", "19")
    assert await elsewhere.revoke(who, "commune_official", "02020")
    assert await here.may(who, "commune_official", "02020", "19")  # still cached
    await asyncio.sleep(0.25)
    assert not await here.may(who, "commune_official", "02020", "19")
    assert await here.grant(who, "commune_official", "02021", "test")  # here: at once
    assert await here.may(who, "commune_official", "02021", "19")


async def test_a_failed_write_leaves_nothing_and_the_next_write_works(services: Services) -> None:
    now = datetime(2026, 11, 29, tzinfo=UTC)
    with pytest.raises(RuntimeError):
        async with services.db.write() as conn:
            await conn.execute(insert(schedules).values(name="half", next_run_at=now))
            raise RuntimeError("a handler failed mid-transaction")
    async with services.db.write() as conn:  # no transaction left open on the connection
        await conn.execute(insert(schedules).values(name="whole", next_run_at=now))
    async with services.db.read() as conn:
        names = set((await conn.execute(select(schedules.c.name))).scalars())
    assert "whole" in names and "half" not in names


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://[bad", "not a valid URL"),
        ("http://127.0.0.1:99999/bot", "Port out of range"),
        ("http://host:abc/bot", "not a valid URL"),
        ("bot-api.zaloplatforms.com/bot", "must start with http:// or https://"),
        ("ftp://host/bot", "must start with http:// or https://"),
        ("http://exa mple.com/bot", "must not contain spaces"),
        ("http://a..b/bot", "not a valid name"),
        ("https://bot-api.zaloplatforms.com", "needs a path"),  # the token would be the port
    ],
)
@pytest.mark.parametrize("name", ["telegram_api_url", "zalo_bot_api_url"])
def test_a_malformed_api_url_is_one_clear_problem(name: str, url: str, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem) as raised:
        load_settings(**{name: url})
    assert [e["loc"] for e in raised.value.errors()] == [(name,)]


def test_the_shipped_and_usual_api_urls_are_accepted() -> None:
    settings = load_settings(
        telegram_api_url="http://telegram_bot_api:8081/bot",  # a self-hosted Bot API, by name
        zalo_oa_api_url="https://openapi.zalo.me",  # no path needed: no token appended
    )
    assert settings.zalo_bot_api_url == "https://bot-api.zaloplatforms.com/bot"
    assert load_settings(telegram_api_url="https://api.example.org/bot{token}/test")
