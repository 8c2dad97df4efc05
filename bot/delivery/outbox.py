"""The outbox: deliveries — a broadcast's recipients and notices — materialise, claim, record.

Every claim is a lease on its rows: state "sending" with next_try_at the lease's end, renewed
while the send lasts. Several workers share one broadcast's rows: each claims the next batch
with `SELECT … FOR UPDATE SKIP LOCKED` (PostgreSQL; SQLite has one writer, and SQLAlchemy
renders nothing there), so two claims never take the same row nor wait for each other; a row
whose lease lapsed (its worker was killed) is claimed again like a pending one. A notice (one
recipient, its own text and buttons, no broadcast) is claimed row by row the same way. Both are
recorded by `record`. Written in SQLAlchemy Core so the same statements run on SQLite and
PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    DateTime,
    String,
    and_,
    bindparam,
    case,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement, Select

from bot.core.conversation import Button, Reply
from bot.domain.clock import WALL
from bot.storage.db import Database, as_utc
from bot.storage.polls import communes_of, lives_in
from bot.storage.schema import broadcasts, deliveries, subscriptions, users
from bot.storage.subscriptions import TOPICS

DIGESTS = {"digest:daily": "daily", "digest:weekly": "weekly"}
OA_CHANNEL = "zalo_oa"
REMAINING = ("pending", "sending")
DONE = ("sent", "failed", "blocked")  # a send was tried to the end
_ERROR_CHARS = 500
# Lower goes first (BROADCAST is the column's default). Replies are not queued: the dispatcher
# sends them at once, ahead of everything.
NOTICE, REMINDER, BROADCAST = 0, 1, 2


def utcnow() -> datetime:
    """Now, in UTC, by the wall clock (leases and retries are real seconds): every time the
    outbox stores is UTC."""
    return WALL.utcnow()


@dataclass(frozen=True)
class Broadcast:
    id: int
    kind: str
    title: str
    text: str
    html: str | None
    photo: str | None
    buttons: list[list[list[str]]] | None  # rows of [id, label], for channels with buttons
    scope_level: str
    scope_code: str
    scope_village: str | None  # a village poll's: only that village of the commune
    topic: str
    locale: str | None
    paid: bool
    status: str
    send_at: datetime
    created_by: str
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class Delivery:
    id: int
    channel: str
    user_id: str
    attempts: int


@dataclass(frozen=True)
class Notice(Delivery):
    """A one-recipient delivery: a notice or a reminder, with its own text and buttons."""

    reply: Reply
    priority: int = NOTICE
    claimed: bool = False  # recorded already claimed by the process that will send it


@dataclass(frozen=True)
class Outcome:
    """What became of one claimed delivery; `pending` with next_try_at means "try again"."""

    delivery: Delivery
    state: str
    attempts: int
    message_id: str | None = None
    error: str | None = None
    next_try_at: datetime | None = None


def _broadcast(row: Any) -> Broadcast:
    """A broadcasts row as a Broadcast, its times in UTC."""
    values = dict(row._mapping)
    for name in ("send_at", "created_at", "finished_at"):
        values[name] = values[name] and as_utc(values[name])
    return Broadcast(**values)


async def get_broadcast(db: Database, broadcast_id: int) -> Broadcast | None:
    """One broadcast, or None."""
    async with db.read() as conn:
        row = (
            await conn.execute(select(broadcasts).where(broadcasts.c.id == broadcast_id))
        ).first()
    return None if row is None else _broadcast(row)


async def list_broadcasts(
    db: Database, limit: int = 20, scope_codes: Sequence[str] | None = None
) -> list[tuple[Broadcast, dict[str, int]]]:
    """The newest broadcasts (to these scopes, if given) with their delivery counts per state."""
    query = select(broadcasts).order_by(broadcasts.c.id.desc()).limit(limit)
    if scope_codes is not None:
        query = query.where(broadcasts.c.scope_code.in_(scope_codes))
    async with db.read() as conn:
        rows = (await conn.execute(query)).all()
        ids = [row.id for row in rows]
        counted = await conn.execute(
            select(deliveries.c.broadcast_id, deliveries.c.state, func.count())
            .where(deliveries.c.broadcast_id.in_(ids))
            .group_by(deliveries.c.broadcast_id, deliveries.c.state)
        )
        counts: dict[int, dict[str, int]] = {i: {} for i in ids}
        for broadcast_id, state, n in counted:
            counts[broadcast_id][state] = n
    return [(_broadcast(row), counts[row.id]) for row in rows]


def in_scope(level: str, code: str) -> ColumnElement[bool]:
    """Subscribers of a commune, or of every commune of a province."""
    if level == "province":
        return subscriptions.c.commune_code.in_(communes_of(code))
    return subscriptions.c.commune_code == code


def recipients(b: Broadcast, now: datetime, oa_window_days: int) -> Select[Any]:
    """Who gets a broadcast, as one SELECT of delivery rows (state pending, or skipped)."""
    s = subscriptions
    where: list[ColumnElement[bool]] = [s.c.active.is_(True)]
    if b.topic in DIGESTS:
        where += [
            s.c.digest == DIGESTS[b.topic],
            s.c.locale == b.locale,
            s.c.commune_code == b.scope_code,
        ]
    elif b.topic in TOPICS:
        where += [s.c[b.topic].is_(True), in_scope(b.scope_level, b.scope_code)]
        if b.locale is not None:  # a poll's notice is written once per language
            where.append(s.c.locale == b.locale)
        if b.scope_village is not None:
            where.append(lives_in(b.scope_code, b.scope_village))
    else:
        raise ValueError(f"broadcast {b.id} has an unknown topic {b.topic!r}")
    # Zalo OA may message a user only within a window after their last message.
    cutoff = now - timedelta(days=oa_window_days)
    outside = and_(
        s.c.channel == OA_CHANNEL,
        or_(users.c.last_seen_at.is_(None), users.c.last_seen_at < cutoff),
    )
    already = exists().where(
        deliveries.c.broadcast_id == b.id,
        deliveries.c.channel == s.c.channel,
        deliveries.c.user_id == s.c.user_id,
    )
    joined = s.outerjoin(
        users, and_(users.c.channel == s.c.channel, users.c.user_id == s.c.user_id)
    )
    return (
        select(
            literal(b.id).label("broadcast_id"),
            s.c.channel,
            s.c.user_id,
            case((outside, "skipped"), else_="pending").label("state"),
            literal(0).label("attempts"),
            case((outside, "outside the Zalo OA messaging window"), else_=None).label("last_error"),
            literal(now, DateTime(timezone=True)).label("updated_at"),
        )
        .select_from(joined)
        .where(*where, ~already)  # idempotent: a restart adds only who is missing
    )


_COLUMNS = ["broadcast_id", "channel", "user_id", "state", "attempts", "last_error", "updated_at"]


async def materialise(conn: AsyncConnection, b: Broadcast, now: datetime, oa_days: int) -> int:
    """Insert the broadcast's recipients in one set-based statement; how many were added."""
    result = await conn.execute(
        insert(deliveries).from_select(_COLUMNS, recipients(b, now, oa_days))
    )
    return result.rowcount or 0


