"""`chungsuc broadcast list|show|send|cancel`: the outbox from the operator's terminal."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bot.app.services import Services
from bot.app.settings import Settings
from bot.delivery.limiter import Limiter
from bot.delivery.outbox import Broadcast, cancel, get_broadcast, list_broadcasts, utcnow
from bot.delivery.transport import Progress as Counts
from bot.delivery.transport import Transport, progress
from bot.domain.clock import TZ
from bot.domain.i18n import _

ID = Annotated[int, typer.Argument(help="The broadcast's number (see `broadcast list`).")]
_SHOWN = ("sent", "failed", "blocked", "skipped", "cancelled", "pending", "sending")


def register(app: typer.Typer) -> None:
    """Add the `broadcast` commands to the `chungsuc` app."""
    broadcast_app = typer.Typer(no_args_is_help=True, help="Announcements and digests: the outbox.")
    broadcast_app.command("list")(list_command)
    broadcast_app.command("show")(show_command)
    broadcast_app.command("send")(send_command)
    broadcast_app.command("cancel")(cancel_command)
    app.add_typer(broadcast_app, name="broadcast")


def _eta(seconds: float | None) -> str:
    """Seconds as h:mm:ss, or a dash when unknown."""
    if seconds is None:
        return "–"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def _summary(counts: dict[str, int]) -> str:
    """Delivery counts in words: "120 sent, 3 blocked, 877 pending"."""
    shown = [f"{counts[s]} {s}" for s in _SHOWN if counts.get(s)]
    return ", ".join(shown) or "no recipients yet"


def _when(moment: datetime) -> str:
    """A time as officials read it, in Vietnam: "2026-11-30 18:00 +07"."""
    return moment.astimezone(TZ).strftime("%Y-%m-%d %H:%M %Z")


def _scope(b: Broadcast) -> str:
    """Where a broadcast goes: "commune 01840"."""
    return f"{b.scope_level} {b.scope_code}"


def list_command(
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
) -> None:
    """The newest broadcasts with their delivery counts."""
    from bot.interfaces.cli.common import _with_services, out

    async def work(services: Services) -> list[tuple[Broadcast, dict[str, int]]]:
        return await list_broadcasts(services.db, limit)

    rows = _with_services(work, quiet=True)
    if not rows:
        out.print("No broadcasts yet.")
    # One line each, so a pipe or a narrow terminal keeps every field whole.
    for b, counts in rows:
        out.print(
            f"{b.id:>4}  {b.status:<9}  {_when(b.send_at)}  {b.topic} · {_scope(b)}  “{b.title}”  "
            f"— {_summary(counts)}",
            soft_wrap=True,
        )


def show_command(broadcast_id: ID) -> None:
    """One broadcast: what, to whom, and how far its sending is."""
    from bot.interfaces.cli.common import _with_services, err, out

    async def work(services: Services) -> tuple[Broadcast | None, Counts | None]:
        return await get_broadcast(services.db, broadcast_id), await progress(
            services.db, broadcast_id
        )

    b, counts = _with_services(work, quiet=True)
    if b is None or counts is None:
        err.print(f"There is no broadcast {broadcast_id}.")
        raise typer.Exit(1)
    out.print(f"Broadcast {b.id}: {b.kind} “{b.title}” ({b.status})")
    out.print(f"  to: {b.topic} subscribers, {_scope(b)}" + (f", {b.locale}" if b.locale else ""))
    out.print(f"  send at: {_when(b.send_at)}   by: {b.created_by}   paid: {b.paid}")
    if b.finished_at:
        out.print(f"  finished: {_when(b.finished_at)}")
    out.print(f"  deliveries: {_summary(counts.counts)}")
    if counts.remaining:
        out.print(f"  rate: {counts.rate:.1f}/s   ETA: {_eta(counts.eta)}")
    out.print(f"  text ({len(b.text)} characters):\n{b.text}")


@asynccontextmanager
async def default_transports(
    settings: Settings, limiter: Limiter | None = None
) -> AsyncIterator[dict[str, Transport]]:
    """The transports this process can send on: Telegram when its token is set."""
    transports: dict[str, Transport] = {}
    async with AsyncExitStack() as stack:
        if settings.telegram_token_problem() is None:
            from bot.channels.telegram_transport import CHANNEL, telegram_transport

            transports[CHANNEL] = await stack.enter_async_context(
                telegram_transport(settings, limiter)
            )
        yield transports


def send_command(
    broadcast_id: ID,
    now: Annotated[
        bool, typer.Option("--now", help="Send now a broadcast scheduled for later.")
    ] = False,
    takeover: Annotated[
        bool,
        typer.Option(
            "--takeover",
            help="Send even though another sender holds the broadcast (its lease lasts 30 s "
            "after it last renewed it); only when that sender is surely dead.",
        ),
    ] = False,
) -> None:
    """Send a broadcast now, with a progress bar, until every recipient is done."""
    from bot.delivery.sender import Sender, lease_expiry, lease_name
    from bot.interfaces.cli.common import _with_services, err

    async def work(services: Services) -> tuple[str, Counts | None]:
        b = await get_broadcast(services.db, broadcast_id)
        if b is None:
            err.print(f"There is no broadcast {broadcast_id}.")
            raise typer.Exit(1)
        if b.status == "scheduled" and b.send_at > utcnow() and not now:
            err.print(f"Broadcast {b.id} is scheduled for {_when(b.send_at)}; add --now.")
            raise typer.Exit(1)
        settings = services.settings
        # On PostgreSQL the limit is shared with the workers sending beside this command.
        limiter = Limiter.from_settings(settings, services.db)
        async with default_transports(settings, limiter) as transports:
            if not transports:
                err.print("No channel to send on: set CHUNGSUC_TELEGRAM_TOKEN.")
                raise typer.Exit(2)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                # Ctrl+C stops cleanly: sends in flight are recorded, the rest stays pending.
                with contextlib.suppress(RuntimeError, NotImplementedError):  # not main thread
                    loop.add_signal_handler(sig, stop.set)
            sender = Sender(services.db, settings, transports)
            task = asyncio.create_task(sender.send(broadcast_id, stop, takeover))
            await _show_progress(services, broadcast_id, task)
            if task.result() == "busy":
                held = await lease_expiry(services.db, lease_name(broadcast_id))
                err.print(_busy(broadcast_id, held))
                raise typer.Exit(1)
            return task.result(), await progress(services.db, broadcast_id)

    started = time.monotonic()
    result, counts = _with_services(work)
    summary = _summary(counts.counts) if counts else ""
    took = f"{time.monotonic() - started:.1f} s"
    messages = {
        "done": f"Broadcast {broadcast_id} done in {took}: {summary}.",
        "cancelled": f"Broadcast {broadcast_id} is cancelled: {summary}.",
        "stopped": f"Stopped; `broadcast send {broadcast_id}` resumes it: {summary}.",
        "waiting": f"Sent what this process can; the rest waits for its channels: {summary}.",
    }
    Console(stderr=True, highlight=False, markup=False).print(messages[result])
    if result == "stopped":
        raise typer.Exit(1)


def _busy(broadcast_id: int, held: datetime | None) -> str:
    """Why the broadcast was not sent: another sender's lease, and what to do about it."""
    if held is None:  # released since: the other sender has just stopped or finished
        return _("Một tiến trình khác vừa thôi gửi thông báo {id}; hãy chạy lại lệnh này.").format(
            id=broadcast_id
        )
    left = max(0, round((held - utcnow()).total_seconds()))
    return _(
        "Một tiến trình khác đang gửi thông báo {id}: nó giữ quyền gửi đến {until} (còn "
        "{seconds} giây) và gia hạn mỗi giây khi còn chạy. Nếu nó đã dừng đột ngột, chạy lại "
        "lệnh này sau lúc đó. --takeover giành quyền ngay: chỉ dùng khi chắc chắn tiến trình "
        "kia không còn chạy, nếu không có người sẽ nhận hai lần."
    ).format(id=broadcast_id, until=_when(held), seconds=left)


