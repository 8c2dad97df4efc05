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

Several workers on one PostgreSQL share the overall limit (`SharedPace`): the pacer's timestamp
lives in the database (table `send_pace`, one row per channel and pace), and a worker reserves
the next few slots (a tenth of a second's worth) with one UPDATE that moves it; the slots of
different workers never overlap, so their sum stays within the limit. A reply still goes at
once: it uses a slot its worker holds, or is paid for after the fact by the worker's next
reservation (within SETTLE_SECONDS), so the other workers yield the capacity it used.

The pace runs HEADROOM under the configured rate. A slot may be used a little late (the
catch-up), and a request let through on time may still reach Telegram a few milliseconds
later than the one after it; without the headroom, a window of one second as Telegram counts
it could hold a few messages more than the limit.

Across workers, one chat gets one message at a time too: before a notice or a broadcast
message goes to a private chat, the worker takes the chat's row in `send_pace` ("telegram:
chat:123", one statement that succeeds only if the chat's interval has passed) and holds it
for the interval (CHAT_HOLD_MARGIN more, for the send itself: a send slower than that may have
the next worker's message follow it sooner). A chat held by another worker waits, outside the
turn, and the slot passes to the next message. When taking the chat outlasts the slot, the
message waits for the next one: a queued message never goes outside the slots its worker
holds. Villagers' replies go at once, as on one worker: Telegram's per-chat limit is for what
a bot sends unasked.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, case, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.domain.clock import WALL
from bot.storage.db import Database, insert_or
from bot.storage.schema import send_pace

if TYPE_CHECKING:
    from bot.app.settings import Settings

# How far the pacer may trail the clock: a broadcast woken a little late catches up (so the
# achieved rate stays at the configured one) without bursting after it was idle.
CATCH_UP_SECONDS = 0.005
_PRUNE_AT = 4096  # per-chat entries kept before expired ones are dropped (memory stays flat)
BATCH_SECONDS = 0.1  # a worker reserves this much of the shared limit at a time
# How late a worker may use a slot it holds: any 1 s window then sees at most
# rate × (1 + 0.02) + 1 messages of all workers together.
SHARED_CATCH_UP_SECONDS = 0.02
SETTLE_SECONDS = 0.1  # replies sent outside reserved slots are paid for within this long
HEADROOM = 0.025  # the pace runs this share under the configured rate (see above)
# A chat taken for a notice or broadcast message is held the per-chat interval and this much
# more, from before its send: the send's own time, for any send answered within it.
CHAT_HOLD_MARGIN = 0.25
CHAT_ROWS_KEPT = 60.0  # seconds a chat's row outlives its hold, then the prune drops it
PRUNE_EVERY = 5000  # chats taken between two prunes of lapsed chat rows

ChatId = int | str


class Pace:
    """One overall limit: a message every `1/rate` seconds, with a reserve only replies use."""

    def __init__(self, rate: float, reserve: float) -> None:
        self.interval = 1.0 / (rate * (1 - HEADROOM))
        # The bucket holds one second of messages; the reserve is a share of it, at least one.
        self.reserve = max(1.0, reserve * rate) * self.interval
        self.lag = max(self.interval, CATCH_UP_SECONDS)
        self.tat = float("-inf")

    def broadcast_wait(self, now: float) -> float:
        """Seconds until a broadcast message conforms."""
        return max(0.0, self.tat - now)

    async def ready(self, clock: Callable[[], float], wanted: int) -> float:
        """Seconds until the next queued message conforms (0: now); `wanted` is how many wait."""
        return self.broadcast_wait(clock())

    def interactive_wait(self, now: float) -> float:
        """Seconds until a reply conforms: non-zero only when replies alone use up the reserve."""
        return max(0.0, self.tat - now - self.reserve)

    def take(self, now: float) -> None:
        """Count one message sent at `now`."""
        self.tat = max(self.tat, now - self.lag) + self.interval


class PaceBook:
    """The shared paces in the database: the next slots of one, reserved by one statement."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._made: set[str] = set()  # rows this process knows exist
        self._taken = 0  # chats taken: every PRUNE_EVERY, lapsed chat rows are dropped

    async def reserve(self, name: str, interval: float, count: int) -> float:
        """Reserve `count` consecutive slots of `interval` seconds on pace `name`: seconds from
        the answer until the first (negative: it began during the round trip)."""
        span = count * interval
        async with self.db.statements() as conn:
            if name not in self._made:
                await conn.execute(
                    insert_or(conn, send_pace).values(name=name, tat=0.0).on_conflict_do_nothing()
                )
            # Read once connected: a clock read before a slow connect would hand out a slot
            # already past, and its late use would crowd the next.
            now = WALL.utcnow().timestamp()
            end = (
                await conn.execute(_RESERVE, {"p_name": name, "now": now, "span": span})
            ).scalar_one()
        self._made.add(name)
        return float(end) - span - WALL.utcnow().timestamp()

    async def take_chat(self, name: str, hold: float) -> float:
        """Take chat `name` for `hold` seconds if nobody holds it: 0.0; else the seconds until
        its holder lets it go. One statement (an upsert that only a lapsed hold lets through),
        so two workers never both take it."""
        async with self.db.statements() as conn:
            now = WALL.utcnow().timestamp()
            taken = (
                await conn.execute(
                    _take_chat(conn), {"p_name": name, "now": now, "until": now + hold}
                )
            ).first()
            if taken is None:
                held = (await conn.execute(_HELD, {"p_name": name})).scalar_one()
                return max(0.0, float(held) - now)
            self._taken += 1
            if self._taken % PRUNE_EVERY == 0:
                prefix = name.rsplit(":", 1)[0] + ":"
                await conn.execute(_PRUNE, {"prefix": prefix, "before": now - CHAT_ROWS_KEPT})
        return 0.0


# The row is locked by the UPDATE: two workers reserving at once get consecutive slots.
_RESERVE = (
    update(send_pace)
    .where(send_pace.c.name == bindparam("p_name"))
    .values(
        tat=case((send_pace.c.tat < bindparam("now"), bindparam("now")), else_=send_pace.c.tat)
        + bindparam("span")
    )
    .returning(send_pace.c.tat)
)


def _take_chat(conn: AsyncConnection) -> Any:
    """INSERT … ON CONFLICT DO UPDATE … WHERE the hold has lapsed RETURNING: a row back when
    taken, none when another worker holds the chat."""
    insert = insert_or(conn, send_pace).values(name=bindparam("p_name"), tat=bindparam("until"))
    return insert.on_conflict_do_update(
        index_elements=[send_pace.c.name],
        set_={"tat": insert.excluded.tat},
        where=send_pace.c.tat <= bindparam("now"),
    ).returning(send_pace.c.tat)


_HELD = select(send_pace.c.tat).where(send_pace.c.name == bindparam("p_name"))
_PRUNE = delete(send_pace).where(
    send_pace.c.name.startswith(bindparam("prefix")), send_pace.c.tat < bindparam("before")
)


class SharedPace(Pace):
    """One overall limit shared by every worker on the database: this worker's messages go in
    slots it reserved, a few at a time, from the `send_pace` row `name`."""

    def __init__(self, rate: float, reserve: float, book: PaceBook, name: str) -> None:
        super().__init__(rate, reserve)
        self.book, self.name = book, name
        self.batch = max(1, round(rate * BATCH_SECONDS))
        # A slot is used within SHARED_CATCH_UP_SECONDS of its start or lost: a worker woken
        # late catches up a little, crowding the slots others hold by at most that much.
        self.lag = SHARED_CATCH_UP_SECONDS
        self.end = float("-inf")  # where the slots this worker holds end (its clock)
        self.owed = 0  # replies sent outside held slots, not yet reserved
        self._settling: asyncio.Task[None] | None = None

    def _held(self, now: float) -> bool:
        """Whether a slot this worker holds is open at `now`."""
        return max(self.tat, now - self.lag) + self.interval <= self.end + 1e-9

    async def ready(self, clock: Callable[[], float], wanted: int) -> float:
        """Seconds until this worker's next slot; reserves more when it holds none."""
        if not self._held(clock()):
            owed, self.owed = self.owed, 0
            count = owed + min(self.batch, wanted)
            try:
                delay = await self.book.reserve(self.name, self.interval, count)
            except BaseException:
                self.owed += owed
                raise
            first = clock() + delay
            self.tat = first + owed * self.interval  # the owed slots pay for past replies
            self.end = first + count * self.interval
        return self.broadcast_wait(clock())

    def interactive_wait(self, now: float) -> float:
        """A reply goes at once, in a slot this worker holds or owed; it waits only when the
        replies owed and not yet paid for would exceed the reserve."""
        return max(0.0, (self.owed + 1) * self.interval - self.reserve)

    def take(self, now: float) -> None:
        """Count one message sent at `now`: a reply outside held slots is owed."""
        if not self._held(now):
            self.owed += 1
            if self._settling is None or self._settling.done():
                self._settling = asyncio.get_running_loop().create_task(self._settle())
        super().take(now)

    async def _settle(self) -> None:
        """Reserve the slots replies used, if no queued message has done it meanwhile."""
        await asyncio.sleep(SETTLE_SECONDS)
        owed, self.owed = self.owed, 0
        if owed:
            try:
                await self.book.reserve(self.name, self.interval, owed)
            except Exception:  # the database is busy: the next reservation pays instead
                self.owed += owed


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

    @property
    def waiting(self) -> int:
        """How many wait for a turn (a cancelled waiter may still be counted)."""
        return len(self._waiting)

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
        shared: tuple[PaceBook, str] | None = None,
    ) -> None:
        self.free: Pace = Pace(rate, reserve)
        self.paid: Pace = Pace(paid_rate, reserve)
        self._shared = shared
        if shared is not None:  # (the book, the channel): the limit of every worker together
            book, channel = shared
            self.free = SharedPace(rate, reserve, book, f"{channel}:free")
            self.paid = SharedPace(paid_rate, reserve, book, f"{channel}:paid")
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
    def from_settings(
        cls, settings: Settings, db: Database | None = None, channel: str = "telegram"
    ) -> Limiter:
        """The limiter with the configured limits; on PostgreSQL (`db`), shared by every
        worker on that database (SQLite has one sending process: its limit stays local)."""
        return cls(
            rate=settings.broadcast_rate,
            paid_rate=settings.broadcast_paid_rate,
            per_chat_interval=settings.broadcast_per_chat_interval,
            group_per_window=settings.broadcast_group_per_minute,
            reserve=settings.broadcast_reply_reserve,
            shared=None if db is None or db.is_sqlite else (PaceBook(db), channel),
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
        if self._shared is not None and key.startswith("-"):
            await self._group_turn(key)
        while True:
            # The per-chat wait happens outside the turn, so one slow chat holds up no other.
            wait = self._chat_wait(key, self.clock())
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            await self._turns.acquire(priority)
            try:
                await self._slot(pace)
                now = self.clock()
                if self._chat_wait(key, now) > 0:
                    continue  # a reply to this chat went out meanwhile
                held = await self._take_chat(key)
                if held > 0:  # another worker's message to this chat: wait outside the turn
                    free_at = self.clock() + held
                    self._chat_free_at[key] = max(self._chat_free_at.get(key, free_at), free_at)
                    continue
                # The chat's round trip may have outlasted the slot: then the next one. A
                # message let through outside the slots its worker holds would crowd another
                # worker's, and only a reply may go so (paid for after).
                await self._slot(pace)
                now = self.clock()
                pace.take(now)
                self._stamp(key, now)
                return
            finally:
                self._turns.release()

    async def _slot(self, pace: Pace) -> None:
        """With the turn held, wait until `pace` lets the next queued message go and no 429
        pause holds the sends."""
        while True:
            wanted = 1 + self._turns.waiting
            wait = max(self._paused_until - self.clock(), await pace.ready(self.clock, wanted))
            if wait <= 0:
                return
            await asyncio.sleep(wait)

    async def _group_turn(self, key: str) -> None:
        """A group's turn among every worker: its messages spaced evenly, 20 a minute at most
        (one slot of its own pace, reserved in the database, then waited for). Spaced a
        window over n - 1, so a send woken late never makes n + 1 in a window."""
        book, channel = self._shared or (None, "")
        assert book is not None
        interval = self.group_window / max(1, self.group_per_window - 1)
        wait = await book.reserve(f"{channel}:group:{key}", interval, 1)

        if wait > 0:
            await asyncio.sleep(wait)

    async def _take_chat(self, key: str) -> float:
        """With workers sharing the limit, take a private chat before sending to it (see
        PaceBook.take_chat): 0.0, or the seconds another worker still holds it. Groups have a
        pace of their own (_group_turn), spaced wider than the interval."""
        if self._shared is None or key.startswith("-"):
            return 0.0
        book, channel = self._shared
        return await book.take_chat(
            f"{channel}:chat:{key}", self.per_chat_interval + CHAT_HOLD_MARGIN
        )

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
