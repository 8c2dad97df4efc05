"""Notices: messages to one person who did not just write — a contribution confirmed, rejected
or done, a pledge reminder — as one-recipient deliveries of the outbox (bot/broadcast/).

A notice is a `deliveries` row written in the same transaction as the change it reports, so it
is never lost. The `Notifier` is the notice lane of the sender: it claims due notices (by
priority, then age) on the channels this process registered, marks them sending under a lease,
sends them the way the channel sends a reply, and records each outcome as a broadcast's are
recorded. `kick()` starts it at once (the villager hears right after the official's answer);
`run()`, beside every bot, looks every second for notices any other process recorded, and for
claims a killed sender left: they lapse after LEASE_SECONDS and are sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from bot.core.conversation import Reply
from bot.delivery import outbox
from bot.delivery.outbox import NOTICE, REMINDER, Notice, Outcome, utcnow
from bot.delivery.sender import LEASE_SECONDS, backoff
from bot.delivery.transport import Blocked, Permanent, RetryLater
from bot.storage.db import Database

__all__ = ["NOTICE", "REMINDER", "Notice", "Notifier", "Undeliverable", "enqueue"]

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5
POLL_SECONDS = 1.0  # how often `run` looks for notices recorded elsewhere
IN_FLIGHT = 16  # notices sent and not yet recorded: the duplicate bound after a kill
RECORD_LINGER = 0.05  # seconds an outcome may wait to be recorded with others
Send = Callable[[str, list[Reply]], Awaitable[None]]  # (user id, replies)


class Undeliverable(Blocked):
    """The person cannot be reached on that channel (they blocked the bot): do not retry."""


async def enqueue(
    conn: AsyncConnection,
    channel: str,
    user_id: str,
    reply: Reply,
    priority: int = NOTICE,
    claim_until: datetime | None = None,
) -> Notice:
    """Record a notice inside the caller's transaction; `Notifier.kick(notice)` once that
    transaction has committed sends it at once. With `claim_until` (`Notifier.claim_until`)
    it is recorded claimed by this process, which saves the claim's own write: a killed process
    leaves it to lapse and be sent by another, as with any claim."""
    return await outbox.add_notice(conn, channel, user_id, reply, priority, utcnow(), claim_until)


class Notifier:
    """Sends due notices on the channels this process registered, a window at a time."""

    def __init__(
        self,
        db: Database,
        *,
        in_flight: int = IN_FLIGHT,
        lease_seconds: float = LEASE_SECONDS,
        max_attempts: int = MAX_ATTEMPTS,
        backoff_base: float = 1.0,
    ) -> None:
        self._db = db
        self.in_flight = in_flight
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self._senders: dict[str, Send] = {}
        self._reach: dict[str, str | None] = {}  # channel → the one user it reaches, or None
        self._lock = asyncio.Lock()  # one drain at a time in this process
        self._task: asyncio.Task[None] | None = None
        self._look = True  # notices may be pending in the database (the first drain looks)
        self._release = True  # the first drain, every poll and every flush give back lapsed claims
        self._claimed: list[Notice] = []  # recorded claimed by this process, to send first
        self._wake: asyncio.Future[None] | None = None  # a drain waiting on its sends
        self._halt = False  # a stop: claim nothing more, finish what is in flight

    def register(self, channel: str, sender: Send, only_user: str | None = None) -> None:
        """A channel this process can send on; with `only_user`, to that one person only (the
        terminal has one person at its keyboard): others' notices wait, untried, for a process
        that reaches them."""
        self._senders[channel] = sender
        self._reach[channel] = only_user

    def claim_until(self, channel: str, user_id: str) -> datetime | None:
        """The lease for a notice this process will send itself, or None if it cannot reach
        the person (another process will find it pending)."""
        if channel not in self._senders or self._reach.get(channel) not in (None, user_id):
            return None
        return utcnow() + timedelta(seconds=self.lease_seconds)

    def kick(self, *recorded: Notice) -> None:
        """Send what is due soon, in the background (the official who caused a notice gets
        their answer first). Notices recorded claimed (their transaction has committed) are
        sent by the running drain, or a new one, with no look into the database; a kick with
        anything else, or none, makes the drain look for pending notices."""
        claimed = [n for n in recorded if n.claimed]
        self._claimed.extend(claimed)
        if len(claimed) < len(recorded) or not recorded:
            self._look = True
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain_until_quiet(), name="notices")

    async def flush(self) -> int:
        """Send what is due now (lapsed claims included); how many were sent."""
        self._release = self._look = True
        return await self._drain()

    async def settled(self) -> None:
        """Wait until what was kicked so far has been sent (tests, shutdown)."""
        while self._task is not None and not self._task.done():
            await asyncio.wait({self._task})

    async def run(self, stop: asyncio.Event, poll: float = POLL_SECONDS) -> None:
        """Beside a bot: send due notices, whichever process recorded them, until `stop`;
        then finish the ones in flight and leave the rest for the next start."""
        self._halt = False
        try:
            while not stop.is_set():
                self._release = True  # the poll also gives back lapsed claims
                self.kick()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), poll)
        finally:
            self._halt = True
            await self.settled()
            self._halt = False

    async def _drain_until_quiet(self) -> None:
        while self._look or self._claimed:
            try:
                await self._drain()
            except Exception:  # the database may be busy; the rows wait for the next look
                log.exception("sending notices failed")
                return
            if self._halt:
                return

    async def _drain(self) -> int:
        """Send, and record, until nothing is due (or a stop); how many were sent.

        At most `in_flight` notices of this process are sent and not yet recorded at any time
        (the duplicates a kill can cause). Outcomes are recorded a batch at a time — when half
        a window has finished or the oldest has waited RECORD_LINGER, so that the notices of
        officials answering at once share a transaction — together with the next claims: each
        write holds SQLite's one writer while other villagers' saves wait. Leases are renewed
        while sends last.
        """
        if not self._senders:
            self._look = False  # nothing this process could send
            return 0
        async with self._lock:
            reach = dict(self._reach)
            look, self._look = self._look, False
            release, self._release = self._release, False
            if look or release:
                async with self._db.read() as conn:
                    look = await outbox.notices_due(conn, reach, utcnow())
            if not look and not self._claimed:
                return 0  # the usual answer to a poll: one indexed read
            sent = 0
            sending: dict[asyncio.Task[Outcome], Notice] = {}
            done: list[Outcome] = []
            oldest = 0.0  # when the oldest unrecorded outcome came in
            renew_every = self.lease_seconds / 3
            renewed = time.monotonic()
            loop = asyncio.get_running_loop()
            try:
                while True:
                    room = 0 if self._halt else self.in_flight - len(sending) - len(done)
                    while room > 0 and self._claimed:  # claimed when they were recorded
                        notice = self._claimed.pop(0)
                        sending[asyncio.create_task(self._deliver(notice))] = notice
                        room -= 1
                    if self._look:
                        look, self._look = True, False
                    claim = look and room > 0
                    renew = bool(sending) and time.monotonic() - renewed >= renew_every
                    record = bool(done) and (
                        self._halt
                        or len(done) * 2 >= self.in_flight
                        or time.monotonic() - oldest >= RECORD_LINGER
                    )
                    claimed: list[Notice] = []
                    if record or claim or renew:
                        now = utcnow()
                        lease = now + timedelta(seconds=self.lease_seconds)
                        async with self._db.write() as conn:
                            if done:
                                await outbox.record(conn, done, now)
                            if renew:
                                await outbox.renew(conn, [n.id for n in sending.values()], lease)
                            if claim:
                                if release:
                                    await outbox.release_lapsed(conn, reach, now)
                                    release = False
                                claimed = await outbox.claim_notices(conn, reach, now, lease, room)
                                look = len(claimed) == room  # short: nothing more is due
                        if renew:
                            renewed = time.monotonic()
                        sent += sum(outcome.state == "sent" for outcome in done)
                        done = []
                    for notice in claimed:
                        sending[asyncio.create_task(self._deliver(notice))] = notice
                    if not sending and not done:
                        if not self._halt and (self._claimed or look):
                            continue
                        return sent
                    timeout = renew_every
                    if done:
                        timeout = min(timeout, max(0.0, oldest + RECORD_LINGER - time.monotonic()))
                    self._wake = loop.create_future()  # a kick meanwhile starts its sends at once
                    waiting: set[asyncio.Future[Any]] = {*sending, self._wake}
                    finished, _ = await asyncio.wait(
                        waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                    )
                    self._wake.cancel()
                    self._wake = None
                    for task in finished:
                        if task in sending:
                            del sending[task]
                            if not done:
                                oldest = time.monotonic()
                            done.append(task.result())
            except BaseException:
                # Killed, or the database failed: what is in flight stays "sending" until its
                # lease lapses, then any sender sends it again.
                for task in sending:
                    task.cancel()
                raise

    async def _deliver(self, notice: Notice) -> Outcome:
        """Send one notice; what became of it."""
        attempts = notice.attempts + 1
        try:
            await self._senders[notice.channel](notice.user_id, [notice.reply])
        except RetryLater as error:  # the platform's pace, not the person's fault: no attempt
            later = utcnow() + timedelta(seconds=error.seconds)
            return Outcome(notice, "pending", notice.attempts, error=str(error), next_try_at=later)
        except Blocked as error:
            return Outcome(notice, "blocked", attempts, error=str(error))
        except Permanent as error:
            return Outcome(notice, "failed", attempts, error=str(error))
        except Exception as error:  # network, 5xx, a channel's error: again, with backoff
            log.warning(
                "notice %s to %s:%s failed: %s", notice.id, notice.channel, notice.user_id, error
            )
            if attempts >= self.max_attempts:
                return Outcome(notice, "failed", attempts, error=str(error))
            later = utcnow() + timedelta(seconds=backoff(self.backoff_base, attempts))
            return Outcome(notice, "pending", attempts, error=str(error), next_try_at=later)
        return Outcome(notice, "sent", attempts)
