"""`Database`: what runs inside a transaction and what does not, on both databases.

On PostgreSQL, reads and `statements()` run each statement as its own transaction (no BEGIN
and COMMIT round trips); a `write()` is one transaction; SQLite keeps one writer, and its
`statements()` is a `write()`.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError

from bot.app.services import Services
from bot.storage import inbox as store
from bot.storage.schema import inbox


async def _recorded(services: Services) -> int:
    async with services.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(inbox))).scalar_one())


def _row(n: int) -> dict[str, object]:
    return {"channel": "telegram", "event_key": f"u{n}", "user_id": "7", "seq": n, "body": {}}


async def test_a_write_is_seen_by_others_only_once_it_commits(empty_services: Services) -> None:
    db = empty_services.db
    async with db.write() as conn:
        await conn.execute(inbox.insert().values(**_row(1), received_at=store.now()))
        if not db.is_sqlite:  # SQLite's readers would wait for the writer's lock
            assert await _recorded(empty_services) == 0
    assert await _recorded(empty_services) == 1


async def test_statements_commit_one_by_one_on_postgresql(empty_services: Services) -> None:
    db = empty_services.db
    async with db.statements() as conn:
        await conn.execute(inbox.insert().values(**_row(1), received_at=store.now()))
        if not db.is_sqlite:
            assert await _recorded(empty_services) == 1  # committed before the block ends
    assert await _recorded(empty_services) == 1


async def test_a_failing_statement_keeps_the_ones_before_it(empty_services: Services) -> None:
    db = empty_services.db
    with pytest.raises(IntegrityError):
        async with db.statements() as conn:
            await conn.execute(inbox.insert().values(**_row(1), received_at=store.now()))
            await conn.execute(inbox.insert().values(**_row(1), received_at=store.now()))
    # PostgreSQL committed the first; SQLite's one transaction rolled both back.
    assert await _recorded(empty_services) == (0 if db.is_sqlite else 1)


async def test_a_replay_is_still_refused(empty_services: Services) -> None:
    db = empty_services.db
    assert await store.add(db, "telegram", "update-1", "7", 1, {"n": 1})
    assert not await store.add(db, "telegram", "update-1", "7", 1, {"n": 1})
    assert await store.add(db, "zalo", "update-1", "7", 1, {"n": 1})  # another channel's
    assert await _recorded(empty_services) == 2


@pytest.mark.postgres_only  # SQLite plans each statement afresh
async def test_a_take_planned_on_an_empty_inbox_reads_only_the_users_rows(
    empty_services: Services,
) -> None:
    """A worker's connection keeps a generic plan of the take; made while the inbox was empty,
    it once walked the (channel, event key) constraint: every row of the channel per update."""
    db = empty_services.db
    taken = store._take_first().compile(dialect=postgresql.dialect())  # %(name)s placeholders
    names = {"p_channel": "$1", "p_user": "$2", "p_holder": "$3", "p_at": "$4"}
    sql = str(taken) % {**names, "body": "NULL", "param_1": "1"}
    async with db.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        await driver.execute("SET plan_cache_mode = force_generic_plan")
        await driver.execute(f"PREPARE take(varchar, varchar, varchar, timestamptz) AS {sql}")
        await driver.execute("EXECUTE take('telegram', '7', 'w1', now())")  # planned now
        async with db.statements() as other:
            rows = [
                {**_row(n), "user_id": str(n % 500), "received_at": store.now()}
                for n in range(3000)
            ]
            await other.execute(inbox.insert(), rows)
        plan = "\n".join(
            r[0] for r in await driver.fetch("EXPLAIN EXECUTE take('telegram', '7', 'w1', now())")
        )
        await driver.execute("DEALLOCATE take")
        await conn.execute(text("RESET plan_cache_mode"))
    assert "uq_inbox_event" not in plan
    assert "ix_inbox_user" in plan
