"""The sender: streams a broadcast's deliveries through the channels' transports, durably.

Notices, one recipient each, are the other lane of this sender (bot/delivery/notify.py): the same
deliveries table, states and `outbox.record`, claimed row by row under a per-row lease instead
of a broadcast's lease, and ahead of broadcasts at the limiter. `run_sender` runs both.

On PostgreSQL several workers send one broadcast together (`Sender.run`, beside every bot):
each claims batches of its rows with SKIP LOCKED under a per-row lease (bot/delivery/outbox.py)
and paces them through its limiter, which reserves its slots of one limit shared by all
(bot/delivery/limiter.py). On SQLite, whose limiters stay in memory, and for `chungsuc
broadcast send`, the sender also holds the broadcast's lease in `schedules`: one such sender
per broadcast at a time.

Crash safety rests on one invariant: a delivery is in state "sending" from the transaction that
claims it to the transaction that records its result, and at most `broadcast_in_flight` rows of
this process are in that state at any commit. A killed worker's "sending" rows are claimed
again once their lease lapses (by any worker; `--takeover` at once), so a person gets a
duplicate only if Telegram accepted their message and the kill came before the result was
written: duplicates ≤ broadcast_in_flight per kill.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, select, update

from bot.delivery import outbox
from bot.delivery.outbox import Broadcast, Delivery, Outcome, as_utc, utcnow
from bot.delivery.transport import Blocked, Permanent, RetryLater, Temporary, Transport
from bot.storage.db import Database, insert_or
from bot.storage.schema import schedules

if TYPE_CHECKING:
    from bot.app.services import Services
    from bot.app.settings import Settings

log = logging.getLogger(__name__)
LEASE_SECONDS = 30.0  # a crashed sender's broadcast is picked up again after this long
BACKOFF_CAP = 300.0
COALESCE_SECONDS = 0.01  # how long a few results wait for more, to share a transaction
MAX_RUNNING = 4  # broadcasts one process sends at the same time
_CHECK_EVERY = 1.0  # seconds between looks at the broadcast's status (cancel) and the lease


class Slots:
    """The in-flight window: rows claimed and not yet recorded, shared by all broadcasts."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.free = total

    def take(self, wanted: int) -> int:
        """Up to `wanted` slots, as many as are free."""
        granted = min(wanted, self.free)
        self.free -= granted
        return granted

    def give(self, count: int) -> None:
        """Return slots whose rows are recorded (or were never claimed)."""
        self.free += count


