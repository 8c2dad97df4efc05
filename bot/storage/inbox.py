"""The inbox's statements: updates recorded once, a user's turn taken and given back.

Times are the wall clock's (`WALL`): a lease is real seconds, whatever a test sets the
services' clock to. Every statement runs on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import bindparam, delete, exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.domain.clock import WALL
from bot.storage.db import Database, as_utc, insert_or
from bot.storage.events import KEEP, _key
from bot.storage.schema import inbox, inbox_turns


class Pending(NamedTuple):
    id: int
    body: dict[str, Any]


def now() -> datetime:
    return WALL.utcnow()


async def add(
    db: Database, channel: str, event_key: str, user_id: str, seq: int, body: dict[str, Any]
) -> bool:
    """Record an update; False when it was recorded before (a replay)."""
    try:
        async with db.statements() as conn:
            await conn.execute(
                inbox.insert().values(
                    channel=channel,
                    event_key=_key(event_key),
                    user_id=user_id,
                    seq=seq,
                    body=body,
                    received_at=now(),
                )
            )
    except IntegrityError:
        return False
    return True


class Claim(enum.Enum):
    TAKEN = "taken"  # the turn is ours; another worker may have answered the user since ours
    RESUMED = "resumed"  # ours again, and nobody else held it since: what we kept still holds
    HELD = "held"  # another worker holds it, between two updates: it will see ours
    BUSY = "busy"  # another worker is inside a transaction on the turn: look again shortly


async def claim(db: Database, channel: str, user_id: str, holder: str, lease: float) -> Claim:
    """Take the user's turn when nobody holds it or the holder's lease has lapsed.

    The turn's row is read `FOR UPDATE SKIP LOCKED` (PostgreSQL; SQLite's one writer needs no
    lock), so a worker never waits on another's lock with a pooled connection: a row locked is
    BUSY, and the caller looks again after a moment. A row held and not locked is HELD: its
    holder is between two updates and its next look sees the update recorded before this.
    """
    at = now()
    until = at + timedelta(seconds=lease)
    key = (inbox_turns.c.channel == channel, inbox_turns.c.user_id == user_id)
    mine = select(inbox_turns.c.holder, inbox_turns.c.lease_until).where(*key)
    if not db.is_sqlite:
        # Most often the turn is held, its holder between two updates: one statement, outside
        # a transaction, says so. A row it skips (locked) is looked at again below.
        async with db.statements() as conn:
            row = (await conn.execute(mine.with_for_update(skip_locked=True))).first()
        if row is not None and _held(row, at):
            return Claim.HELD
    async with db.write() as conn:
        row = (await conn.execute(mine.with_for_update(skip_locked=True))).first()
        if row is None:
            new = insert_or(conn, inbox_turns).values(
                channel=channel, user_id=user_id, holder=holder, lease_until=until
            )
            made = await conn.execute(new.on_conflict_do_nothing().returning(inbox_turns.c.holder))
            return Claim.TAKEN if made.first() is not None else Claim.BUSY
        if _held(row, at):
            return Claim.HELD
        await conn.execute(update(inbox_turns).where(*key).values(holder=holder, lease_until=until))
    # A turn given back keeps its holder's name (lease NULL): the next to take it knows whether
    # anyone else had it in between.
    return Claim.RESUMED if row.holder == holder else Claim.TAKEN


def _held(row: Any, at: datetime) -> bool:
    """Whether the turn's row is held by a lease that has not lapsed at `at`."""
    return row.lease_until is not None and as_utc(row.lease_until) >= at


class Next(NamedTuple):
    """What `take_next` found: the update to answer now, or none and then whether updates
    came while the turn was being given back (`again`: try to take it once more)."""

    row: Pending | None
    again: bool = False


_FIRST = (
    select(inbox.c.id, inbox.c.body)
    .where(
        inbox.c.channel == bindparam("p_channel"),
        inbox.c.user_id == bindparam("p_user"),
        inbox.c.taken_at.is_(None),
    )
    .order_by(inbox.c.seq, inbox.c.id)
    .limit(1)
)
# The turn is the holder's (not given back, not taken over after its lease lapsed).
_HELD_BY = (
    inbox_turns.c.channel == bindparam("p_channel"),
    inbox_turns.c.user_id == bindparam("p_user"),
    inbox_turns.c.holder == bindparam("p_holder"),
    inbox_turns.c.lease_until.is_not(None),
)
_OURS = exists().where(*_HELD_BY)
_PENDING = exists().where(
    inbox.c.channel == inbox_turns.c.channel,
    inbox.c.user_id == inbox_turns.c.user_id,
    inbox.c.taken_at.is_(None),
)


