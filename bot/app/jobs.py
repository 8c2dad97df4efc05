"""What runs beside a bot: the sender (notices, then broadcasts) and the scheduler (digests,
reminders)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping

from bot.app.services import Services
from bot.delivery.scheduler import run_scheduler
from bot.delivery.sender import run_sender
from bot.delivery.transport import Transport

log = logging.getLogger(__name__)


def _report(task: asyncio.Task[None]) -> None:
    """A job that ends on its own is an error worth a loud line at once."""
    if not task.cancelled() and task.exception() is not None:
        log.error("%s stopped with an error", task.get_name(), exc_info=task.exception())


@contextlib.asynccontextmanager
async def background_jobs(
    services: Services, transports: Mapping[str, Transport]
) -> AsyncIterator[None]:
    """Run the sender — notices on the channels registered with `services.notifier`,
    broadcasts on these transports — and the scheduler until the block ends."""
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(run_sender(services, transports, stop), name="sender"),
        asyncio.create_task(run_scheduler(services, stop), name="scheduler"),
    ]
    for task in tasks:
        task.add_done_callback(_report)
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)  # errors were reported above