class Sender:
    """Sends broadcasts on the channels it has transports for, within their limits."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        transports: Mapping[str, Transport],
        *,
        backoff_base: float = 1.0,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self.db = db
        self.settings = settings
        self.transports = dict(transports)
        self.backoff_base = backoff_base
        self.lease_seconds = lease_seconds
        self.slots = Slots(settings.broadcast_in_flight)

    async def send(
        self, broadcast_id: int, stop: asyncio.Event, takeover: bool = False, shared: bool = False
    ) -> str:
        """Send one broadcast until nothing is left for our channels, or `stop`.

        Alone (the operator's command) it holds the broadcast's lease; `shared` (a worker) it
        sends beside any other worker. Returns done | cancelled | stopped | busy (another
        process holds the lease) | waiting (what is left is on channels this process has no
        transport for, or claimed by other workers).
        """
        broadcast = await outbox.get_broadcast(self.db, broadcast_id)
        if broadcast is None:
            raise LookupError(f"no broadcast {broadcast_id}")
        if broadcast.status in ("done", "cancelled"):
            return broadcast.status
        name = lease_name(broadcast_id)
        token = None
        if not shared:
            token = await acquire_lease(self.db, name, self.lease_seconds, takeover)
            if token is None:
                return "busy"
        run = _Run(self, broadcast, stop, token)
        try:
            if broadcast.status == "scheduled":
                added = await outbox.start(
                    self.db, broadcast, utcnow(), self.settings.zalo_oa_window_days
                )
                log.info("broadcast %s: %s recipients", broadcast_id, added)
            if takeover:  # the operator says the other sender is dead: its claims go now
                reclaimed = await outbox.reset_claims(self.db, broadcast_id)
                if reclaimed:
                    log.warning("broadcast %s: resending %s unconfirmed", broadcast_id, reclaimed)
            result = await run.run()
        finally:
            if run.token is not None:
                await release_lease(self.db, name, run.token)
        if result != "finished":
            return result
        status = await outbox.finish(self.db, broadcast_id, utcnow())
        return "waiting" if status == "sending" else status or "cancelled"

    async def run(self, stop: asyncio.Event, poll: float = 2.0) -> None:
        """Send every due broadcast, each in its own task, until `stop` is set."""
        running: dict[int, asyncio.Task[str]] = {}
        while not stop.is_set():
            for broadcast_id, task in list(running.items()):
                if task.done():
                    del running[broadcast_id]
                    if not task.cancelled() and task.exception() is not None:
                        log.error("broadcast %s failed", broadcast_id, exc_info=task.exception())
            try:
                due = await outbox.due_broadcasts(self.db, utcnow(), list(self.transports))
            except Exception:  # the database may be busy for a moment; look again later
                log.exception("looking for due broadcasts failed")
                due = []
            for broadcast_id in due:
                # A few at a time, oldest first: they share one window and one limiter, so
                # more would not send faster (a morning's digests are one per commune).
                if broadcast_id not in running and len(running) < MAX_RUNNING:
                    # PostgreSQL: every worker on every broadcast, one limit for all. SQLite:
                    # one process per broadcast (the lease), as each keeps its limit in memory.
                    sending = self.send(broadcast_id, stop, shared=not self.db.is_sqlite)
                    running[broadcast_id] = asyncio.create_task(sending)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), poll)
        await asyncio.gather(*running.values(), return_exceptions=True)

    def backoff(self, attempts: int) -> float:
        """Seconds before try number `attempts + 1`: exponential with jitter."""
        return backoff(self.backoff_base, attempts)


def backoff(base: float, attempts: int) -> float:
    """Seconds before try number `attempts + 1`: exponential with jitter."""
    delay = min(BACKOFF_CAP, base * 2 ** (attempts - 1))
    return delay * random.uniform(0.5, 1.0)  # jitter spreads the retries of a 5xx burst


async def run_sender(
    services: Services, transports: Mapping[str, Transport], stop: asyncio.Event
) -> None:
    """The long-running sender beside a bot, until `stop` is set: due notices — recorded by
    this process or any other — on the channels the process registered, and due broadcasts
    on `transports`. Both lanes pace through the same limiter, notices first."""
    await asyncio.gather(
        services.notifier.run(stop),
        Sender(services.db, services.settings, transports).run(stop),
    )


# --- lease: one sender per broadcast at a time -------------------------------------------------
# A row in `schedules` named "lease:broadcast:<id>" whose next_run_at is the lease's expiry. The
# table has no owner column, so the expiry a process wrote is its token (compare-and-swap).


def lease_name(broadcast_id: int) -> str:
    """The schedules row that holds a broadcast's lease."""
    return f"lease:broadcast:{broadcast_id}"


async def acquire_lease(
    db: Database, name: str, seconds: float, takeover: bool = False
) -> datetime | None:
    """Take the lease if it is free or expired (or `takeover`); its token, or None if held.

    One statement, so two senders starting together cannot both take it: the row is made, or
    taken over only while it has expired (compare-and-set in the ON CONFLICT's WHERE)."""
    now = utcnow()
    token = now + timedelta(seconds=seconds)
    s = schedules
    async with db.write() as conn:
        take = insert_or(conn, s).values(name=name, next_run_at=token, last_run_at=now)
        take = take.on_conflict_do_update(
            index_elements=[s.c.name],
            set_={"next_run_at": take.excluded.next_run_at, "last_run_at": now},
            where=None if takeover else s.c.next_run_at <= now,
        )
        taken = (await conn.execute(take.returning(s.c.name))).first()
    return token if taken is not None else None


async def lease_expiry(db: Database, name: str) -> datetime | None:
    """When a held lease ends."""
    async with db.read() as conn:
        value = (
            await conn.execute(select(schedules.c.next_run_at).where(schedules.c.name == name))
        ).scalar()
    return None if value is None else as_utc(value)


async def renew_lease(db: Database, name: str, token: datetime, seconds: float) -> datetime | None:
    """Extend a lease this process holds; None if another process took it."""
    now = utcnow()
    new = now + timedelta(seconds=seconds)
    s = schedules
    async with db.write() as conn:
        result = await conn.execute(
            update(s)
            .where(s.c.name == name, s.c.next_run_at == token)
            .values(next_run_at=new, last_run_at=now)
        )
    return new if result.rowcount == 1 else None


async def release_lease(db: Database, name: str, token: datetime) -> None:
    """Give the lease up (only if still ours)."""
    async with db.write() as conn:
        await conn.execute(
            delete(schedules).where(schedules.c.name == name, schedules.c.next_run_at == token)
        )


class _Run:
    """One broadcast being sent: a bookkeeper claims and records, workers send."""

    def __init__(
        self, sender: Sender, broadcast: Broadcast, stop: asyncio.Event, token: datetime | None
    ) -> None:
        self.sender = sender
        self.broadcast = broadcast
        self.stop = stop
        self.token = token  # the broadcast's lease (None: shared), renewed while we run
        self.claimed: set[int] = set()  # ids claimed by us and not yet recorded (their leases)
        self.queue: asyncio.Queue[Delivery] = asyncio.Queue()
        self.results: list[Outcome] = []
        self.wake = asyncio.Event()
        self.outstanding = 0  # claimed by us and not yet recorded
        self.halt = False  # stop claiming and sending
        self.cancelled = False
        self.fault: BaseException | None = None

    async def run(self) -> str:
        """finished | cancelled | stopped."""
        workers = [asyncio.create_task(self._worker()) for _ in range(self.sender.slots.total)]
        try:
            await self._bookkeep()
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            # After an error the rows stay "sending" for the next start; the window is free.
            self.sender.slots.give(self.outstanding)
            self.outstanding = 0
        if self.fault is not None:
            raise self.fault
        if self.cancelled:
            return "cancelled"
        return "stopped" if self.halt else "finished"

    async def _bookkeep(self) -> None:
        """Record results and claim the next rows, one transaction per round, until done."""
        db, slots, b = self.sender.db, self.sender.slots, self.broadcast
        channels = list(self.sender.transports)
        cursor = 0  # keyset: the last id claimed in this pass
        exhausted = False
        checked = time.monotonic()
        while True:
            if time.monotonic() - checked >= _CHECK_EVERY:
                checked = time.monotonic()
                await self._check()
            if self.stop.is_set():
                self.halt = True
            if 0 < len(self.results) < slots.total // 2 and self.outstanding > len(self.results):
                # Group commit: more results are on their way; one transaction for several
                # costs far less than one each (each statement is a hop to SQLite's thread).
                await asyncio.sleep(COALESCE_SECONDS)
            batch, self.results = self.results, []
            claiming = not (self.halt or exhausted)
            # The batch's own slots are reused in the transaction that records it; slots go
            # back to the shared pool only once their rows have left "sending" (committed).
            held = len(batch) + (slots.take(slots.total) if claiming else 0)
            granted = held if claiming else 0
            now = utcnow()
            lease = now + timedelta(seconds=self.sender.lease_seconds)
            try:
                async with db.write() as conn:
                    await outbox.record(conn, batch, now)
                    rows = (
                        await outbox.claim(conn, b.id, channels, cursor, now, granted, lease)
                        if granted
                        else []
                    )
            except BaseException:
                slots.give(held - len(batch))
                raise
            self.claimed.difference_update(o.delivery.id for o in batch)
            self.claimed.update(row.id for row in rows)
            slots.give(held - len(rows))
            self.outstanding += len(rows) - len(batch)
            for row in rows:
                self.queue.put_nowait(row)
            if rows:
                cursor = rows[-1].id
            if granted and len(rows) < granted:
                exhausted, cursor = True, 0  # the next pass starts over for retries
            if self.outstanding == 0 and not self.results:
                if self.halt:
                    return
                if exhausted:
                    due = await outbox.next_retry_at(db, b.id, channels)
                    if due is None:
                        return
                    await self._sleep((due - utcnow()).total_seconds())
                    exhausted = False
                    continue
            if granted and len(rows) == granted and slots.free:
                continue  # more to claim and room for it
            if not self.results:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), _CHECK_EVERY)
            self.wake.clear()

    async def _sleep(self, seconds: float) -> None:
        """Wait for retries to come due, waking for a stop or a cancel."""
        deadline = time.monotonic() + max(0.0, seconds)
        while not self.stop.is_set() and (left := deadline - time.monotonic()) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), min(left, _CHECK_EVERY))
            await self._check()
            if self.halt:
                return

    async def _check(self) -> None:
        """Halt on a cancel, and renew the leases: of the claimed rows, and of the broadcast
        (halt if another process took it)."""
        db = self.sender.db
        if await outbox.status_of(db, self.broadcast.id) == "cancelled":
            self.cancelled = self.halt = True
        if self.claimed:
            lease = utcnow() + timedelta(seconds=self.sender.lease_seconds)
            async with db.write() as conn:
                await outbox.renew(conn, sorted(self.claimed), lease)
        if self.token is None:
            return
        name = lease_name(self.broadcast.id)
        renewed = await renew_lease(self.sender.db, name, self.token, self.sender.lease_seconds)
        if renewed is None:
            log.error("broadcast %s: lost its lease to another sender", self.broadcast.id)
            self.halt = True
        else:
            self.token = renewed

    async def _worker(self) -> None:
        """Send claimed deliveries one after another; hand each outcome to the bookkeeper."""
        while True:
            delivery = await self.queue.get()
            try:
                outcome = await self._deliver(delivery)
            except Exception as error:  # a fault in a transport: stop, keep the row for later
                log.exception("broadcast %s: sending failed", self.broadcast.id)
                self.fault = self.fault or error
                self.halt = True
                outcome = Outcome(delivery, "pending", delivery.attempts, error=str(error))
            self.results.append(outcome)
            self.wake.set()

    async def _deliver(self, delivery: Delivery) -> Outcome:
        """Send one delivery; what became of it."""
        transport = self.sender.transports[delivery.channel]
        attempts = delivery.attempts
        while True:
            if self.halt:  # claimed but not sent: back to pending (or cancelled)
                state = "cancelled" if self.cancelled else "pending"
                return Outcome(delivery, state, attempts)
            try:
                message_id = await transport.send(delivery.user_id, self.broadcast)
            except RetryLater as error:
                # Not the person's fault: no attempt is counted; every send waits it out.
                log.warning("broadcast %s: %s", self.broadcast.id, error)
                transport.pause(error.seconds)
                continue
            except Blocked as error:
                return Outcome(delivery, "blocked", attempts + 1, error=str(error))
            except Permanent as error:
                return Outcome(delivery, "failed", attempts + 1, error=str(error))
            except Temporary as error:
                attempts += 1
                if attempts >= self.sender.settings.broadcast_max_attempts:
                    return Outcome(delivery, "failed", attempts, error=str(error))
                later = utcnow() + timedelta(seconds=self.sender.backoff(attempts))
                return Outcome(delivery, "pending", attempts, error=str(error), next_try_at=later)
            return Outcome(delivery, "sent", attempts + 1, message_id=message_id)
