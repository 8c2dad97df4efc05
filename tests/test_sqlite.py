"""SQLite's own hooks (bot/storage/sqlite.py), one test each: statements in the loop's thread,
never blocking it; pragmas; writes begun IMMEDIATE; reads in autocommit; a failed write rolled
back; one writer at a time in the process."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, insert, select, text, update

from bot.storage.db import Database
from bot.storage.schema import schedules
from tests.test_db_lock import locked_by_another_process

NOW = datetime(2026, 11, 29, 0, 0, tzinfo=UTC)


pytestmark = pytest.mark.sqlite_only  # SQLite's own hooks: nothing here exists on PostgreSQL


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}")
    await database.migrate()
    yield database
    await database.close()


def db_path(db: Database) -> Path:
    assert db.engine.url.database is not None
    return Path(db.engine.url.database)


async def test_an_aiosqlite_url_runs_statements_in_the_loops_own_thread(db: Database) -> None:
    """No hand-off to a driver thread: the SQL function runs where the event loop runs."""
    await db.engine.dispose()  # new connections, with the function below
    seen: list[int] = []

    def record() -> int:
        seen.append(threading.get_ident())
        return 1

    @event.listens_for(db.engine.sync_engine, "connect")
    def _thread(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.create_function("thread_of", 0, record)

    async with db.read() as conn:
        assert (await conn.execute(text("SELECT thread_of()"))).scalar_one() == 1
    async with db.write() as conn:
        await conn.execute(text("SELECT thread_of()"))
    assert db.engine.dialect.driver == "chungsuc"
    assert seen == [threading.get_ident()] * 2


async def test_a_lock_held_by_another_process_never_blocks_the_event_loop(db: Database) -> None:
    """While another process holds the write lock for a second, a write waits for it and
    everyone else's work goes on: a 10 ms ticker keeps ticking, a read answers at once."""
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            await asyncio.sleep(0.01)
            ticks += 1

    ticking = asyncio.create_task(ticker())
    with locked_by_another_process(db_path(db), 1.0):
        started = time.monotonic()

        async def write() -> None:
            async with db.write() as conn:
                await conn.execute(insert(schedules).values(name="x", next_run_at=NOW))

        writing = asyncio.create_task(write())
        await asyncio.sleep(0.2)
        read_started = time.monotonic()
        async with db.read() as conn:  # WAL: a reader does not wait for the writer
            assert (await conn.execute(select(schedules.c.name))).all() == []
        assert time.monotonic() - read_started < 0.1
        await writing
        waited = time.monotonic() - started
    stop.set()
    await ticking
    assert waited > 0.5  # it did wait for the other process
    assert ticks >= 0.5 * waited / 0.01, (ticks, waited)  # and the loop was free meanwhile
    async with db.read() as conn:
        assert (await conn.execute(select(schedules.c.name))).scalars().all() == ["x"]


async def test_every_connection_gets_the_pragmas_and_waits_for_locks_in_the_loop(
    db: Database,
) -> None:
    async with db.read() as conn:
        assert (await conn.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
        assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1
        assert (await conn.execute(text("PRAGMA synchronous"))).scalar_one() == 1  # NORMAL
        # SQLite's own busy handler would sleep in the loop's thread: it is off, and the
        # connection waits out another process's lock itself, up to the busy timeout.
        assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar_one() == 0
        raw = await conn.get_raw_connection()
        assert raw.driver_connection.busy_seconds == 5.0


async def test_a_write_takes_the_write_lock_before_its_first_statement(db: Database) -> None:
    """BEGIN IMMEDIATE: a writer waits for the lock up front, never fails halfway through."""
    async with db.write():
        other = sqlite3.connect(db_path(db), timeout=0, isolation_level=None)
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        finally:
            other.close()


async def test_reads_run_in_autocommit_and_hold_no_transaction(db: Database) -> None:
    async with db.read() as conn:
        await conn.execute(select(schedules.c.name))
        raw = await conn.get_raw_connection()
        assert not raw.driver_connection.in_transaction
    other = sqlite3.connect(db_path(db), timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # nothing of the read is left holding a lock
        other.execute("ROLLBACK")
    finally:
        other.close()


async def test_a_failed_write_is_rolled_back_and_releases_the_lock(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.write() as conn:
            await conn.execute(insert(schedules).values(name="lost", next_run_at=NOW))
            raise RuntimeError("boom")
    other = sqlite3.connect(db_path(db), timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # the lock was given back
        other.execute("ROLLBACK")
    finally:
        other.close()
    async with db.read() as conn:
        assert (await conn.execute(select(schedules.c.name))).all() == []


async def test_writes_in_one_process_go_one_at_a_time(db: Database) -> None:
    order: list[str] = []

    async def write(name: str) -> None:
        async with db.write() as conn:
            order.append(f"{name} in")
            await conn.execute(insert(schedules).values(name=name, next_run_at=NOW))
            await asyncio.sleep(0.02)  # another task's turn: it must not enter meanwhile
            order.append(f"{name} out")

    await asyncio.gather(write("a"), write("b"), write("c"))
    assert order == ["a in", "a out", "b in", "b out", "c in", "c out"]


async def test_rows_counts_and_batches_come_back_as_sqlalchemy_expects(db: Database) -> None:
    async with db.write() as conn:
        result = await conn.execute(
            insert(schedules).values(name="one", next_run_at=NOW).returning(schedules.c.name)
        )
        assert result.scalar_one() == "one"
        await conn.execute(
            insert(schedules), [{"name": n, "next_run_at": NOW} for n in ("two", "three")]
        )
        changed = await conn.execute(
            update(schedules).where(schedules.c.name != "one").values(next_run_at=NOW)
        )
        assert changed.rowcount == 2
    async with db.read() as conn:
        rows = (await conn.execute(select(schedules.c.name).order_by(schedules.c.name))).all()
        assert [r.name for r in rows] == ["one", "three", "two"]
        assert (await conn.execute(text("SELECT 1 WHERE 0"))).first() is None


async def test_fifty_reads_at_once_reuse_the_pooled_connections(db: Database) -> None:
    """SQLAlchemy's close took a turn of the event loop, so fifty villagers answered at once
    each held a connection over it and the pool opened a new one for most of them."""
    opened = 0

    @event.listens_for(db.engine.sync_engine, "connect")
    def _count(_dbapi_connection: Any, _record: Any) -> None:
        nonlocal opened
        opened += 1

    async def read() -> None:
        async with db.read() as conn:
            await conn.execute(select(schedules.c.name))

    for _ in range(3):
        await asyncio.gather(*(read() for _ in range(50)))
    assert opened <= 1, opened  # the migrated database's pooled connection, reused
