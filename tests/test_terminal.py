"""The terminal chat's notices: one person at the keyboard, the others' notices wait for them."""

from __future__ import annotations

import io
import logging

import pytest
from rich.console import Console
from sqlalchemy import select

from bot.app.services import Services
from bot.channels.terminal import run_terminal
from bot.core.conversation import Button, Reply
from bot.core.dispatch import Dispatcher
from bot.delivery.notify import enqueue
from bot.storage.schema import deliveries


async def notice(services: Services, user_id: str, text: str) -> None:
    """A notice recorded and kicked, as an official's confirmation records one."""
    async with services.db.write() as conn:
        await enqueue(conn, "terminal", user_id, Reply(text))
    services.notifier.kick()
    await services.notifier.settled()


async def chat(dispatcher: Dispatcher, user_id: str, typed: str = "") -> io.StringIO:
    """`chungsuc chat --user USER_ID` with `typed` piped in; what it printed."""
    screen = io.StringIO()
    console = Console(file=screen, width=100, highlight=False)
    await run_terminal(dispatcher, user_id, stdin=io.StringIO(typed), console=console)
    return screen


async def test_notices_reach_the_terminal_user_at_the_keyboard_and_wait_for_the_others(
    services: Services, dispatcher: Dispatcher, caplog: pytest.LogCaptureFixture
) -> None:
    async with services.db.write() as conn:  # recorded before anyone opened the chat
        await enqueue(conn, "terminal", "local", Reply("Cho local: đã xác nhận"))
        await enqueue(conn, "terminal", "bob", Reply("Cho Bob: đã xác nhận"))

    with caplog.at_level(logging.INFO):
        screen = await chat(dispatcher, "local")
        await notice(services, "bob", "Cho Bob: bị từ chối")  # while local is at the keyboard
        await notice(services, "local", "Cho local: đã hoàn thành")
        await services.notifier.flush()

    assert "🔔 Cho local: đã xác nhận" in screen.getvalue()
    assert "🔔 Cho local: đã hoàn thành" in screen.getvalue()
    assert "Bob" not in screen.getvalue()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    async with services.db.read() as conn:
        waiting = (
            await conn.execute(
                select(deliveries.c.attempts, deliveries.c.last_error).where(
                    deliveries.c.user_id == "bob", deliveries.c.state == "pending"
                )
            )
        ).all()
    assert waiting == [(0, None), (0, None)]  # not tried, not failed: waiting for Bob

    screen = await chat(dispatcher, "bob")  # Bob opens the chat

    assert "🔔 Cho Bob: đã xác nhận" in screen.getvalue()
    assert "🔔 Cho Bob: bị từ chối" in screen.getvalue()
    assert "local" not in screen.getvalue()


async def test_a_notice_in_the_middle_of_a_step_numbers_nothing_and_its_item_can_be_typed(
    services: Services, dispatcher: Dispatcher
) -> None:
    """A notice's "1. Đóng góp của tôi" printed while the village step offered "1. Nà Làng":
    the villager typed 1 for the notice and got a village. Its items are now listed to be
    typed, and the step is asked again after the list, numbered on from it."""
    await chat(dispatcher, "local", "/start\n1\ncho don\n/dongop\n")  # at the village step
    async with services.db.write() as conn:
        mine = Reply("Đã xác nhận CS-26-00001.", [[Button("contrib:mine", "Đóng góp của tôi")]])
        await enqueue(conn, "terminal", "local", mine)

    screen = (await chat(dispatcher, "local", "đóng góp của tôi\n3\n")).getvalue()

    notice_lines = screen.split("🔔", 1)[1].split("›", 1)[0]
    assert "• Đóng góp của tôi" in notice_lines and "  1. " not in notice_lines
    assert "Bạn chưa đăng ký đóng góp nào." in screen  # the typed item: the person's list
    # the list's buttons, then the step again (3. Nà Làng): the pledge went on
    assert "3. Nà Làng" in screen and "bạn muốn góp gì?" in screen
