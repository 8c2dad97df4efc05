"""The terminal channel: `chungsuc chat`. Buttons become numbered options; typing the number
presses the button. Works interactively and with piped stdin, one message per line."""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from rich.console import Console
from rich.markup import escape

from bot.core import Button, Incoming, Reply
from bot.dispatch import Dispatcher
from bot.text import clean

CHANNEL = "terminal"


def render_reply(reply: Reply, first_number: int = 1) -> str:
    """A reply as terminal text, its buttons numbered from first_number."""
    lines = [reply.text]
    for offset, button in enumerate(reply.all_buttons()):
        lines.append(f"  {first_number + offset}. {button.label}")
    return "\n".join(lines)


def to_event(line: str, user_id: str, offered: list[Button]) -> Incoming | None:
    """What a typed line means: a number picks an offered button, anything else is text."""
    text = clean(line)
    if not text:
        return None
    if text.isdigit() and 1 <= int(text) <= len(offered):
        return Incoming(CHANNEL, user_id, button=offered[int(text) - 1].id)
    return Incoming(CHANNEL, user_id, text=text)


async def run_terminal(
    dispatcher: Dispatcher,
    user_id: str = "local",
    stdin: TextIO | None = None,
    console: Console | None = None,
) -> None:
    stdin = stdin or sys.stdin
    console = console or Console(highlight=False, soft_wrap=True)
    interactive = stdin.isatty()
    if interactive:
        console.print("[dim]Chung Sức — gõ /start để bắt đầu, Ctrl+D để thoát.[/dim]")
    offered: list[Button] = []
    while True:
        if interactive:
            console.print("[bold]›[/bold] ", end="")
        line = await asyncio.to_thread(stdin.readline)
        if not line:
            break
        event = to_event(line, user_id, offered)
        if event is None:
            continue
        if not interactive:
            console.print(f"› {escape(clean(line))}", style="dim")
        replies = await dispatcher.handle(event)
        offered = []
        for reply in replies:
            console.print(escape(render_reply(reply, len(offered) + 1)))
            offered.extend(reply.all_buttons())
            console.print()