async def _show_progress(services: Services, broadcast_id: int, task: asyncio.Task[str]) -> None:
    """A progress bar read from the outbox until the sender finishes."""
    columns = (
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(
            "sent {task.fields[sent]} · failed {task.fields[failed]} · blocked "
            "{task.fields[blocked]} · remaining {task.fields[remaining]}",
            markup=False,
        ),
        TextColumn("{task.fields[rate]:.1f}/s · ETA {task.fields[eta]}", markup=False),
        TimeElapsedColumn(),
    )
    console = Console(stderr=True, highlight=False)
    with Progress(*columns, console=console, transient=False) as bar:
        line = bar.add_task(
            f"broadcast {broadcast_id}",
            total=None,
            sent=0,
            failed=0,
            blocked=0,
            remaining=0,
            rate=0.0,
            eta="–",
        )
        while True:
            counts = await progress(services.db, broadcast_id)
            if counts is not None:
                bar.update(
                    line,
                    total=counts.total or None,
                    completed=counts.total - counts.remaining,
                    sent=counts["sent"],
                    failed=counts["failed"],
                    blocked=counts["blocked"],
                    remaining=counts.remaining,
                    rate=counts.rate,
                    eta=_eta(counts.eta),
                )
            if task.done():
                return
            await asyncio.wait({task}, timeout=0.5)


def cancel_command(broadcast_id: ID) -> None:
    """Stop a broadcast: deliveries not sent yet are cancelled (a running sender stops)."""
    from bot.interfaces.cli.common import _with_services, err, out

    async def work(services: Services) -> int | None:
        return await cancel(services.db, broadcast_id, utcnow())

    cancelled = _with_services(work)
    if cancelled is None:
        err.print(f"Broadcast {broadcast_id} does not exist or is over already.")
        raise typer.Exit(1)
    out.print(f"Cancelled broadcast {broadcast_id}: {cancelled} deliveries will not be sent.")
