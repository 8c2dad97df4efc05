"""Send limits shared by interactive replies, notices and broadcasts on one channel.

Telegram's limits: about 30 messages a second overall (1000 with `allow_paid_broadcast`), about
one a second to one chat, 20 a minute to one group. One `Limiter` per channel and process paces
every message the process sends there; Telegram's 429 `retry_after` pauses notices and
broadcasts.

The overall limit is a GCRA pacer (a token bucket kept as one timestamp): `tat` is the time at
which the next queued message conforms. Notices and broadcasts wait for it, taking turns in
order — every waiting notice before any waiting broadcast message; an interactive reply may run
ahead of it by the reserve (`broadcast_reply_reserve` of one second's worth of messages), so a
villager's answer never queues, and the queue then yields exactly the capacity replies used.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.app.settings import Settings

# How far the pacer may trail the clock: a broadcast woken a little late catches up (so the
# achieved rate stays at the configured one) without bursting after it was idle.
CATCH_UP_SECONDS = 0.005
_PRUNE_AT = 4096  # per-chat entries kept before expired ones are dropped (memory stays flat)

ChatId = int | str


class Pace:
    """One overall limit: a message every `1/rate` seconds, with a reserve only replies use."""

    def __init__(self, rate: float, reserve: float) -> None:
        self.interval = 1.0 / rate
        # The bucket holds one second of messages; the reserve is a share of it, at least one.
        self.reserve = max(1.0, reserve * rate) * self.interval
        self.lag = max(self.interval, CATCH_UP_SECONDS)
        self.tat = float("-inf")

    def broadcast_wait(self, now: float) -> float:
        """Seconds until a broadcast message conforms."""
        return max(0.0, self.tat - now)

    def interactive_wait(self, now: float) -> float:
        """Seconds until a reply conforms: non-zero only when replies alone use up the reserve."""
        return max(0.0, self.tat - now - self.reserve)

    def take(self, now: float) -> None:
        """Count one message sent at `now`."""
        self.tat = max(self.tat, now - self.lag) + self.interval


NOTICE, BROADCAST = 0, 1  # the order of turns under the pace: lower first


class Turns:
    """Whose turn it is to wait for the pace: the lowest priority waiting, then the earliest.
    A lock whose next holder is chosen by priority; the turn passes straight to it."""

    def __init__(self) -> None:
        self._held = False
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []  # a heap
        self._arrivals = itertools.count()

    async def acquire(self, priority: int) -> None:
        """Wait for this sender's turn."""
        if not self._held and not self._waiting:
            self._held = True
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (priority, next(self._arrivals), turn))
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.release()  # handed the turn just as it was cancelled: pass it on
            raise

    def release(self) -> None:
        """Hand the turn to the next in line (cancelled waiters are skipped)."""
        while self._waiting:
            turn = heapq.heappop(self._waiting)[2]
            if not turn.done():
                turn.set_result(None)
                return
        self._held = False


