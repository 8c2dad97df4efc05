"""One clock for the whole bot: Vietnam time, read through `Services.clock`.

Handlers, jobs, parsers and the sample data ask this clock for "now" and "today"; nothing reads
the machine's clock directly. Tests and demos set a `FixedClock`, so no test depends on the day
it runs.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


class Clock:
    """The real time, in Vietnam."""

    def now(self) -> datetime:
        """Now, timezone-aware, in Vietnam time."""
        return datetime.now(TZ)

    def today(self) -> date:
        """Today's date in Vietnam (which is not the server's date for 7 hours a day)."""
        return self.now().date()

    def utcnow(self) -> datetime:
        return self.now().astimezone(UTC)


# The machine's time, for what must follow it whatever a test sets: the outbox's leases and
# retries (a platform's rate limits are real seconds) and checks of a platform's signed
# timestamps. Everything a villager or official sees reads `Services.clock` instead.
WALL = Clock()


class FixedClock(Clock):
    """A clock that says what it is told: for tests, benchmarks and reproducible demos."""

    def __init__(self, at: datetime | date) -> None:
        self._at = vietnam_time(at)

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime | date) -> None:
        self._at = vietnam_time(at)


def vietnam_time(at: datetime | date) -> datetime:
    """A date means its morning (07:00) in Vietnam; a naive datetime is Vietnam time."""
    if not isinstance(at, datetime):
        return datetime.combine(at, time(7, 0), TZ)
    return at if at.tzinfo is not None else at.replace(tzinfo=TZ)
