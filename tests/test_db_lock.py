"""Another process holding SQLite's write lock: a write waits it out, within a bound."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from bot.app.services import Services
from bot.core.dispatch import Dispatcher
from bot.storage.db import Database
from bot.storage.schema import schedules, users
from tests.conftest import Chat

pytestmark = pytest.mark.sqlite_only  # SQLite's own lock, held by another process

APOLOGY = "Xin lỗi, hệ thống đang gặp sự cố"
NOW = datetime(2026, 11, 29, 0, 0, tzinfo=UTC)


@contextmanager
def locked_by_another_process(path: Path, seconds: float) -> Iterator[threading.Event]:
    """A second, plain sqlite3 connection holds the write lock for `seconds` in a thread."""
    taken, failed = threading.Event(), []

    def hold() -> None:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("BEGIN IMMEDIATE")
            taken.set()
            time.sleep(seconds)
            conn.execute("COMMIT")
        except sqlite3.Error as error:  # pragma: no cover - the test fails on it below
            failed.append(error)
            taken.set()
        finally:
            conn.close()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert taken.wait(5), "the other connection never got the lock"
    assert not failed, failed
    try:
        yield taken
    finally:
        thread.join(seconds + 5)


def db_file(services: Services) -> Path:
    database = services.db.engine.url.database
    assert database is not None
    return Path(database)


async def test_a_villager_waits_out_a_lock_held_longer_than_the_busy_timeout(
    dispatcher: Dispatcher, services: Services
) -> None:
    """6 s of another process's write lock (busy timeout 5 s): a slower answer, no apology."""
    chat = Chat(dispatcher, "telegram", "lock-1")
    with locked_by_another_process(db_file(services), 6.0):
        started = time.monotonic()
        answer = await chat.say("/start")
        waited = time.monotonic() - started

    assert APOLOGY not in answer
    assert "lang:vi" in chat.buttons
    assert waited > 5.5  # it really waited past one busy timeout
    async with services.db.read() as conn:
        saved = await conn.execute(select(users.c.user_id).where(users.c.channel == "telegram"))
        assert "lock-1" in set(saved.scalars())


async def test_a_write_gives_up_once_the_wait_is_over(tmp_path: Path) -> None:
    """The wait is bounded: past lock_wait the write fails (and leaves nothing)."""
    path = tmp_path / "db.sqlite3"
    db = Database(f"sqlite+aiosqlite:///{path}", busy_timeout_ms=200, lock_wait=1.0)
    try:
        await db.migrate()
        with locked_by_another_process(path, 2.0):
            started = time.monotonic()
            with pytest.raises(sqlite3.OperationalError, match="database is locked"):
                async with db.write() as conn:
                    await conn.execute(insert(schedules).values(name="x", next_run_at=NOW))
            waited = time.monotonic() - started
        assert 1.0 <= waited < 2.0, waited  # lock_wait, plus at most one busy timeout
        async with db.read() as conn:
            assert (await conn.execute(select(schedules.c.name))).all() == []
        async with db.write() as conn:  # the lock is free again: the same handle writes
            await conn.execute(insert(schedules).values(name="x", next_run_at=NOW))
    finally:
        await db.close()
