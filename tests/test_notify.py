"""Notices: recorded with the change, sent once — by a kick right after the answer, or by a
full flush for the ones a kick could not send."""

from __future__ import annotations

from sqlalchemy import select

from bot.core import Reply
from bot.notify import MAX_ATTEMPTS, Notice, Notifier, Undeliverable, enqueue
from bot.services import Services
from bot.storage.schema import notifications


async def record(services: Services, user_id: str, text: str) -> Notice:
    async with services.db.write() as conn:
        return await enqueue(conn, "telegram", user_id, Reply(text))


async def rows(services: Services) -> dict[str, tuple[bool, int, str | None]]:
    """user → (sent, attempts, last error)."""
    n = notifications
    async with services.db.read() as conn:
        result = await conn.execute(select(n.c.user_id, n.c.sent_at, n.c.attempts, n.c.last_error))
        return {r.user_id: (r.sent_at is not None, r.attempts, r.last_error) for r in result}


def notifier_with(services: Services, delivered: list[tuple[str, str]], fail: set[str]) -> Notifier:
    notifier = Notifier(services.db)

    async def sender(user_id: str, replies: list[Reply]) -> None:
        if user_id in fail:
            raise ConnectionError("network down")
        if user_id == "blocked":
            raise Undeliverable("Forbidden: bot was blocked by the user")
        delivered.extend((user_id, r.text) for r in replies)

    notifier.register("telegram", sender)
    return notifier


async def test_a_kicked_notice_is_sent_once_and_marked(services: Services) -> None:
    delivered: list[tuple[str, str]] = []
    notifier = notifier_with(services, delivered, fail=set())
    notice = await record(services, "1", "Đóng góp CS-26-00001 đã được xác nhận.")
    notifier.kick(notice)
    await notifier.settled()
    assert delivered == [("1", "Đóng góp CS-26-00001 đã được xác nhận.")]
    assert (await rows(services))["1"] == (True, 1, None)
    assert await notifier.flush() == 0  # nothing left for the full read
    assert len(delivered) == 1


async def test_a_notice_that_failed_at_the_kick_is_sent_by_a_later_flush(
    services: Services,
) -> None:
    delivered: list[tuple[str, str]] = []
    fail = {"2"}
    notifier = notifier_with(services, delivered, fail)
    notifier.kick(await record(services, "2", "Nhắc hẹn"), await record(services, "blocked", "?"))
    await notifier.settled()
    assert delivered == []
    state = await rows(services)
    assert state["2"] == (False, 1, "network down")
    assert state["blocked"][:2] == (False, MAX_ATTEMPTS)  # never tried again
    fail.clear()
    assert await notifier.flush() == 1
    assert delivered == [("2", "Nhắc hẹn")]
    assert (await rows(services))["2"][:2] == (True, 2)


async def test_a_flush_and_a_kick_of_the_same_notice_send_it_once(services: Services) -> None:
    delivered: list[tuple[str, str]] = []
    notifier = notifier_with(services, delivered, fail=set())
    notifier.kick(await record(services, "3", "Thông báo"))  # its task has not run yet
    assert await notifier.flush() == 1
    await notifier.settled()
    assert delivered == [("3", "Thông báo")]


async def test_the_first_kick_also_sends_what_was_left_from_before(services: Services) -> None:
    await record(services, "4", "Từ hôm qua")  # recorded before a restart
    delivered: list[tuple[str, str]] = []
    notifier = notifier_with(services, delivered, fail=set())
    notifier.kick(await record(services, "5", "Mới"))
    await notifier.settled()
    assert sorted(delivered) == [("4", "Từ hôm qua"), ("5", "Mới")]
    notifier.kick(await record(services, "6", "Sau đó"))
    await record(services, "7", "Của tiến trình khác")  # not kicked here
    await notifier.settled()
    assert delivered[-1] == ("6", "Sau đó")  # the next full read is a minute away
    assert (await rows(services))["7"] == (False, 0, None)
