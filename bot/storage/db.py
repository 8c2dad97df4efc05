"""The database handle: engine, SQLite pragmas, short write transactions, migrations."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import AdaptedConnection, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from bot.domain.clock import Clock
from bot.domain.paths import MIGRATIONS_DIR

log = logging.getLogger(__name__)
BUSY_TIMEOUT_MS = 5000  # how long one statement waits for another process's lock
LOCK_WAIT_SECONDS = 15.0  # how long a write keeps trying BEGIN IMMEDIATE in all


def as_utc(moment: datetime) -> datetime:
    """Times are stored in UTC; SQLite hands them back without a zone."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _driver(conn: Connection) -> AdaptedConnection:
    """The asyncio driver's connection under a sync-side SQLAlchemy connection."""
    driver = conn.connection.dbapi_connection
    assert isinstance(driver, AdaptedConnection)
    return driver


async def _begin_when_free(aio: Any, mode: str, lock_wait: float) -> None:
    """BEGIN, tried again with back-off while another process holds the write lock.

    Each attempt waits up to busy_timeout inside SQLite, so the whole takes about `lock_wait`
    (up to one busy_timeout more). Another process holding the lock a little longer than one
    busy_timeout should slow a villager's answer, not turn it into an apology.
    """
    deadline = time.monotonic() + lock_wait
    pause = 0.05
    while True:
        try:
            await aio.execute(f"BEGIN {mode}")
            return
        except sqlite3.OperationalError as error:
            left = deadline - time.monotonic()
            if "database is locked" not in str(error) or left <= 0:
                raise
            log.warning("the database is locked by another process; trying again")
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, 1.0)


def _sqlite_pragmas(engine: AsyncEngine, busy_timeout_ms: int, lock_wait: float) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the lock up front, so they wait on busy_timeout instead of failing later.
        # Reads run in autocommit: each statement sees a consistent snapshot, and skipping
        # BEGIN saves a round trip to the driver's thread.
        mode = conn.get_execution_options().get("sqlite_begin")
        if mode:
            # Straight to aiosqlite: one trip to its thread, where a statement through
            # SQLAlchemy's cursor adapter takes three (open cursor, execute, close).
            _driver(conn).run_async(lambda aio: _begin_when_free(aio, mode, lock_wait))

    @event.listens_for(engine.sync_engine, "rollback")
    def _on_rollback(conn: Connection) -> None:
        # SQLAlchemy skips the driver's rollback() on connections in autocommit mode
        # (skip_autocommit_rollback: a trip to the driver's thread saved at the end of every
        # read). A write's explicit BEGIN IMMEDIATE is rolled back here instead.
        driver = _driver(conn)
        if driver.driver_connection.in_transaction:
            driver.run_async(lambda aio: aio.rollback())


class Database:
    """One engine per process. Reads run concurrently; SQLite writes go one at a time."""

    def __init__(
        self,
        url: str,
        *,
        busy_timeout_ms: int = BUSY_TIMEOUT_MS,
        lock_wait: float = LOCK_WAIT_SECONDS,
    ) -> None:
        parsed = make_url(url)
        # The one clock (Vietnam time) every store stamps rows with; Services.clock is this one,
        # so a test that sets it sets the time of everything written.
        self.clock: Clock = Clock()
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite and parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # SQLite: transactions are begun and ended explicitly (see write()), so the pool need
        # not roll back every connection it gets back — a round trip saved per query.
        options: dict[str, Any] = {}
        if self.is_sqlite:
            options = {"pool_reset_on_return": None, "skip_autocommit_rollback": True}
        self.engine: AsyncEngine = create_async_engine(url, **options)
        if self.is_sqlite:
            _sqlite_pragmas(self.engine, busy_timeout_ms, lock_wait)
        self._writer = asyncio.Lock()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A short transaction that commits on success and rolls back on any error."""
        async with self._writer, self.engine.connect() as conn:
            if self.is_sqlite:
                conn = await conn.execution_options(sqlite_begin="IMMEDIATE")
            async with conn.begin():
                yield conn

    async def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent)."""
        async with self.write() as conn:
            await conn.run_sync(_upgrade)

    async def close(self) -> None:
        await self.engine.dispose()


def _upgrade(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
