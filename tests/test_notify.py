"""Notices: one-recipient deliveries of the outbox, recorded with the change and sent once — at
a kick right after the answer, or by the sender beside a bot, whichever process recorded them;
before reminders and broadcasts; and after a kill, sent again once the dead sender's claim has
lapsed, the rest never touched twice."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, select, text, update

from bot.app.services import Services
from bot.app.settings import Settings
from bot.channels.telegram import build_application
from bot.core.conversation import Reply
from bot.core.dispatch import Dispatcher
from bot.delivery.limiter import Limiter
from bot.delivery.notify import NOTICE, REMINDER, Notifier, Undeliverable, enqueue
from bot.delivery.outbox import utcnow
from bot.delivery.sender import run_sender
from bot.domain.paths import MIGRATIONS_DIR
from bot.storage.db import Database
from bot.storage.schema import deliveries
from tests.fake_bot_api import PTB_RETRY_AFTER_WARNING, FakeBotApi
from tests.fake_zalo import eventually
from tests.offline_telegram import TOKEN
from tests.test_broadcast_sender import configured, fake_api

ROOT = Path(__file__).resolve().parents[1]
Delivered = list[tuple[str, str]]


async def record(db: Database, user_id: str, text: str, priority: int = NOTICE) -> None:
    """A notice recorded (and committed) on Telegram, without a kick."""
    async with db.write() as conn:
        await enqueue(conn, "telegram", user_id, Reply(text), priority)


async def rows(db: Database) -> dict[str, Any]:
    """The notice rows by user id."""
    d = deliveries
    async with db.read() as conn:
        result = await conn.execute(select(d).where(d.c.broadcast_id.is_(None)))
        return {row.user_id: row for row in result}


def notifier_with(
    db: Database, delivered: Delivered, fail: set[str] | None = None, **options: Any
) -> Notifier:
    """A notifier on Telegram whose sender notes what it sent (and fails for `fail`)."""
    notifier = Notifier(db, **options)

    async def sender(user_id: str, replies: list[Reply]) -> None:
        if user_id in (fail or set()):
            raise ConnectionError("network down")
        if user_id == "blocked":
            raise Undeliverable("Forbidden: bot was blocked by the user")
        delivered.extend((user_id, r.text) for r in replies)

    notifier.register("telegram", sender)
    return notifier


async def test_a_kicked_notice_is_sent_once_and_marked(services: Services) -> None:
    delivered: Delivered = []
    notifier = notifier_with(services.db, delivered)
    await record(services.db, "1", "Đóng góp CS-26-00001 đã được xác nhận.")
    notifier.kick()
    await notifier.settled()
    assert delivered == [("1", "Đóng góp CS-26-00001 đã được xác nhận.")]
    row = (await rows(services.db))["1"]
    assert (row.state, row.attempts, row.last_error) == ("sent", 1, None)
    assert await notifier.flush() == 0  # nothing left
    assert len(delivered) == 1


async def test_a_failed_notice_is_sent_again_after_its_backoff_and_a_blocked_one_never(
    services: Services,
) -> None:
    delivered: Delivered = []
    fail = {"2"}
    notifier = notifier_with(services.db, delivered, fail, backoff_base=60)
    await record(services.db, "2", "Nhắc hẹn")
    await record(services.db, "blocked", "?")
    notifier.kick()
    await notifier.settled()
    state = await rows(services.db)
    assert (state["2"].state, state["2"].attempts, state["2"].last_error) == (
        "pending",
        1,
        "network down",
    )
    assert state["blocked"].state == "blocked" and "blocked" in state["blocked"].last_error
    fail.clear()
    assert await notifier.flush() == 0  # not yet: it waits 30–60 s
    async with services.db.write() as conn:  # … and the wait has passed
        await conn.execute(
            update(deliveries)
            .where(deliveries.c.state == "pending")
            .values(next_try_at=utcnow() - timedelta(seconds=1))
        )
    assert await notifier.flush() == 1
    assert delivered == [("2", "Nhắc hẹn")]
    state = await rows(services.db)
    assert (state["2"].state, state["2"].attempts) == ("sent", 2)
    assert state["blocked"].attempts == 1  # never tried again


async def test_a_notice_fails_for_good_after_its_attempts(services: Services) -> None:
    delivered: Delivered = []
    notifier = notifier_with(services.db, delivered, {"3"}, backoff_base=0.001, max_attempts=3)
    await record(services.db, "3", "Thông báo")
    for _ in range(3):
        await asyncio.sleep(0.01)
        await notifier.flush()
    row = (await rows(services.db))["3"]
    assert (row.state, row.attempts) == ("failed", 3) and delivered == []


async def test_a_flush_and_a_kick_of_the_same_notice_send_it_once(services: Services) -> None:
    delivered: Delivered = []
    notifier = notifier_with(services.db, delivered)
    await record(services.db, "3", "Thông báo")
    notifier.kick()  # its task has not run yet
    assert await notifier.flush() == 1
    await notifier.settled()
    assert delivered == [("3", "Thông báo")]


async def test_a_kick_also_sends_what_was_left_from_before_and_what_others_recorded(
    services: Services, settings: Settings
) -> None:
    await record(services.db, "4", "Từ hôm qua")  # recorded before a restart
    delivered: Delivered = []
    notifier = notifier_with(services.db, delivered)
    await record(services.db, "5", "Mới")
    notifier.kick()
    await notifier.settled()
    assert sorted(delivered) == [("4", "Từ hôm qua"), ("5", "Mới")]
    other = Database(settings.db_url)  # another process on the same file
    try:
        await record(other, "7", "Của tiến trình khác")
    finally:
        await other.close()
    await record(services.db, "6", "Sau đó")
    notifier.kick()
    await notifier.settled()
    assert sorted(delivered[2:]) == [("6", "Sau đó"), ("7", "Của tiến trình khác")]


async def test_the_sender_beside_a_bot_sends_what_another_process_recorded(
    services: Services, settings: Settings
) -> None:
    """Nobody kicks: the sender that runs beside every bot finds the notice on its own."""
    delivered: Delivered = []

    async def sender(user_id: str, replies: list[Reply]) -> None:
        delivered.extend((user_id, r.text) for r in replies)

    services.notifier.register("telegram", sender)
    stop = asyncio.Event()
    sender = asyncio.create_task(run_sender(services, {}, stop))
    try:
        await asyncio.sleep(0.2)  # it has looked once and found nothing
        other = Database(settings.db_url)
        try:
            await record(other, "8", "Đóng góp của bạn đã được xác nhận.")
        finally:
            await other.close()
        await eventually(lambda: bool(delivered), within=3)
    finally:
        stop.set()
        await sender
    assert delivered == [("8", "Đóng góp của bạn đã được xác nhận.")]
    assert (await rows(services.db))["8"].state == "sent"


async def test_contribution_notices_go_before_reminders(services: Services) -> None:
    for user_id in ("r1", "r2", "r3"):
        await record(services.db, user_id, "Nhắc hẹn", priority=REMINDER)
    await record(services.db, "n1", "Đã xác nhận")  # recorded last, sent first
    delivered: Delivered = []
    notifier = notifier_with(services.db, delivered, in_flight=1)
    assert await notifier.flush() == 4
    assert [user_id for user_id, _ in delivered] == ["n1", "r1", "r2", "r3"]


async def test_a_killed_senders_notices_are_sent_again_once_its_lease_lapses(
    services: Services, settings: Settings
) -> None:
    """Two senders on one SQLite file. The first claims its window and dies before any
    result; the second sends the rest at once, and the dead one's claims after their lease."""
    for n in range(5):
        await record(services.db, f"k{n}", f"Thông báo {n}")
    first_db = Database(settings.db_url)
    hung = asyncio.Event()

    async def never_answers(user_id: str, replies: list[Reply]) -> None:
        hung.set()
        await asyncio.Event().wait()

    first = Notifier(first_db, in_flight=2, lease_seconds=0.6)
    first.register("telegram", never_answers)
    first.kick()
    await asyncio.wait_for(hung.wait(), 5)
    assert first._task is not None
    first._task.cancel()  # killed: nothing more is written
    await asyncio.gather(first._task, return_exceptions=True)
    await first_db.close()
    claimed = {u for u, row in (await rows(services.db)).items() if row.state == "sending"}
    assert claimed == {"k0", "k1"}  # its window, in order; the rest untouched

    delivered: Delivered = []
    second = notifier_with(services.db, delivered, lease_seconds=0.6)
    assert await second.flush() == 3  # the unclaimed ones, at once
    assert await second.flush() == 0  # the dead sender's lease still holds
    await asyncio.sleep(0.7)
    assert await second.flush() == 2
    assert sorted(u for u, _ in delivered) == ["k0", "k1", "k2", "k3", "k4"]  # each once
    assert {row.state for row in (await rows(services.db)).values()} == {"sent"}


