"""Messages to a person who did not just write: recorded first, then sent by their channel.

A notice is written in the same transaction as the change it reports, so it is never lost;
`flush` sends what is pending on the channels this process runs, and the rest waits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import and_, bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from bot.core import Button, Reply
from bot.storage.db import Database
from bot.storage.schema import notifications

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5
SCAN_SECONDS = 60.0  # a kick reads all pending notices at most this often
Sender = Callable[[str, list[Reply]], Awaitable[None]]  # (user id, replies)


class Undeliverable(Exception):
    """The person cannot be reached on that channel (they blocked the bot): do not retry."""


_ENQUEUE = insert(notifications)  # built once, as the statements below
_MARK = (
    update(notifications)
    .where(notifications.c.id == bindparam("n_id"))
    .values(
        sent_at=bindparam("sent_at"),
        attempts=bindparam("attempts"),
        last_error=bindparam("last_error"),
    )
)


@dataclass(frozen=True)
class Notice:
    """A recorded notice, as the notifier sends it."""

    id: int
    channel: str
    user_id: str
    reply: Reply
    attempts: int = 0


async def enqueue(conn: AsyncConnection, channel: str, user_id: str, reply: Reply) -> Notice:
    """Record a notice inside the caller's transaction; hand it to `Notifier.kick` once that
    transaction has committed."""
    result = await conn.execute(
        _ENQUEUE,
        {
            "channel": channel,
            "user_id": user_id,
            "text": reply.text,
            "buttons": [[[b.id, b.label] for b in row] for row in reply.buttons],
            "created_at": datetime.now(UTC),
            "attempts": 0,
        },
    )
    key = result.inserted_primary_key
    assert key is not None
    return Notice(int(key[0]), channel, user_id, reply)


class Notifier:
    """Sends recorded notices on the channels this process runs.

    `kick(notice)` sends a notice just recorded, in the background, without reading it back;
    `flush()` reads every pending notice (older ones, failed ones, those another process
    recorded) — at a kick at most every SCAN_SECONDS, and whenever a caller asks.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._senders: dict[str, Sender] = {}
        self._only: dict[str, str] = {}  # channel → the one user this process can reach on it
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._again = False
        self._known: dict[int, Notice] = {}  # kicked, not yet sent
        self._next_scan = 0.0  # monotonic time of the next full read at a kick

    def register(self, channel: str, sender: Sender, only_user: str | None = None) -> None:
        """A channel this process can send on; with `only_user`, to that one person only (the
        terminal has one person at its keyboard): others' notices wait, untried, for a process
        that reaches them."""
        self._senders[channel] = sender
        if only_user is None:
            self._only.pop(channel, None)
        else:
            self._only[channel] = only_user

    def _reaches(self, notice: Notice) -> bool:
        return (
            notice.channel in self._senders
            and self._only.get(notice.channel, notice.user_id) == notice.user_id
        )

    async def flush(self, limit: int = 100) -> int:
        """Send pending notices on the registered channels; returns how many were sent."""
        if not self._senders:
            return 0
        async with self._lock:
            self._next_scan = time.monotonic() + SCAN_SECONDS
            channel, user_id = notifications.c.channel, notifications.c.user_id
            reach: list[ColumnElement[bool]] = [
                channel.in_([c for c in self._senders if c not in self._only])
            ]
            reach += [and_(channel == c, user_id == u) for c, u in self._only.items()]
            async with self._db.read() as conn:
                rows = (
                    await conn.execute(
                        select(notifications)
                        .where(
                            notifications.c.sent_at.is_(None),
                            or_(*reach),
                            notifications.c.attempts < MAX_ATTEMPTS,
                        )
                        .order_by(notifications.c.id)
                        .limit(limit)
                    )
                ).all()
            notices = [
                Notice(
                    row.id,
                    row.channel,
                    row.user_id,
                    Reply(row.text, [[Button(i, label) for i, label in r] for r in row.buttons]),
                    row.attempts,
                )
                for row in rows
            ]
            for notice in notices:
                self._known.pop(notice.id, None)  # sent here, not again from the kick
            return await self._send(notices)

    async def _send(self, notices: list[Notice]) -> int:
        """Send each notice and record the outcome, one at a time (under the lock)."""
        sent = 0
        for notice in notices:
            values: dict[str, object] = {"n_id": notice.id, "sent_at": None, "last_error": None}
            try:
                await self._senders[notice.channel](notice.user_id, [notice.reply])
                values |= {"sent_at": datetime.now(UTC), "attempts": notice.attempts + 1}
                sent += 1
            except Undeliverable as error:
                values |= {"attempts": MAX_ATTEMPTS, "last_error": str(error)[:500]}
            except Exception as error:  # a failed send is retried by a later flush
                log.warning(
                    "notice %s to %s:%s failed: %s",
                    notice.id,
                    notice.channel,
                    notice.user_id,
                    error,
                )
                values |= {"attempts": notice.attempts + 1, "last_error": str(error)[:500]}
            # One row at a time: a crash repeats at most the notice being sent.
            async with self._db.write() as conn:
                await conn.execute(_MARK, values)
        return sent

    def kick(self, *notices: Notice) -> None:
        """Send these just-recorded notices soon, in the background: the official who caused
        them gets their answer first. Kicks during a flush make one more flush, not one each."""
        for notice in notices:
            if self._reaches(notice):
                self._known[notice.id] = notice
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._flush_until_quiet())
        else:
            self._again = True

    async def _flush_until_quiet(self) -> None:
        while True:
            self._again = False
            try:
                if time.monotonic() >= self._next_scan:
                    await self.flush()  # everything pending, the kicked notices included
                async with self._lock:
                    known, self._known = list(self._known.values()), {}
                    await self._send(known)
            except Exception:  # the database may be busy; pending notices wait for a flush
                log.exception("sending notices failed")
            if not self._again:
                return

    async def settled(self) -> None:
        """Wait until the notices kicked so far have been sent (tests, shutdown)."""
        while self._task is not None and not self._task.done():
            await asyncio.wait({self._task})
