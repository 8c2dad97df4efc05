"""Everything that is SQLite's alone: the driver, pragmas, how transactions begin and end.

The rest of storage writes portable SQLAlchemy; `Database` calls `engine_url`, `ENGINE_OPTIONS`,
`install` and `connection` for a SQLite URL and nothing here for any other. Each hook is here
because BENCHMARKS.md or a test shows what it buys, and each has a test in tests/test_sqlite.py:

- **Statements in the event loop's own thread** (`sqlite+chungsuc://`, `InlineDialect`; an
  `sqlite+aiosqlite://` URL is served by it). SQLAlchemy's asyncio layer over aiosqlite hands
  every statement to aiosqlite's thread three or four times (open a cursor, execute, fetch,
  close), and each hand-off contends for the GIL with the loop: a fifth of a pledge flow's
  time under fifty villagers at once. A statement on a local SQLite file takes microseconds,
  so it runs at once instead. What could block the loop is a lock held by another process:
  SQLite's busy handler is off (busy_timeout 0) and `InlineSQLite.run` waits the lock out with
  asyncio.sleep, up to the busy timeout, while the loop serves everyone else.
  The price: a statement holds the loop for as long as SQLite takes. Chat statements take
  microseconds; the longest the bot runs, materialising a 100,000-recipient broadcast with one
  INSERT … SELECT, took 0.37 s, once per broadcast (BENCHMARKS.md: replies beside a broadcast
  kept a p95 of 5.6 ms). WAL checkpoints run in the committing connection, every ~4 MB written.
- **Connections back to the pool at once** (`connection`): nothing awaits in the inline driver,
  so a connection is not held over a turn of the loop while SQLAlchemy closes it in a task.
- **Pragmas** on every connection: WAL (readers never wait for the writer), foreign keys,
  `synchronous=NORMAL` (durable at each checkpoint; safe in WAL).
- **Writes begin IMMEDIATE** and retry with back-off while another process holds the lock, up
  to `lock_wait` seconds: a villager's save waits out a long lock instead of turning into an
  apology.
- **Reads run in autocommit** (no BEGIN, no ROLLBACK at the end); a failed write's BEGIN is
  rolled back by the `rollback` hook, because SQLAlchemy skips the driver's rollback() on
  connections it believes are in autocommit.
- **One writer at a time in the process** (`Database.write` holds an asyncio lock on SQLite
  only): SQLite has one writer anyway, and waiting in the event loop is cheaper than waiting
  for the lock in SQLite.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

from sqlalchemy import event
from sqlalchemy.connectors.asyncio import (
    AsyncAdapt_dbapi_connection,
    AsyncAdapt_dbapi_cursor,
    AsyncAdapt_terminate,
)
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_dbapi,
    SQLiteDialect_aiosqlite,
)
from sqlalchemy.engine import URL, AdaptedConnection, Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000  # how long one statement waits for another process's lock
LOCK_WAIT_SECONDS = 15.0  # how long a write keeps trying BEGIN IMMEDIATE in all
DRIVER = "chungsuc"  # sqlite+chungsuc:// — SQLite in the event loop's thread (InlineDialect)
# SQLite: transactions are begun and ended explicitly (see install), so the pool need not roll
# back every connection it gets back, nor SQLAlchemy every read: a trip saved per query.
ENGINE_OPTIONS: dict[str, Any] = {"pool_reset_on_return": None, "skip_autocommit_rollback": True}


def engine_url(url: URL) -> URL:
    """The URL the engine is made with: aiosqlite is served by the one-trip dialect."""
    if url.get_backend_name() == "sqlite" and url.get_driver_name() == "aiosqlite":
        return url.set(drivername=f"sqlite+{DRIVER}")
    return url


class Busy(Exception):
    """Another process holds the lock this statement needs (internal: retried, then raised as
    sqlite3's own OperationalError)."""


def _locked(error: sqlite3.OperationalError) -> bool:
    return "locked" in str(error)  # "database is locked", "database table is locked"


class InlineSQLite:
    """A sqlite3 connection used in the event loop's own thread, with the awaitable face
    SQLAlchemy's asyncio adapter expects.

    A statement on a local SQLite file takes microseconds, less than handing it to a driver
    thread and back (aiosqlite: three or four hand-offs a statement, each a contention for the
    GIL with the loop). What could block the loop is a lock held by another process, so the
    connection waits for none (busy_timeout 0): a statement that meets a lock is retried here
    with asyncio.sleep, up to the busy timeout, while the loop serves everyone else.
    """

    def __init__(self, conn: sqlite3.Connection, busy_seconds: float) -> None:
        self._conn = conn
        self.busy_seconds = busy_seconds

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._conn.isolation_level = value  # type: ignore[assignment]

    async def run(
        self, operation: str, parameters: Any = None, many: bool = False
    ) -> tuple[Any, int, int | None, list[Any] | None]:
        """A statement from cursor to close, and what SQLAlchemy reads of it; a lock held by
        another process is waited out without blocking the loop."""
        deadline = time.monotonic() + self.busy_seconds
        pause = 0.002
        while True:
            cursor = self._conn.cursor()
            try:
                if many:
                    cursor.executemany(operation, parameters)
                elif parameters is None:
                    cursor.execute(operation)
                else:
                    cursor.execute(operation, parameters)
                description = cursor.description
                rows = cursor.fetchall() if description else None
                return description, cursor.rowcount, cursor.lastrowid, rows
            except sqlite3.OperationalError as error:
                left = deadline - time.monotonic()
                if not _locked(error) or left <= 0:
                    raise
            finally:
                cursor.close()
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, 0.1)

    async def execute(self, operation: str, parameters: Any = None) -> None:
        await self.run(operation, parameters)

    async def commit(self) -> None:
        await self.run("COMMIT") if self._conn.in_transaction else None

    async def rollback(self) -> None:
        if self._conn.in_transaction:
            self._conn.rollback()

    async def close(self) -> None:
        self._conn.close()

    def stop(self) -> None:
        self._conn.close()


