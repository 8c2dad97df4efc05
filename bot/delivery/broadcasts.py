"""Creating broadcasts (audited) and sizing their audience; the sender delivers them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.delivery.outbox import in_scope
from bot.storage.contributions import audit
from bot.storage.db import Database, as_utc
from bot.storage.schema import broadcasts, subscriptions


async def audience(db: Database, level: str, code: str, topic: str) -> int:
    """How many subscribers an announcement to this scope would reach now."""
    async with db.read() as conn:
        return int(
            (
                await conn.execute(
                    select(func.count()).where(
                        and_(subscriptions.c.active, subscriptions.c[topic], in_scope(level, code))
                    )
                )
            ).scalar_one()
        )


async def create(db: Database, actor: str, **values: Any) -> int:
    """A scheduled broadcast, audited; the sender picks it up at send_at."""
    async with db.write() as conn:
        return await add(conn, actor, db.clock.utcnow(), **values)


async def add(conn: AsyncConnection, actor: str, now: datetime, **values: Any) -> int:
    """The same inside the caller's transaction: with the change it announces (a poll closed),
    so that what is announced once is announced exactly once."""
    row: dict[str, Any] = {
        "paid": False,
        "status": "scheduled",
        "created_by": actor,
        "created_at": now,
        "html": None,
        "photo": None,
        "buttons": None,
        "scope_village": None,
        "locale": None,
    } | values
    row["send_at"] = as_utc(row["send_at"])  # stored in UTC: SQLite keeps no zone
    broadcast_id = int(
        (
            await conn.execute(insert(broadcasts).values(**row).returning(broadcasts.c.id))
        ).scalar_one()
    )
    await audit(
        conn,
        actor,
        f"broadcast.{row['kind']}",
        "broadcast",
        broadcast_id,
        None,
        {
            k: (v.isoformat() if isinstance(v, datetime) else v)
            for k, v in row.items()
            if k not in ("text", "html", "buttons")
        }
        | {"text": row["text"][:500]},
        now,
    )
    return broadcast_id
