"""The databases the suite runs on: SQLite always, PostgreSQL when CHUNGSUC_TEST_PG_URL names a
server (postgresql+asyncpg://user@host:port/db; `.ci/run` starts one, see tools/pg_cluster.sh).

On PostgreSQL the run makes one database of its own, `chungsuc_t<pid>`, migrated once. The
state a fixture promises (migrated with reference data; or with the sample too) is built
there once and kept in a schema of its own (`snap_empty`, `snap_sample`); each test starts
from a copy: every table emptied, then filled from the snapshot, sequences set past the
copied ids. One round trip of about 30 ms — `CREATE DATABASE … TEMPLATE` takes about a
second, too slow to pay a thousand times. Tests that need a database nobody has touched
(test_schema) create one with `create_database`. Everything is dropped when the run ends.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Awaitable, Callable

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import URL, make_url

from bot.storage.schema import metadata

PG_URL = "CHUNGSUC_TEST_PG_URL"
SQLITE = "sqlite"
POSTGRESQL = "postgresql"

# PostgreSQL joins only when a server is named; without one the run says so in its header and
# summary (conftest.pytest_report_header) instead of skipping tests one by one.
DATABASES = [SQLITE, *([POSTGRESQL] if os.environ.get(PG_URL) else [])]

# Names unique to this run, so runs sharing a server never meet.
_PREFIX = f"chungsuc_t{os.getpid()}"
WORK = _PREFIX  # the database tests run in
_numbers = itertools.count(1)
_made: list[str] = []  # databases this run created, dropped at its end
_snapshots: set[str] = set()


def server_url() -> URL:
    return make_url(os.environ[PG_URL])


def url_of(database: str) -> str:
    """The SQLAlchemy URL of `database` on the test server."""
    return server_url().set(database=database).render_as_string(hide_password=False)


def _dsn(database: str) -> str:
    """The asyncpg form of the URL."""
    url = server_url().set(drivername="postgresql", database=database)
    return url.render_as_string(hide_password=False)


async def _execute(database: str, sql: str) -> None:
    conn = await asyncpg.connect(_dsn(database))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _admin(sql: str) -> None:
    """A statement on the server's own database (CREATE/DROP DATABASE run outside any
    transaction)."""
    await _execute(server_url().database or "postgres", sql)


async def create_database(name: str | None = None) -> str:
    """A new, empty database; its name."""
    name = name or f"{_PREFIX}_{next(_numbers)}"
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await _admin(f'CREATE DATABASE "{name}"')
    _made.append(name)
    return name


async def drop_database(name: str) -> None:
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if name in _made:
        _made.remove(name)


async def drop_all() -> None:
    """Everything this run created on the server."""
    for name in list(_made):
        await drop_database(name)
    _snapshots.clear()


def _tables() -> list[str]:
    return [t.name for t in metadata.sorted_tables]  # parents before children


def _snapshot_sql(kind: str) -> str:
    schema = f"snap_{kind}"
    copies = "".join(f'CREATE TABLE {schema}."{t}" AS TABLE public."{t}";\n' for t in _tables())
    return f"DROP SCHEMA IF EXISTS {schema} CASCADE;\nCREATE SCHEMA {schema};\n{copies}"


def _counters() -> str:
    """Each id sequence set past the ids in its table (1 when it is empty)."""
    return "".join(
        f"SELECT setval(pg_get_serial_sequence('public.\"{t.name}\"', '{column.name}'), "
        f'coalesce(max("{column.name}"), 0) + 1, false) FROM public."{t.name}";\n'
        for t in metadata.sorted_tables
        if (column := t.autoincrement_column) is not None
    )


def _emptied() -> str:
    # DELETE, not TRUNCATE: TRUNCATE makes new files for every table and index, 0.2 s a test
    # where DELETE and a refill take 0.03 s; autovacuum takes the dead rows away.
    return "".join(f'DELETE FROM public."{t}";\n' for t in reversed(_tables()))


def _restore_sql(kind: str) -> str:
    schema = f"snap_{kind}"
    fills = "".join(f'INSERT INTO public."{t}" SELECT * FROM {schema}."{t}";\n' for t in _tables())
    # A test that left a transaction open would make the reset wait for ever: fail instead.
    return f"SET lock_timeout = '10s';\nBEGIN;\n{_emptied()}{fills}{_counters()}COMMIT;\n"


async def _ensure_work() -> None:
    if WORK not in _made:
        await create_database(WORK)


async def reset(kind: str, fill: Callable[[str], Awaitable[None]]) -> str:
    """The work database in state `kind` (built once by `fill(url)`, then copied); its URL."""
    try:
        return await _reset(kind, fill)
    except asyncpg.PostgresError:
        # The last test changed the schema (some rename a table to make the database fail):
        # start again from a new database, once.
        await drop_database(WORK)
        _snapshots.clear()
        return await _reset(kind, fill)


async def _reset(kind: str, fill: Callable[[str], Awaitable[None]]) -> str:
    await _ensure_work()
    url = url_of(WORK)
    if kind not in _snapshots:
        if _snapshots:  # migrated already: start from no rows at all
            await _execute(WORK, f"BEGIN;\n{_emptied()}{_counters()}COMMIT;\n")
        await fill(url)
        await _execute(WORK, _snapshot_sql(kind))
        _snapshots.add(kind)
    await _execute(WORK, _restore_sql(kind))
    return url
