"""The database handle: engine, short write transactions, migrations (SQLite's own hooks are
in bot/storage/sqlite.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from bot.domain.clock import Clock
from bot.domain.paths import MIGRATIONS_DIR
from bot.storage import sqlite
from bot.storage.cache import Versions

log = logging.getLogger(__name__)


def as_utc(moment: datetime) -> datetime:
    """Times are stored in UTC; SQLite hands them back without a zone."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def insert_or(conn: AsyncConnection, table: Table) -> postgresql.Insert | sqlite_dialect.Insert:
    """An INSERT that can say what to do ON CONFLICT, for the connection's database.

    SQLite and PostgreSQL spell `INSERT … ON CONFLICT (…) DO NOTHING | DO UPDATE … WHERE …`
    alike; SQLAlchemy keeps the construct per dialect. One statement instead of a read and
    then a write, which is safe only while there is one writer.
    """
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite_dialect.insert(table)


POOL_SIZE = 15  # PostgreSQL connections a process keeps (CHUNGSUC_DB_POOL_SIZE)


class Database:
    """One engine per process. Reads run concurrently; SQLite writes go one at a time."""

    def __init__(
        self,
        url: str,
        *,
        busy_timeout_ms: int = sqlite.BUSY_TIMEOUT_MS,
        lock_wait: float = sqlite.LOCK_WAIT_SECONDS,
        pool_size: int = POOL_SIZE,
    ) -> None:
        parsed = make_url(url)
        # The one clock (Vietnam time) every store stamps rows with; Services.clock is this one,
        # so a test that sets it sets the time of everything written.
        self.clock: Clock = Clock()
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite and parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        if self.is_sqlite:
            self.engine: AsyncEngine = create_async_engine(
                sqlite.engine_url(parsed), **sqlite.ENGINE_OPTIONS
            )
            sqlite.install(self.engine, busy_timeout_ms, lock_wait)
        else:
            # A fixed pool: a connection opened beyond it was closed again as soon as it was
            # given back, and under load every tenth statement paid for a new backend.
            self.engine = create_async_engine(parsed, pool_size=pool_size, max_overflow=0)
        self._unbound: tuple[AsyncEngine, AsyncEngine] | None = None  # see _autocommit
        # SQLite has one writer: writes wait for it here, in the event loop (see sqlite.py).
        self._writer: asyncio.Lock | None = asyncio.Lock() if self.is_sqlite else None
        # What the caches of this process last saw of each area (bot/storage/cache.py).
        self.versions = Versions(self)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads (on PostgreSQL outside a transaction: see _autocommit)."""
        if self.is_sqlite:
            async with sqlite.connection(self.engine) as conn:
                yield conn
            return
        async with self._autocommit().connect() as conn:
            yield conn

    def _autocommit(self) -> AsyncEngine:
        """The engine whose connections run each statement as its own transaction.

        Reads on PostgreSQL need no transaction: at READ COMMITTED each statement takes its
        own snapshot either way, and without one they save the BEGIN and ROLLBACK round trips
        (on a 2-core VM a round trip's socket write is dear: BENCHMARKS.md, bench/scale.py).
        Kept for the engine it was made from (a test may swap the engine).
        """
        if self._unbound is None or self._unbound[0] is not self.engine:
            self._unbound = (
                self.engine,
                self.engine.execution_options(isolation_level="AUTOCOMMIT"),
            )
        return self._unbound[1]

    @asynccontextmanager
    async def statements(self) -> AsyncIterator[AsyncConnection]:
        """Writes each atomic on its own: on PostgreSQL every statement commits by itself (no
        BEGIN or COMMIT round trip around it); on SQLite, one write transaction as `write()`.
        For a write of one statement, or of statements each of which is safe alone (their row
        locks last the statement, not until a COMMIT)."""
        if self._writer is not None:
            async with self.write() as conn:
                yield conn
            return
        async with self._autocommit().connect() as conn:
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A short transaction that commits on success and rolls back on any error."""
        if self._writer is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        writer = self._writer
        await writer.acquire()
        held = True
        try:
            async with sqlite.connection(self.engine) as conn:
                try:
                    conn = await conn.execution_options(**sqlite.WRITE_OPTIONS)
                    async with conn.begin():
                        yield conn
                finally:
                    writer.release()
                    held = False
        finally:
            if held:
                writer.release()

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
