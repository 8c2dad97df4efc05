"""The tables are written twice: bot/storage/schema.py, which the queries use, and the Alembic
migrations, which build the database. A database migrated from nothing must be the schema.

SQLite always; PostgreSQL too when CHUNGSUC_TEST_PG_URL names a server: each test migrates a new,
empty database of its own there (tests/databases.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from pprint import pformat
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, MetaData, String, UniqueConstraint, inspect

from bot.storage.db import Database
from bot.storage.schema import metadata
from tests import databases


@pytest.fixture
async def migrated(database: str, tmp_path: Path) -> AsyncIterator[Database]:
    """A database brought from nothing to the newest revision by the migration start-up runs."""
    fresh = None if database == databases.SQLITE else await databases.create_database()
    if fresh is None:
        url = f"sqlite+aiosqlite:///{tmp_path / 'schema.sqlite3'}"
    else:
        url = databases.url_of(fresh)
    db = Database(url)
    try:
        async with db.read() as conn:
            existing = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        assert not existing, f"{database}: the database must start empty, has {existing}"
        await db.migrate()
        yield db
    finally:
        await db.close()
        if fresh is not None:
            await databases.drop_database(fresh)


def _differences(sync: Connection, wanted: MetaData) -> list[Any]:
    context = MigrationContext.configure(
        sync, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, wanted))


def _unique_column_sets(sync: Connection) -> set[tuple[str, tuple[str, ...]]]:
    """(table, columns) of every unique constraint in the database, named or not."""
    inspector = inspect(sync)
    return {
        (table, tuple(sorted(u["column_names"])))
        for table in inspector.get_table_names()
        for u in inspector.get_unique_constraints(table)
    }


async def test_the_migrations_build_exactly_the_tables_of_schema_py(migrated: Database) -> None:
    async with migrated.read() as conn:
        diff = await conn.run_sync(_differences, metadata)
    assert not diff, "migrations and bot/storage/schema.py differ:\n" + pformat(diff, width=100)


async def test_unique_constraints_without_a_name_match_too(migrated: Database) -> None:
    """Alembic leaves unnamed unique constraints out on SQLite (campaigns.slug is one)."""
    wanted = {
        (table.name, tuple(sorted(c.name for c in constraint.columns)))
        for table in metadata.sorted_tables
        for constraint in table.constraints
        if isinstance(constraint, UniqueConstraint)
    } | {
        (table.name, (column.name,))
        for table in metadata.sorted_tables
        for column in table.c
        if column.unique
    }
    async with migrated.read() as conn:
        found = await conn.run_sync(_unique_column_sets)
    assert found == wanted


async def test_the_comparison_sees_a_difference(migrated: Database) -> None:
    """Not a comparison that always agrees: a column, an index and a type changed are seen."""
    altered = MetaData()
    for table in metadata.sorted_tables:
        table.to_metadata(altered)
    contributions = altered.tables["contributions"]
    contributions.c.village.type = String(50)
    contributions.indexes = {i for i in contributions.indexes if i.name != "ix_contributions_user"}
    altered.remove(altered.tables["schedules"])
    async with migrated.read() as conn:
        diff = await conn.run_sync(_differences, altered)
    kinds = sorted(d[0][0] if isinstance(d, list) else d[0] for d in diff)
    assert kinds == ["modify_type", "remove_index", "remove_table"], pformat(diff)