async def test_a_slow_send_keeps_its_claim_past_the_lease(
    services: Services, settings: Settings
) -> None:
    """The lease is renewed while a notice is being sent: no second sender takes it."""
    await record(services.db, "slow", "Thông báo")
    slow_db = Database(settings.db_url)
    started = asyncio.Event()
    slow_delivered: Delivered = []

    async def slow(user_id: str, replies: list[Reply]) -> None:
        started.set()
        await asyncio.sleep(1.0)
        slow_delivered.append((user_id, replies[0].text))

    first = Notifier(slow_db, lease_seconds=0.3)
    first.register("telegram", slow)
    try:
        first.kick()
        await asyncio.wait_for(started.wait(), 5)
        await asyncio.sleep(0.5)  # past the first lease
        delivered: Delivered = []
        assert await notifier_with(services.db, delivered, lease_seconds=0.3).flush() == 0
        await first.settled()
    finally:
        await slow_db.close()
    assert slow_delivered == [("slow", "Thông báo")] and delivered == []
    assert (await rows(services.db))["slow"].state == "sent"


@PTB_RETRY_AFTER_WARNING
async def test_on_telegram_a_notice_is_paced_and_refusals_are_told_apart(
    services: Services, dispatcher: Dispatcher
) -> None:
    """Through the Telegram channel to the fake Bot API: sent; blocked (never again); chat not
    found (failed at once); a 429 costs no attempt and the notice goes after retry_after."""
    for chat in (31, 32, 33, 34):
        await record(services.db, str(chat), f"Thông báo cho {chat}")
    async with fake_api() as (fake, url):
        fake.blocked.add(32)
        fake.missing.add(33)
        fake.force_429[34] = 1
        settings = configured(services, url)
        app = build_application(settings, dispatcher, limiter=Limiter.from_settings(settings))
        await app.initialize()
        try:
            assert await services.notifier.flush() == 1
            state = await rows(services.db)
            assert {u: (r.state, r.attempts) for u, r in state.items()} == {
                "31": ("sent", 1),
                "32": ("blocked", 1),
                "33": ("failed", 1),
                "34": ("pending", 0),  # Telegram's pace, not the person's fault
            }
            assert await services.notifier.flush() == 0  # retry_after: 1 s
            await asyncio.sleep(1.05)
            assert await services.notifier.flush() == 1
        finally:
            await app.shutdown()
    assert [(s.chat_id, s.text) for s in fake.accepted] == [
        (31, "Thông báo cho 31"),
        (34, "Thông báo cho 34"),
    ]
    assert sorted(fake.errors) == [(32, 403), (33, 400)]
    assert (await rows(services.db))["34"].state == "sent"


