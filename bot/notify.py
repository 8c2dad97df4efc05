"""Messages to a person who did not just write: recorded first, then sent by their channel.

A notice is written in the same transaction as the change it reports, so it is never lost;
`flush` sends what is pending on the channels this process runs, and the rest waits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.core import Button, Reply
from bot.storage.db import Database
from bot.storage.schema import notifications

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5
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


async def enqueue(conn: AsyncConnection, channel: str, user_id: str, reply: Reply) -> None:
    """Record a notice inside the caller's transaction."""
    await conn.execute(
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


class Notifier:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._senders: dict[str, Sender] = {}
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def register(self, channel: str, sender: Sender) -> None:
        """A channel this process can send on."""
        self._senders[channel] = sender

    async def flush(self, limit: int = 100) -> int:
        """Send pending notices on the registered channels; returns how many were sent."""
        if not self._senders:
            return 0
        sent = 0
        async with self._lock:
            async with self._db.read() as conn:
                rows = (
                    await conn.execute(
                        select(notifications)
                        .where(
                            notifications.c.sent_at.is_(None),
                            notifications.c.channel.in_(list(self._senders)),
                            notifications.c.attempts < MAX_ATTEMPTS,
                        )
                        .order_by(notifications.c.id)
                        .limit(limit)
                    )
                ).all()
            for row in rows:
                reply = Reply(row.text, [[Button(i, label) for i, label in r] for r in row.buttons])
                values: dict[str, object] = {"n_id": row.id, "sent_at": None, "last_error": None}
                try:
                    await self._senders[row.channel](row.user_id, [reply])
                    values |= {"sent_at": datetime.now(UTC), "attempts": row.attempts + 1}
                    sent += 1
                except Undeliverable as error:
                    values |= {"attempts": MAX_ATTEMPTS, "last_error": str(error)[:500]}
                except Exception as error:  # a failed send is retried on a later flush
                    log.warning(
                        "notice %s to %s:%s failed: %s", row.id, row.channel, row.user_id, error
                    )
                    values |= {"attempts": row.attempts + 1, "last_error": str(error)[:500]}
                # One row at a time: a crash repeats at most the notice being sent.
                async with self._db.write() as conn:
                    await conn.execute(_MARK, values)
        return sent

    def kick(self) -> None:
        """Send pending notices soon, in the background: the official who caused them gets
        their answer first. Kicks during a flush make one more flush, not one each."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._flush_until_quiet())
        else:
            self._again = True

    async def _flush_until_quiet(self) -> None:
        while True:
            self._again = False
            try:
                await self.flush()
            except Exception:  # the database may be busy; the notices wait for the next kick
                log.exception("sending notices failed")
            if not self._again:
                return

    async def settled(self) -> None:
        """Wait until the notices kicked so far have been sent (tests, shutdown)."""
        while self._task is not None and not self._task.done():
            await asyncio.wait({self._task})
