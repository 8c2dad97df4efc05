"""One user's updates answered in order across workers (PostgreSQL, several `chungsuc serve`).

A lock alone is not order: with Telegram's `max_connections` > 1, a user's second update can
reach another worker and take the lock before the first. So the webhook records the update
(`inbox`, whose unique key is also the dedupe of a replay) and answers 200; then the worker
tries to take the user's turn (`inbox_turns`, its row read FOR UPDATE SKIP LOCKED, so no worker
waits on another's lock: a locked turn is looked at again 10 ms later). The worker that
holds it answers the user's pending updates in their order until none is left, and gives
the turn back only if nothing waits (one statement: an update recorded meanwhile is then its
own); a worker that cannot take it leaves its update to the holder. A turn is a lease,
renewed as updates are taken (once a quarter of it has gone): a killed worker's turn lapses,
and `sweep` (every worker, every few seconds) answers what it left waiting. An update is
marked taken before it is answered, so a crash loses that one instead of answering it twice,
as `processed_events` does.

On SQLite (one process) none of this runs: the dispatcher's in-process locks keep the order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from bot.storage import inbox as store
from bot.storage.db import Database

log = logging.getLogger(__name__)
Answer = Callable[[dict[str, Any]], Awaitable[None]]
Start = Callable[[Coroutine[Any, Any, None]], None]

LEASE = 30.0  # seconds a turn is held without taking an update
SWEEP = 2.0  # seconds between looks for updates a crashed worker left
BUSY_PAUSE, BUSY_TRIES = 0.01, 200  # a turn in another's transaction: look again, 2 s at most
# The lease is renewed once this share of it has gone (not at every update: one statement
# less for each, and the turn's row is locked less often, so fewer workers find it BUSY). An
# update's answer may then take three quarters of the lease before the turn can lapse.
RENEW_AFTER = 0.25


class Inbox:
    """The ordered inbox of one process. `register` each channel's answer (the body back into
    an update, answered and replied to); `accept` records an update and starts its user's
    turn with `start` (the runtime's background tasks, drained at shutdown)."""

    def __init__(
        self,
        db: Database,
        start: Start,
        *,
        on_turn: Callable[[str, str], None] | None = None,
        lease: float = LEASE,
    ) -> None:
        self.db = db
        self.holder = uuid.uuid4().hex
        self.lease = lease
        self._start = start
        self._on_turn = on_turn  # a turn taken: what this process kept of the user is stale
        self._answers: dict[str, Answer] = {}

    def register(self, channel: str, answer: Answer) -> None:
        self._answers[channel] = answer

    async def accept(
        self, channel: str, event_key: str, user_id: str, seq: int, body: dict[str, Any]
    ) -> bool:
        """Record the update and start answering its user's; False for a replay."""
        if not await store.add(self.db, channel, event_key, user_id, seq, body):
            return False
        self._start(self.drain(channel, user_id))
        return True

    async def drain(self, channel: str, user_id: str) -> None:
        """Answer the user's pending updates in order while this process holds their turn."""
        db, holder, answer = self.db, self.holder, self._answers.get(channel)
        clock = asyncio.get_running_loop().time
        while got := await self._claim(channel, user_id):
            if got is store.Claim.TAKEN and self._on_turn is not None:
                self._on_turn(channel, user_id)
            renew_at = clock() + self.lease * RENEW_AFTER  # the claim set a whole lease
            try:
                # One at a time, the first pending each time: an update recorded while the one
                # before was answered may come before others recorded earlier.
                while True:
                    renew = clock() >= renew_at
                    found = await store.take_next(
                        db, channel, user_id, holder, self.lease, renew=renew
                    )
                    if renew:
                        renew_at = clock() + self.lease * RENEW_AFTER
                    if found.row is None:
                        break
                    await self._answer(answer, channel, user_id, found.row)
            except BaseException:
                await store.release(db, channel, user_id, holder)
                raise
            if not found.again:
                return  # given back with nothing left (or the lease lapsed)

    async def _claim(self, channel: str, user_id: str) -> store.Claim | None:
        """The turn taken (or resumed); None when another worker holds it (and will see what
        came)."""
        for _ in range(BUSY_TRIES):
            got = await store.claim(self.db, channel, user_id, self.holder, self.lease)
            if got is not store.Claim.BUSY:
                return got if got in (store.Claim.TAKEN, store.Claim.RESUMED) else None
            await asyncio.sleep(BUSY_PAUSE)  # its transaction takes milliseconds
        return None  # left to the sweep

    async def _answer(
        self, answer: Answer | None, channel: str, user_id: str, row: store.Pending
    ) -> None:
        if answer is None:
            log.error("inbox: no channel %s here; update %s dropped", channel, row.id)
            return
        try:
            await answer(row.body)
        except Exception:
            log.exception("answering update %s of %s:%s failed", row.id, channel, user_id)

    async def sweep(self, older_than: float = SWEEP) -> int:
        """Answer the updates nobody holds the turn for; how many users had some."""
        users = await store.stranded(self.db, older_than)
        for channel, user_id in users:
            log.info("inbox: taking over the waiting updates of %s:%s", channel, user_id)
        await asyncio.gather(*(self.drain(c, u) for c, u in users))
        return len(users)

    async def run(self, stop: asyncio.Event, interval: float = SWEEP) -> None:
        """Sweep every `interval` seconds until `stop` is set."""
        while not stop.is_set():
            try:
                await self.sweep()
            except Exception:
                log.exception("inbox sweep failed; tried again in %.0f s", interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