# --- a real process, SIGKILLed -----------------------------------------------------------------

IN_FLIGHT = 8
RATE = 80
PEOPLE = list(range(20_001, 20_241))
# `chungsuc serve` as an operator runs it: Telegram by webhook, the sender and scheduler beside.
SERVE = "import sys; from bot.interfaces.cli.main import main; sys.argv[0] = 'chungsuc'; main()"


async def start_bot(env: dict[str, str]) -> asyncio.subprocess.Process:
    """`chungsuc serve` on a free port, in a new process."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SERVE,
        "serve",
        "--port",
        "0",
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def claimed_notices(db: Database) -> set[int]:
    """Chats whose notice is claimed and not recorded: the only candidates for duplicates."""
    d = deliveries
    async with db.read() as conn:
        result = await conn.execute(
            select(d.c.user_id).where(d.c.broadcast_id.is_(None), d.c.state == "sending")
        )
        return {int(user_id) for (user_id,) in result}


def reached(fake: FakeBotApi, count: int) -> bool:
    return len(fake.accepted) >= count


@pytest.mark.slow
async def test_notices_resume_after_sigkill(services: Services, settings: Settings) -> None:
    """240 notices recorded here, sent by a bot process that nobody kicks. Killed twice with
    SIGKILL: nobody skipped, duplicates only among the claims left at the kills, and those
    claims untouched by the next process until their lease has lapsed."""
    for person in PEOPLE:
        await record(services.db, str(person), f"Đóng góp của bạn ({person}) đã được xác nhận.")
    async with fake_api(rate=RATE, burst=3) as (fake, url):
        env = os.environ | {
            "CHUNGSUC_DB_URL": settings.db_url,
            "CHUNGSUC_TELEGRAM_TOKEN": TOKEN,
            "CHUNGSUC_TELEGRAM_API_URL": f"{url}/bot",
            "CHUNGSUC_TELEGRAM_WEBHOOK_SECRET": "notice-crash-test",
            "CHUNGSUC_BROADCAST_RATE": str(RATE),
            "CHUNGSUC_BROADCAST_IN_FLIGHT": str(IN_FLIGHT),
            "CHUNGSUC_LOG_LEVEL": "WARNING",
        }
        env.pop("CHUNGSUC_CONFIG", None)
        predicted = 0  # accepted by Telegram, not recorded at a kill
        leased: set[int] = set()
        for target in (60, 150):
            process = await start_bot(env)
            await eventually(partial(reached, fake, target), within=30)
            process.send_signal(signal.SIGKILL)
            await process.communicate()
            assert process.returncode == -signal.SIGKILL
            await asyncio.sleep(0.2)  # requests written before the kill still arrive
            unrecorded = await claimed_notices(services.db)
            assert leased <= unrecorded  # the second process left the first one's claims
            assert len(unrecorded - leased) <= IN_FLIGHT
            predicted += len((unrecorded - leased) & {s.chat_id for s in fake.accepted})
            leased = unrecorded
        assert leased  # killed mid-window, both times
        async with services.db.write() as conn:  # 30 s later: the dead senders' leases lapse
            await conn.execute(
                update(deliveries)
                .where(deliveries.c.broadcast_id.is_(None), deliveries.c.state == "sending")
                .values(next_try_at=utcnow() - timedelta(seconds=1))
            )
        process = await start_bot(env)
        try:
            await eventually(lambda: {s.chat_id for s in fake.accepted} >= set(PEOPLE), 30)
            for _ in range(300):  # and the last results recorded
                states = {row.state for row in (await rows(services.db)).values()}
                if states == {"sent"}:
                    break
                await asyncio.sleep(0.05)
        finally:
            process.send_signal(signal.SIGTERM)
            _, err = await process.communicate()
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert process.returncode in (0, -signal.SIGTERM) and b"Traceback" not in err, err
    assert states == {"sent"}
    received = Counter(s.chat_id for s in fake.accepted)
    assert sorted(received) == PEOPLE  # nobody skipped
    duplicates = sum(n - 1 for n in received.values())
    assert duplicates == predicted <= 2 * IN_FLIGHT
    print(f"\n{duplicates} duplicate notices after 2 SIGKILLs (bound: {IN_FLIGHT} per kill)")


# --- the migration that made notices deliveries ------------------------------------------------


def _migrate_to(revision: str, down: bool = False) -> Callable[[Connection], None]:
    def run(connection: Connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)

    return run


async def test_the_old_notifications_become_deliveries_and_back(tmp_path: Path) -> None:
    """Sent, waiting and given-up notices keep what they were through 0005, down and up."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'old.sqlite3'}")
    at = "2026-11-28 10:00:00.000000"
    old = (
        "INSERT INTO notifications (channel, user_id, text, buttons, created_at, sent_at,"
        " attempts, last_error) VALUES"
        f" ('telegram', 'sent', 'Đã xác nhận', '[]', '{at}', '{at}', 1, NULL),"
        f" ('zalo', 'waiting', 'Bị từ chối', '[[[\"contrib:mine\", \"Của tôi\"]]]', '{at}',"
        " NULL, 2, 'network down'),"
        f" ('telegram', 'gave-up', 'Hoàn thành', '[]', '{at}', NULL, 5, 'Forbidden')"
    )
    try:
        async with db.write() as conn:
            await conn.run_sync(_migrate_to("0004"))
            await conn.execute(text(old))
        await db.migrate()
        notices = await rows(db)
        assert {u: (r.state, r.attempts, r.priority) for u, r in notices.items()} == {
            "sent": ("sent", 1, NOTICE),
            "waiting": ("pending", 2, NOTICE),
            "gave-up": ("failed", 5, NOTICE),
        }
        assert notices["waiting"].buttons == [[["contrib:mine", "Của tôi"]]]
        assert notices["waiting"].channel == "zalo"
        async with db.write() as conn:
            await conn.run_sync(_migrate_to("0004", down=True))
            back = await conn.execute(
                text("SELECT user_id, sent_at IS NOT NULL, attempts FROM notifications")
            )
            assert sorted(back.all()) == [("gave-up", 0, 5), ("sent", 1, 1), ("waiting", 0, 2)]
    finally:
        await db.close()


