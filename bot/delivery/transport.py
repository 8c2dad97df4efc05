"""The outbox's sender: broadcasts (announcements and digests to many subscribers) and notices
(one recipient each, bot/delivery/notify.py), durably and within limits.

- `outbox`: the queries (materialise recipients in one statement, claim, record, cancel;
  notices: add, claim by priority under a per-row lease, renew, release lapsed claims).
- `progress(db, broadcast_id)` (here): counts per state, current rate, ETA — for the CLI and
  for officials in chat.
- `limiter`: the per-channel pacer shared by interactive replies, notices and broadcasts.
- `sender`: streams deliveries through the channels' transports; `run_sender` runs beside a bot,
  with the notice lane.
- `telegram_transport`: the Telegram transport on python-telegram-bot's `Bot`.

A transport is what a channel adds to be broadcast on: an object with `send` and `pause`,
raising the exceptions below so the sender can decide what happens to the delivery.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import func, select

from bot.delivery.limiter import Limiter
from bot.delivery.outbox import DONE, REMAINING, Broadcast, as_utc, status_of, utcnow
from bot.storage.db import Database
from bot.storage.schema import deliveries

RATE_WINDOW = 10.0  # seconds over which progress measures the current rate


class DeliveryError(Exception):
    """A send did not go through; the subclass says what the sender does next."""


class Blocked(DeliveryError):
    """The person blocked the bot or left: unsubscribe them, never retry."""


class RetryLater(DeliveryError):
    """The platform asked us to slow down: pause every broadcast send, then try again."""

    def __init__(self, seconds: float, message: str = "") -> None:
        super().__init__(message or f"retry after {seconds:g} s")
        self.seconds = seconds


class Temporary(DeliveryError):
    """Network error, timeout or 5xx: retry with backoff up to broadcast_max_attempts."""


class Permanent(DeliveryError):
    """The platform refused this message for good (400: chat not found, bad markup)."""


class Transport(Protocol):
    """Sends one broadcast to one person on one channel."""

    async def send(self, user_id: str, broadcast: Broadcast) -> str:
        """Send every part of the broadcast; the platform's id of the first message."""
        ...

    def pause(self, seconds: float) -> None:
        """Hold this channel's broadcast sends for `seconds`."""
        ...


@dataclass(frozen=True)
class Progress:
    broadcast_id: int
    status: str
    counts: dict[str, int] = field(default_factory=dict)
    rate: float = 0.0  # finished deliveries per second, lately
    eta: float | None = None  # seconds

    @property
    def total(self) -> int:
        """Every delivery of the broadcast."""
        return sum(self.counts.values())

    @property
    def remaining(self) -> int:
        """Deliveries not yet done: pending or being sent."""
        return sum(self.counts.get(s, 0) for s in REMAINING)

    def __getitem__(self, state: str) -> int:
        """How many deliveries are in `state`."""
        return self.counts.get(state, 0)


async def progress(db: Database, broadcast_id: int, now: datetime | None = None) -> Progress | None:
    """Counts per state, the rate of the last seconds and the time left at that rate."""
    now = now or utcnow()
    d = deliveries
    status = await status_of(db, broadcast_id)
    if status is None:
        return None
    async with db.read() as conn:
        counts = {
            state: n
            for state, n in await conn.execute(
                select(d.c.state, func.count())
                .where(d.c.broadcast_id == broadcast_id)
                .group_by(d.c.state)
            )
        }
        recent, oldest = (
            await conn.execute(
                select(func.count(), func.min(d.c.updated_at)).where(
                    d.c.broadcast_id == broadcast_id,
                    d.c.state.in_(DONE),
                    d.c.updated_at >= now - timedelta(seconds=RATE_WINDOW),
                )
            )
        ).one()
    rate = 0.0
    if recent > 1 and oldest is not None:
        rate = recent / max((now - as_utc(oldest)).total_seconds(), 1e-3)
    remaining = sum(counts.get(state, 0) for state in REMAINING)
    return Progress(broadcast_id, status, counts, rate, remaining / rate if rate > 0 else None)


__all__ = [
    "Blocked",
    "Broadcast",
    "DeliveryError",
    "Limiter",
    "Permanent",
    "Progress",
    "RetryLater",
    "Temporary",
    "Transport",
    "progress",
]