class InlineCursor(AsyncAdapt_dbapi_cursor):
    """SQLAlchemy's asyncio cursor adapter over InlineSQLite: the statement runs at once, its
    rows fetched as the stock adapter fetches them all."""

    __slots__ = ("_arraysize", "_description", "_lastrowid", "_rowcount")
    _awaitable_cursor_close = False

    def __init__(self, adapt_connection: Any) -> None:  # nothing to open
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = {}  # type: ignore[assignment]
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None  # none before a statement
        self._arraysize = 1

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return cast(int, self._lastrowid)  # sqlite3's own: None before any statement

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    async def _async_soft_close(self) -> None:
        return None

    def close(self) -> None:
        self._rows.clear()

    async def _run(self, operation: str, parameters: Any, many: bool) -> None:
        connection: InlineSQLite = self._connection  # type: ignore[assignment]
        description, rowcount, lastrowid, rows = await connection.run(operation, parameters, many)
        self._description, self._rowcount, self._lastrowid = description, rowcount, lastrowid
        self._rows = collections.deque(rows) if rows else collections.deque()

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        await self._run(operation, parameters, False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        await self._run(operation, seq_of_parameters, True)


class _Connection(AsyncAdapt_terminate, AsyncAdapt_dbapi_connection):
    __slots__ = ()
    _cursor_cls = InlineCursor
    _ss_cursor_cls = InlineCursor  # type: ignore[assignment]  # rows are in memory anyway

    @property
    def isolation_level(self) -> str | None:
        return self._connection.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._connection.isolation_level = value

    def create_function(self, *args: Any, **kw: Any) -> None:
        self._connection._conn.create_function(*args, **kw)

    async def _terminate_graceful_close(self) -> None:
        await self._connection.close()

    def _terminate_force_close(self) -> None:
        self._connection.stop()


class _DBAPI(AsyncAdapt_aiosqlite_dbapi):
    busy_seconds = BUSY_TIMEOUT_MS / 1000

    def connect(self, *arg: Any, **kw: Any) -> _Connection:  # type: ignore[override]
        kw.pop("async_creator_fn", None)
        kw["check_same_thread"] = False  # the pool may close it from a GC callback
        kw["timeout"] = 0  # no busy handler's sleep in the loop: InlineSQLite.run waits
        conn = sqlite3.connect(*arg, **kw)
        return _Connection(self, InlineSQLite(conn, self.busy_seconds))  # type: ignore[arg-type]


class InlineDialect(SQLiteDialect_aiosqlite):
    """SQLite for SQLAlchemy's asyncio engine, statements run in the loop's thread (see
    InlineSQLite); served for sqlite+aiosqlite:// URLs."""

    driver = DRIVER
    supports_statement_cache = True

    @classmethod
    def import_dbapi(cls) -> _DBAPI:
        return _DBAPI(__import__("aiosqlite"), __import__("sqlite3"))


registry.register(f"sqlite.{DRIVER}", __name__, "InlineDialect")


def _driver(conn: Connection) -> AdaptedConnection:
    """The asyncio driver's connection under a sync-side SQLAlchemy connection."""
    driver = conn.connection.dbapi_connection
    assert isinstance(driver, AdaptedConnection)
    return driver


async def _begin_when_free(aio: Any, mode: str, lock_wait: float) -> None:
    """BEGIN, tried again with back-off while another process holds the write lock.

    Each attempt waits up to busy_timeout (InlineSQLite.run), so the whole takes about `lock_wait`
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


def install(engine: AsyncEngine, busy_timeout_ms: int, lock_wait: float) -> None:
    """The pragmas and transaction hooks, on a SQLite engine."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (see _on_begin).
        dbapi_connection.isolation_level = None
        # A lock held by another process is waited out by InlineSQLite.run, in the loop.
        dbapi_connection.driver_connection.busy_seconds = busy_timeout_ms / 1000
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=0")
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
            _driver(conn).run_async(lambda aio: _begin_when_free(aio, mode, lock_wait))

    @event.listens_for(engine.sync_engine, "rollback")
    def _on_rollback(conn: Connection) -> None:
        # SQLAlchemy skips the driver's rollback() on connections in autocommit mode
        # (skip_autocommit_rollback: a trip to the driver's thread saved at the end of every
        # read). A write's explicit BEGIN IMMEDIATE is rolled back here instead.
        driver = _driver(conn)
        if driver.driver_connection.in_transaction:
            driver.run_async(lambda aio: aio.rollback())


WRITE_OPTIONS = {"sqlite_begin": "IMMEDIATE"}  # a write's connection: see _on_begin


@asynccontextmanager
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A pooled connection, given back without a turn of the event loop.

    SQLAlchemy's `async with engine.connect()` closes in a task of its own, so that a
    cancellation cannot leave a close half done with a driver that awaits its thread. Here
    nothing awaits anything (InlineSQLite runs at once), so the close runs straight through —
    and a connection is not held, across a turn of the loop, by every one of fifty villagers
    answered at once (the pool had to open a new connection for most of them).
    """
    conn = engine.connect()
    await conn.start()
    try:
        yield conn
    finally:
        await conn.close()