def _take_first() -> Any:
    """PostgreSQL: the user's first pending update marked taken (its body cleared) and
    returned, in one statement, while the turn is the holder's. `taken_at IS NULL` is checked
    again on the row itself, so a holder whose lease lapsed and its successor never both
    take it."""
    first = _FIRST.subquery("first")
    return (
        update(inbox)
        .where(inbox.c.id == first.c.id, inbox.c.taken_at.is_(None), _OURS)
        .values(taken_at=bindparam("p_at"), body=None)
        .returning(first.c.id, first.c.body)
    )


_TAKE_FIRST = _take_first()
_MARK_TAKEN = (
    update(inbox)
    .where(inbox.c.id == bindparam("p_row"), inbox.c.taken_at.is_(None))
    .values(taken_at=bindparam("p_at"), body=None)
)
_RENEW = update(inbox_turns).where(*_HELD_BY).values(lease_until=bindparam("p_until"))
_RELEASE = update(inbox_turns).where(*_HELD_BY).values(lease_until=None)
# The turn given back only when nothing waits: an update recorded before this statement began
# is seen by it (the turn stays ours), one recorded after it finds the turn's row locked by it
# (BUSY) and takes the turn once it is given back.
_GIVE_BACK = _RELEASE.where(~_PENDING).returning(inbox_turns.c.holder)


async def take_next(
    db: Database, channel: str, user_id: str, holder: str, lease: float, renew: bool = True
) -> Next:
    """While the turn is `holder`'s: the user's first update not taken yet, marked taken
    before it is answered (a crash mid-way loses it rather than answering it twice); or, with
    none left, the turn given back. The lease is renewed when `renew` (the holder renews it
    once a quarter of it is gone: Inbox.drain).

    PostgreSQL takes an update in one statement (SQLite, which has one writer, in two, in one
    transaction) and gives the turn back in one, only if nothing waits (see _GIVE_BACK): no
    update is left behind, and none answered twice. Each of these statements is safe alone,
    so on PostgreSQL they run outside a transaction (`Database.statements`): an update taken
    costs one round trip, not three.
    """
    at = now()
    params = {"p_channel": channel, "p_user": user_id, "p_holder": holder, "p_at": at}
    async with db.statements() as conn:
        if renew:
            renewed = await conn.execute(
                _RENEW, params | {"p_until": at + timedelta(seconds=lease)}
            )
            if not renewed.rowcount:
                return Next(None)  # the lease lapsed and another worker took the turn
        for _ in range(3):  # an update recorded between the two statements: taken next time
            row = await _take(conn, params)
            if row is not None:
                return Next(row)
            if (await conn.execute(_GIVE_BACK, params)).first() is not None:
                return Next(None)
            if not (await conn.execute(select(_OURS), params)).scalar():
                return Next(None)  # the lease lapsed and another worker took the turn
    return Next(None, again=True)


async def _take(conn: AsyncConnection, params: dict[str, Any]) -> Pending | None:
    if conn.dialect.name == "postgresql":
        row = (await conn.execute(_TAKE_FIRST, params)).first()
        return Pending(row.id, row.body) if row is not None else None
    if not (await conn.execute(select(_OURS), params)).scalar():
        return None
    row = (await conn.execute(_FIRST, params)).first()
    if row is None:
        return None
    await conn.execute(_MARK_TAKEN, params | {"p_row": row.id})
    return Pending(row.id, row.body)


async def release(db: Database, channel: str, user_id: str, holder: str) -> None:
    """Give the turn back (a drain that ended with an error or was cancelled)."""
    async with db.write() as conn:
        await conn.execute(_RELEASE, {"p_channel": channel, "p_user": user_id, "p_holder": holder})


async def stranded(db: Database, older_than: float) -> list[tuple[str, str]]:
    """Users with updates waiting longer than `older_than` seconds and nobody holding their
    turn (its holder crashed, or gave it back in the instant a new one arrived)."""
    at = now()
    turn = inbox_turns
    held = exists().where(
        turn.c.channel == inbox.c.channel,
        turn.c.user_id == inbox.c.user_id,
        turn.c.lease_until >= at,
    )
    query = (
        select(inbox.c.channel, inbox.c.user_id)
        .where(
            inbox.c.taken_at.is_(None),
            inbox.c.received_at < at - timedelta(seconds=older_than),
            ~held,
        )
        .distinct()
    )
    async with db.read() as conn:
        return [(row.channel, row.user_id) for row in await conn.execute(query)]


async def prune(db: Database, keep: timedelta = KEEP) -> int:
    """Forget updates received over `keep` ago (no replay comes that late), and turns given
    back; returns how many updates went."""
    async with db.write() as conn:
        gone = await conn.execute(delete(inbox).where(inbox.c.received_at < now() - keep))
        await conn.execute(delete(inbox_turns).where(inbox_turns.c.lease_until.is_(None)))
    return gone.rowcount or 0