async def test_a_notice_recorded_claimed_is_sent_by_its_kick_without_a_claim_of_its_own(
    services: Services,
) -> None:
    delivered: Delivered = []
    notifier = notifier_with(services.db, delivered)
    claim = notifier.claim_until("telegram", "7")
    assert claim is not None and notifier.claim_until("zalo", "7") is None  # zalo: not here
    async with services.db.write() as conn:
        notice = await enqueue(conn, "telegram", "7", Reply("Đã xác nhận"), claim_until=claim)
    assert (await rows(services.db))["7"].state == "sending"
    notifier.kick(notice)
    await notifier.settled()
    assert delivered == [("7", "Đã xác nhận")]
    assert (await rows(services.db))["7"].state == "sent"


async def test_a_claimed_notice_whose_process_died_before_sending_is_sent_by_another(
    services: Services,
) -> None:
    """Recorded claimed, then the process was killed before its kick: nothing is lost."""
    first = notifier_with(services.db, [])
    async with services.db.write() as conn:
        await enqueue(
            conn, "telegram", "8", Reply("Cảm ơn"), claim_until=first.claim_until("telegram", "8")
        )
    delivered: Delivered = []
    second = notifier_with(services.db, delivered)
    assert await second.flush() == 0  # the claim is the first process's until it lapses
    async with services.db.write() as conn:  # … and it lapses
        await conn.execute(update(deliveries).values(next_try_at=utcnow() - timedelta(seconds=1)))
    assert await second.flush() == 1
    assert delivered == [("8", "Cảm ơn")]
    assert await second.flush() == 0  # once
