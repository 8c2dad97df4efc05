"""The terminal channel: `chungsuc chat`. Buttons become numbered options; typing the number
presses the button. Works interactively and with piped stdin, one message per line."""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from rich.console import Console
from rich.markup import escape

from bot.channels.numbered import render_reply, render_unprompted
from bot.core.conversation import Incoming, Reply
from bot.core.dispatch import Dispatcher
from bot.domain.text import clean

CHANNEL = "terminal"


def to_event(line: str, user_id: str) -> Incoming | None:
    """A typed line as the core sees it; the core maps a number to the button offered."""
    text = clean(line)
    return Incoming(CHANNEL, user_id, text=text, numbered=True) if text else None


class Terminal:
    """One person at the keyboard: their lines in, answers and their own notices out.

    Created, it takes this user's notices (another terminal user's wait until they open the
    chat); `run` converses until the input ends. What another process records meanwhile comes
    through the notifier's poll, which the runtime runs beside it (bot/app/runtime.py).
    """

    def __init__(
        self,
        dispatcher: Dispatcher,
        user_id: str = "local",
        stdin: TextIO | None = None,
        console: Console | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.user_id = user_id
        self.stdin = stdin or sys.stdin
        self.console = console or Console(highlight=False, soft_wrap=True)
        dispatcher.services.notifier.register(CHANNEL, self.notify, only_user=user_id)

    async def notify(self, to: str, replies: list[Reply]) -> None:
        """A notice, marked with a bell between the answers."""
        for reply in replies:
            self.console.print(escape("🔔 " + render_unprompted(reply)))

    async def run(self) -> None:
        """Greet, print what came while this user was away, then converse until end of input."""
        interactive = self.stdin.isatty()
        if interactive:
            self.console.print("[dim]Chung Sức — gõ /start để bắt đầu, Ctrl+D để thoát.[/dim]")
        await self.dispatcher.services.notifier.flush()
        await _converse(self.dispatcher, self.user_id, self.stdin, self.console, interactive)


async def run_terminal(
    dispatcher: Dispatcher,
    user_id: str = "local",
    stdin: TextIO | None = None,
    console: Console | None = None,
) -> None:
    """A conversation at this terminal, without the runtime (tests)."""
    await Terminal(dispatcher, user_id, stdin, console).run()


async def _converse(
    dispatcher: Dispatcher, user_id: str, stdin: TextIO, console: Console, interactive: bool
) -> None:
    """Read lines until the end of input; print each answer with its numbered buttons."""
    while True:
        if interactive:
            console.print("[bold]›[/bold] ", end="")
        line = await asyncio.to_thread(stdin.readline)
        if not line:
            break
        event = to_event(line, user_id)
        if event is None:
            continue
        if not interactive:
            console.print(f"› {escape(clean(line))}", style="dim")
        replies = await dispatcher.handle(event)
        number = 1
        for reply in replies:
            console.print(escape(render_reply(reply, number)))
            number += len(reply.all_buttons())
            console.print()
