"""Recurring jobs — daily and weekly digests, pledge reminders — on times kept in the database
(Asia/Ho_Chi_Minh), so a restart loses none and two processes never run the same one twice; and
at every tick, polls whose closing time has come are closed and their results announced."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from bot.delivery.digest import build_digests, digest_window, send_pledge_reminders
from bot.delivery.poll_notices import close_due_polls
from bot.domain.clock import TZ
from bot.storage.db import as_utc, insert_or
from bot.storage.schema import schedules

if TYPE_CHECKING:
    from bot.app.services import Services

log = logging.getLogger(__name__)
JOB_NAMES = ("digest:daily", "digest:weekly", "reminders:daily")


def next_run(name: str, after: datetime, hour: int, weekday: int) -> datetime:
    """The first run of a job strictly after `after`."""
    local = after.astimezone(TZ)
    candidate = datetime.combine(local.date(), time(hour), TZ)
    while candidate <= local or (name == "digest:weekly" and candidate.weekday() != weekday):
        candidate += timedelta(days=1)
    return candidate


def _jobs(services: Services) -> dict[str, Callable[[datetime], Awaitable[object]]]:
    async def daily(now: datetime) -> object:
        return await build_digests(
            services, "daily", await digest_window(services, "daily", now), now
        )

    async def weekly(now: datetime) -> object:
        return await build_digests(
            services, "weekly", await digest_window(services, "weekly", now), now
        )

    async def reminders(now: datetime) -> object:
        return await send_pledge_reminders(services, now.astimezone(TZ).date() + timedelta(days=1))

    return {"digest:daily": daily, "digest:weekly": weekly, "reminders:daily": reminders}


async def ensure_schedules(services: Services, now: datetime) -> None:
    """Create the rows of jobs that have none yet: ON CONFLICT DO NOTHING, so workers starting
    at once make each row once (a read and then an insert would fail one of them)."""
    settings = services.settings
    async with services.db.write() as conn:
        for name in JOB_NAMES:
            first = next_run(name, now, settings.digest_hour, settings.digest_weekday)
            row = insert_or(conn, schedules).values(name=name, next_run_at=as_utc(first))
            await conn.execute(row.on_conflict_do_nothing(index_elements=[schedules.c.name]))


async def run_due(services: Services, now: datetime) -> list[str]:
    """Run every job whose time has come, and close the polls that are due; returns their
    names ("polls:close" when a poll was closed here)."""
    settings = services.settings
    ran = []
    try:
        if await close_due_polls(services, now):
            ran.append("polls:close")
    except Exception:
        log.exception("closing polls failed; tried again at the next tick")
    async with services.db.read() as conn:
        rows = (await conn.execute(select(schedules))).all()
    jobs = _jobs(services)
    for row in rows:
        if as_utc(row.next_run_at) > now or row.name not in jobs:
            continue
        following = as_utc(next_run(row.name, now, settings.digest_hour, settings.digest_weekday))
        # Compare-and-set: of workers that read the same due time, one moves it on and runs
        # the job; on PostgreSQL the others wait for its row lock, find next_run_at changed
        # and update nothing.
        async with services.db.write() as conn:
            claimed = await conn.execute(
                update(schedules)
                .where(schedules.c.name == row.name, schedules.c.next_run_at == row.next_run_at)
                .values(next_run_at=following, last_run_at=now)
            )
        if not claimed.rowcount:
            continue  # another process took it
        try:
            await jobs[row.name](now)
            ran.append(row.name)
        except Exception:
            log.exception("scheduled job %s failed; next run %s", row.name, following)
    return ran


async def run_scheduler(
    services: Services,
    stop: asyncio.Event,
    interval: float = 30.0,
    clock: Callable[[], datetime] | None = None,
) -> None:
    """Run due jobs until `stop` is set, checking every `interval` seconds."""
    now = clock or services.now
    await ensure_schedules(services, now())
    while not stop.is_set():
        await run_due(services, now())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