class Limiter:
    """Paces one channel's sends: overall (free and paid), per chat, per group, 429 pauses."""

    def __init__(
        self,
        rate: float = 30,
        paid_rate: float = 1000,
        per_chat_interval: float = 1.0,
        group_per_window: int = 20,
        reserve: float = 0.1,
        group_window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free = Pace(rate, reserve)
        self.paid = Pace(paid_rate, reserve)
        self.per_chat_interval = per_chat_interval
        self.group_per_window = group_per_window
        self.group_window = group_window
        self.clock = clock
        self._chat_free_at: dict[str, float] = {}  # chat → when the next broadcast send may go
        self._group_sends: dict[str, deque[float]] = {}
        self._paused_until = float("-inf")
        self._prune_at = _PRUNE_AT
        self._turns = Turns()  # notices, then broadcast sends, each in arrival order

    @classmethod
    def from_settings(cls, settings: Settings) -> Limiter:
        """The Telegram limiter with the configured limits."""
        return cls(
            rate=settings.broadcast_rate,
            paid_rate=settings.broadcast_paid_rate,
            per_chat_interval=settings.broadcast_per_chat_interval,
            group_per_window=settings.broadcast_group_per_minute,
            reserve=settings.broadcast_reply_reserve,
        )

    def pause(self, seconds: float) -> None:
        """Hold every broadcast send for `seconds` (Telegram answered 429 retry_after)."""
        self._paused_until = max(self._paused_until, self.clock() + seconds)

    @property
    def paused_for(self) -> float:
        """Seconds the broadcast is still paused for."""
        return max(0.0, self._paused_until - self.clock())

    async def acquire(
        self, chat_id: ChatId, interactive: bool, paid: bool = False, notice: bool = False
    ) -> None:
        """Wait until one message to `chat_id` may be sent, and count it: a reply at once, a
        notice before any broadcast message waiting for its turn."""
        key = str(chat_id)
        if interactive:
            await self._acquire_interactive(key)
        elif notice:
            await self._acquire_queued(key, self.free, NOTICE)
        else:
            await self._acquire_queued(key, self.paid if paid else self.free, BROADCAST)

    def sent(self, chat_id: ChatId) -> None:
        """The send to `chat_id` finished: its next message waits an interval from now.

        Counting from the answer, not from the request, keeps the gap Telegram sees at least
        the interval even when one request travels slower than the next.
        """
        key = str(chat_id)
        now = self.clock()
        free_at = now + self.per_chat_interval
        self._chat_free_at[key] = max(self._chat_free_at.get(key, free_at), free_at)
        sends = self._group_sends.get(key)
        if sends:  # a group's window, too, counts this message from its answer
            sends[-1] = max(sends[-1], now)

    def interactive_hook(self) -> Callable[[ChatId], Awaitable[None]]:
        """What a channel adapter awaits before each reply: `await hook(chat_id)`."""

        async def before_reply(chat_id: ChatId) -> None:
            """Wait (almost never) until this reply may go."""
            await self.acquire(chat_id, interactive=True)

        return before_reply

    async def _acquire_interactive(self, key: str) -> None:
        """Count a reply at once, unless replies alone have used up the reserve."""
        wait = self.free.interactive_wait(self.clock())
        if wait > 0:  # replies alone exceed the reserve: only then does a reply wait
            await asyncio.sleep(wait)
        now = self.clock()
        self.free.take(now)
        self._stamp(key, now)

    async def _acquire_queued(self, key: str, pace: Pace, priority: int) -> None:
        """Wait for the chat, then for this message's turn under the overall pace."""
        while True:
            # The per-chat wait happens outside the turn, so one slow chat holds up no other.
            wait = self._chat_wait(key, self.clock())
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            await self._turns.acquire(priority)
            try:
                while True:
                    now = self.clock()
                    wait = max(self._paused_until - now, pace.broadcast_wait(now))
                    if wait <= 0:
                        break
                    await asyncio.sleep(wait)
                now = self.clock()
                if self._chat_wait(key, now) > 0:
                    continue  # a reply to this chat went out meanwhile
                pace.take(now)
                self._stamp(key, now)
                return
            finally:
                self._turns.release()

    def _chat_wait(self, key: str, now: float) -> float:
        """Seconds until a broadcast message may go to this chat (interval, group window)."""
        wait = self._chat_free_at.get(key, now) - now
        sends = self._group_sends.get(key)
        if sends is not None:
            while sends and sends[0] <= now - self.group_window:
                sends.popleft()
            if len(sends) >= self.group_per_window:
                wait = max(wait, sends[0] + self.group_window - now)
        return max(0.0, wait)

    def _stamp(self, key: str, now: float) -> None:
        """Note a message to this chat at `now`."""
        self._chat_free_at[key] = now + self.per_chat_interval
        if key.startswith("-"):  # Telegram group chats have negative ids
            self._group_sends.setdefault(key, deque()).append(now)
        if len(self._chat_free_at) > self._prune_at:
            self._prune(now)

    def _prune(self, now: float) -> None:
        """Forget chats whose interval has passed, so memory does not grow with recipients."""
        self._chat_free_at = {k: t for k, t in self._chat_free_at.items() if t > now}
        cutoff = now - self.group_window
        self._group_sends = {
            k: sends for k, sends in self._group_sends.items() if sends and sends[-1] > cutoff
        }
        # Doubling the threshold keeps pruning amortised O(1) even at very high rates.
        self._prune_at = max(_PRUNE_AT, 2 * len(self._chat_free_at))