async def start(db: Database, b: Broadcast, now: datetime, oa_days: int) -> int:
    """scheduled → sending and its deliveries materialised, in one transaction."""
    async with db.write() as conn:
        started = await conn.execute(
            update(broadcasts)
            .where(broadcasts.c.id == b.id, broadcasts.c.status == "scheduled")
            .values(status="sending")
        )
        if not started.rowcount:  # another worker started it (its rows are committed with it)
            return 0
        return await materialise(conn, b, now, oa_days)


async def reset_claims(db: Database, broadcast_id: int) -> int:
    """Rows a stopped or killed sender had claimed go back to pending, to be sent again at once
    (their next_try_at held the dead sender's lease: kept, they would wait it out)."""
    async with db.write() as conn:
        result = await conn.execute(
            update(deliveries)
            .where(deliveries.c.broadcast_id == broadcast_id, deliveries.c.state == "sending")
            .values(state="pending", next_try_at=None)
        )
    return result.rowcount or 0


async def claim(
    conn: AsyncConnection,
    broadcast_id: int,
    channels: Sequence[str],
    after_id: int,
    now: datetime,
    limit: int,
    lease_until: datetime,
) -> list[Delivery]:
    """The next due deliveries after `after_id` (keyset, id order) — pending, or claimed by a
    worker whose lease lapsed — marked sending until `lease_until`. Rows another worker is
    claiming at this moment are skipped, not waited for."""
    d = deliveries
    rows = (
        await conn.execute(
            select(d.c.id, d.c.channel, d.c.user_id, d.c.attempts)
            .where(
                d.c.broadcast_id == broadcast_id,
                d.c.state.in_(REMAINING),
                d.c.id > after_id,
                d.c.channel.in_(list(channels)),
                _due(now),
            )
            .order_by(d.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    if rows:
        ids = [row.id for row in rows]
        await conn.execute(
            update(d)
            .where(d.c.id.in_(ids))
            .values(state="sending", next_try_at=lease_until, updated_at=now)
        )
    return [Delivery(row.id, row.channel, row.user_id, row.attempts) for row in rows]


async def renew(conn: AsyncConnection, ids: Sequence[int], lease_until: datetime) -> None:
    """Extend the lease of deliveries (notices or a broadcast's) this worker is still sending."""
    d = deliveries
    await conn.execute(
        update(d)
        .where(d.c.id.in_(list(ids)), d.c.state == "sending")
        .values(next_try_at=lease_until)
    )


_VALUES: dict[str, Any] = {
    name: bindparam(name) for name in ("state", "attempts", "last_error", "next_try_at")
} | {
    "message_id": bindparam("message_id", type_=String),
    "updated_at": bindparam("now"),
}
# Results are final whatever the row says now: a message Telegram took was sent.
_RECORD_FINAL = update(deliveries).where(deliveries.c.id == bindparam("d_id")).values(_VALUES)
# "Try again" and "not sent" lose to a cancel that came in meanwhile.
_RECORD_UNSENT = (
    update(deliveries)
    .where(deliveries.c.id == bindparam("d_id"), deliveries.c.state == "sending")
    .values(_VALUES)
)
_BLOCK = (
    update(subscriptions)
    .where(
        subscriptions.c.channel == bindparam("s_channel"),
        subscriptions.c.user_id == bindparam("s_user"),
    )
    .values(active=False, blocked_at=bindparam("now"), updated_at=bindparam("now"))
)


async def record(conn: AsyncConnection, outcomes: Sequence[Outcome], now: datetime) -> None:
    """Write a batch of results (executemany); a block also unsubscribes the person."""
    final: list[dict[str, Any]] = []
    unsent: list[dict[str, Any]] = []
    for o in outcomes:
        params = {
            "d_id": o.delivery.id,
            "state": o.state,
            "attempts": o.attempts,
            "last_error": o.error[:_ERROR_CHARS] if o.error else None,
            "message_id": o.message_id,
            "next_try_at": o.next_try_at,
            "now": now,
        }
        (final if o.state in DONE else unsent).append(params)
    blocked = [
        {"s_channel": o.delivery.channel, "s_user": o.delivery.user_id, "now": now}
        for o in outcomes
        if o.state == "blocked"
    ]
    if final:
        await conn.execute(_RECORD_FINAL, final)
    if unsent:
        await conn.execute(_RECORD_UNSENT, unsent)
    if blocked:
        await conn.execute(_BLOCK, blocked)


async def next_retry_at(
    db: Database, broadcast_id: int, channels: Sequence[str]
) -> datetime | None:
    """When the earliest pending delivery on these channels is due, or None if none is left."""
    d = deliveries
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(func.count(), func.min(d.c.next_try_at)).where(
                    d.c.broadcast_id == broadcast_id,
                    d.c.state == "pending",
                    d.c.channel.in_(list(channels)),
                )
            )
        ).one()
    if not row[0]:
        return None
    return as_utc(row[1]) if row[1] is not None else utcnow()


async def finish(db: Database, broadcast_id: int, now: datetime) -> str | None:
    """sending → done when no delivery on any channel remains; the status it ends with."""
    d, b = deliveries, broadcasts
    async with db.write() as conn:
        left = exists().where(d.c.broadcast_id == broadcast_id, d.c.state.in_(REMAINING))
        if not (await conn.execute(select(left))).scalar():
            await conn.execute(
                update(b)
                .where(b.c.id == broadcast_id, b.c.status == "sending")
                .values(status="done", finished_at=now)
            )
        return (await conn.execute(select(b.c.status).where(b.c.id == broadcast_id))).scalar()


async def cancel(db: Database, broadcast_id: int, now: datetime) -> int | None:
    """Stop a broadcast: what is not sent yet becomes cancelled. None if it was over already."""
    async with db.write() as conn:
        changed = await conn.execute(
            update(broadcasts)
            .where(
                broadcasts.c.id == broadcast_id, broadcasts.c.status.in_(("scheduled", "sending"))
            )
            .values(status="cancelled", finished_at=now)
        )
        if not changed.rowcount:
            return None
        result = await conn.execute(
            update(deliveries)
            .where(deliveries.c.broadcast_id == broadcast_id, deliveries.c.state.in_(REMAINING))
            .values(state="cancelled", updated_at=now)
        )
    return result.rowcount or 0


async def status_of(db: Database, broadcast_id: int) -> str | None:
    """The broadcast's status, read fresh."""
    async with db.read() as conn:
        return (
            await conn.execute(select(broadcasts.c.status).where(broadcasts.c.id == broadcast_id))
        ).scalar()


async def due_broadcasts(db: Database, now: datetime, channels: Sequence[str]) -> list[int]:
    """Scheduled broadcasts whose time has come, and started ones with work on these channels."""
    d, b = deliveries, broadcasts
    ours = exists().where(
        d.c.broadcast_id == b.c.id, d.c.state.in_(REMAINING), d.c.channel.in_(list(channels))
    )
    # A sender killed after its last result but before `finish` leaves nothing to send.
    unfinished = ~exists().where(d.c.broadcast_id == b.c.id, d.c.state.in_(REMAINING))
    query = (
        select(b.c.id)
        .where(
            or_(
                and_(b.c.status == "scheduled", b.c.send_at <= now),
                and_(b.c.status == "sending", or_(ours, unfinished)),
            )
        )
        .order_by(b.c.send_at, b.c.id)
    )
    async with db.read() as conn:
        return list((await conn.execute(query)).scalars())


# --- notices: one recipient each, claimed row by row -------------------------------------------

Reach = Mapping[str, str | None]  # channel → the one user this process reaches on it, or None


def _notices(reach: Reach) -> list[ColumnElement[bool]]:
    """Notice rows on the channels (and for the users) a process reaches."""
    d = deliveries
    everyone = [channel for channel, only in reach.items() if only is None]
    one = [and_(d.c.channel == c, d.c.user_id == u) for c, u in reach.items() if u is not None]
    return [d.c.broadcast_id.is_(None), or_(d.c.channel.in_(everyone), *one)]


def _due(now: datetime) -> ColumnElement[bool]:
    """A pending row not waiting for a retry."""
    return or_(deliveries.c.next_try_at.is_(None), deliveries.c.next_try_at <= now)


def _lapsed(now: datetime) -> ColumnElement[bool]:
    """A notice claimed by a sender that has not recorded it within its lease."""
    return and_(deliveries.c.state == "sending", deliveries.c.next_try_at <= now)


async def add_notice(
    conn: AsyncConnection,
    channel: str,
    user_id: str,
    reply: Reply,
    priority: int,
    now: datetime,
    claim_until: datetime | None = None,
) -> Notice:
    """A notice inside the caller's transaction: pending, or already claimed until
    `claim_until` by the process that records it (and will send it: no claim of its own)."""
    result = await conn.execute(
        _ADD_NOTICE,
        {
            "channel": channel,
            "user_id": user_id,
            "priority": priority,
            "text": reply.text,
            "buttons": [[[b.id, b.label] for b in row] for row in reply.buttons],
            "state": "pending" if claim_until is None else "sending",
            "now": now,
            "until": claim_until,
        },
    )
    claimed = claim_until is not None
    return Notice(result.scalar_one(), channel, user_id, 0, reply, priority, claimed)


# Built once: a notice is recorded with every official's answer.
_ADD_NOTICE = (
    insert(deliveries)
    .values(
        channel=bindparam("channel"),
        user_id=bindparam("user_id"),
        priority=bindparam("priority"),
        text=bindparam("text"),
        buttons=bindparam("buttons", type_=deliveries.c.buttons.type),
        state=bindparam("state"),
        attempts=0,
        updated_at=bindparam("now"),
        next_try_at=bindparam("until"),
    )
    .returning(deliveries.c.id)
)


async def notices_due(conn: AsyncConnection, reach: Reach, now: datetime) -> bool:
    """Whether a notice this process reaches is due, or its claim has lapsed."""
    d = deliveries
    # Two lookups on (state): sent notices, however many, are never read.
    pending = exists().where(*_notices(reach), d.c.state == "pending", _due(now))
    lapsed = exists().where(*_notices(reach), _lapsed(now))
    return bool((await conn.execute(select(or_(pending, lapsed)))).scalar())


async def release_lapsed(conn: AsyncConnection, reach: Reach, now: datetime) -> int:
    """Notices claimed by a sender that has not recorded them within its lease (it was killed)
    go back to pending, to be sent again."""
    d = deliveries
    result = await conn.execute(
        update(d).where(*_notices(reach), _lapsed(now)).values(state="pending", next_try_at=None)
    )
    return result.rowcount or 0


async def claim_notices(
    conn: AsyncConnection, reach: Reach, now: datetime, lease_until: datetime, limit: int
) -> list[Notice]:
    """The first due notices by priority, then age, marked sending until `lease_until`."""
    d = deliveries
    # Locked first, updated by id: PostgreSQL may run an IN (… SKIP LOCKED) subquery more than
    # once within the UPDATE, each time past the rows it has just locked, claiming more than
    # `limit`. The state is checked again by the UPDATE: of two senders, only one claims a row.
    first = (
        select(d.c.id)
        .where(*_notices(reach), d.c.state == "pending", _due(now))
        .order_by(d.c.priority, d.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list((await conn.execute(first)).scalars())
    if not ids:
        return []
    rows = (
        await conn.execute(
            update(d)
            .where(d.c.id.in_(ids), d.c.state == "pending")
            .values(state="sending", next_try_at=lease_until, updated_at=now)
            .returning(
                d.c.id, d.c.channel, d.c.user_id, d.c.attempts, d.c.text, d.c.buttons, d.c.priority
            )
        )
    ).all()
    notices = [
        Notice(
            row.id,
            row.channel,
            row.user_id,
            row.attempts,
            Reply(row.text, [[Button(i, label) for i, label in r] for r in row.buttons or []]),
            row.priority,
        )
        for row in rows
    ]
    return sorted(notices, key=lambda n: (n.priority, n.id))  # RETURNING keeps no order
