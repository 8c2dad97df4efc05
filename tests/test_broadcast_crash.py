"""Restarts and the command: stop and resume, one sender per broadcast, SIGKILL, the CLI.

Kill the sender with SIGKILL mid-broadcast, start it again: everyone gets the message. The
sender is the real `chungsuc broadcast send` command in a subprocess, on a SQLite file,
against the fake Bot API served by this test. A person may get the message twice only if
Telegram had accepted it and the kill came before the outbox recorded it; such rows are in
state "sending" at the kill, and there are at most broadcast_in_flight of them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
import typer
from sqlalchemy import insert, select, update
from typer.testing import CliRunner, Result

from bot.app.services import Services
from bot.app.settings import Settings
from bot.delivery.outbox import claim, get_broadcast, reset_claims, start, utcnow
from bot.delivery.sender import LEASE_SECONDS, lease_name
from bot.delivery.transport import progress
from bot.interfaces.cli.broadcast import register
from bot.storage.schema import deliveries, schedules
from tests.fake_bot_api import FakeBotApi
from tests.fake_zalo import eventually
from tests.offline_telegram import TOKEN
from tests.test_broadcast_sender import fake_api, new_broadcast, sender_for, subscribe_many

ROOT = Path(__file__).resolve().parents[1]
# The command as the lead wires it into `chungsuc`: a Typer app with `broadcast` registered.
CLI = (
    "import typer; from bot.interfaces.cli.broadcast import register; "
    "app = typer.Typer(); register(app); app()"
)
IN_FLIGHT = 8
RATE = 80
PEOPLE = list(range(10_001, 10_241))


async def start_sender(env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    """`broadcast send ARGS` in a new process."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CLI,
        "broadcast",
        "send",
        *args,
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


def reached(fake: FakeBotApi, count: int) -> bool:
    """Whether the fake has accepted `count` messages."""
    return len(fake.accepted) >= count


async def sending_rows(services: Services, broadcast_id: int) -> set[int]:
    """Chats whose delivery is claimed and not recorded: the only candidates for duplicates."""
    async with services.db.read() as conn:
        rows = await conn.execute(
            select(deliveries.c.user_id).where(
                deliveries.c.broadcast_id == broadcast_id, deliveries.c.state == "sending"
            )
        )
        return {int(user_id) for (user_id,) in rows}


@pytest.mark.slow
async def test_resume_after_sigkill(services: Services, settings: Settings) -> None:
    """Two SIGKILLs mid-run, a restart: nobody skipped, duplicates as predicted."""
    await subscribe_many(services.db, PEOPLE)
    broadcast_id = await new_broadcast(services.db)
    async with fake_api(rate=RATE, burst=3) as (fake, url):
        env = os.environ | {
            "CHUNGSUC_DB_URL": settings.db_url,
            "CHUNGSUC_TELEGRAM_TOKEN": TOKEN,
            "CHUNGSUC_TELEGRAM_API_URL": f"{url}/bot",
            "CHUNGSUC_BROADCAST_RATE": str(RATE),
            "CHUNGSUC_BROADCAST_IN_FLIGHT": str(IN_FLIGHT),
            "CHUNGSUC_LOG_LEVEL": "WARNING",
        }
        env.pop("CHUNGSUC_CONFIG", None)
        predicted = 0  # accepted by Telegram, not recorded at a kill
        for number, target in enumerate((60, 150)):
            args = [str(broadcast_id)] + (["--takeover"] if number else [])
            process = await start_sender(env, *args)
            await eventually(partial(reached, fake, target), within=30)
            process.send_signal(signal.SIGKILL)
            await process.communicate()
            assert process.returncode == -signal.SIGKILL
            await asyncio.sleep(0.2)  # requests written before the kill still arrive
            unrecorded = await sending_rows(services, broadcast_id)
            assert len(unrecorded) <= IN_FLIGHT
            predicted += len(unrecorded & {s.chat_id for s in fake.accepted})
            if number == 0:  # the dead sender's lease still holds the broadcast
                busy = await start_sender(env, str(broadcast_id))
                _, err = await busy.communicate()
                assert busy.returncode == 1 and "Một tiến trình khác".encode() in err
        process = await start_sender(env, str(broadcast_id), "--takeover")
        _, err = await process.communicate()
        assert process.returncode == 0, err.decode()
    received = Counter(s.chat_id for s in fake.accepted)
    assert sorted(received) == PEOPLE  # nobody skipped
    duplicates = sum(n - 1 for n in received.values())
    assert duplicates == predicted <= 2 * IN_FLIGHT
    print(f"\n{duplicates} duplicates after 2 SIGKILLs (bound: {IN_FLIGHT} per kill)")
    assert b"done" in err


async def test_stop_and_resume_sends_everyone_once(services: Services) -> None:
    """A stop leaves nothing claimed; the next start sends the rest, once."""
    await subscribe_many(services.db, list(range(8001, 8041)))
    broadcast_id = await new_broadcast(services.db)
    async with (
        fake_api(rate=20, burst=2) as (fake, url),
        sender_for(services, url, broadcast_rate=20) as sender,
    ):
        stop = asyncio.Event()
        task = asyncio.create_task(sender.send(broadcast_id, stop))
        await asyncio.sleep(0.5)
        stop.set()
        assert await task == "stopped"
        counts = await progress(services.db, broadcast_id)
        assert counts is not None and counts["sending"] == 0 and 0 < counts["sent"] < 40
        assert await sender.send(broadcast_id, asyncio.Event()) == "done"
    assert sorted(s.chat_id for s in fake.accepted) == list(range(8001, 8041))


async def test_a_takeover_sends_the_dead_senders_claims_at_once(services: Services) -> None:
    """Rows a killed sender had claimed are due again at the takeover, not once their lease ends."""
    await subscribe_many(services.db, [9401, 9402, 9403])
    broadcast_id = await new_broadcast(services.db)
    b = await get_broadcast(services.db, broadcast_id)
    assert b is not None
    now = utcnow()
    await start(services.db, b, now, 7)
    lease = now + timedelta(seconds=LEASE_SECONDS)
    async with services.db.write() as conn:
        dead = await claim(conn, broadcast_id, ["telegram"], 0, now, 2, lease)
    assert len(dead) == 2

    assert await reset_claims(services.db, broadcast_id) == 2

    async with services.db.write() as conn:
        again = await claim(conn, broadcast_id, ["telegram"], 0, now, 3, lease)
    assert [d.id for d in again][:2] == [d.id for d in dead] and len(again) == 3


async def test_one_sender_per_broadcast(services: Services) -> None:
    """A second sender on the same broadcast is turned away by the lease."""
    await subscribe_many(services.db, list(range(8101, 8121)))
    broadcast_id = await new_broadcast(services.db)
    async with fake_api() as (fake, url), sender_for(services, url) as sender:
        task = asyncio.create_task(sender.send(broadcast_id, asyncio.Event()))
        # The first is sending (so it holds the lease) and has most of 20 messages to go,
        # however slowly a loaded machine runs it.
        await eventually(lambda: len(fake.accepted) > 0, within=30)
        assert await sender.send(broadcast_id, asyncio.Event()) == "busy"
        assert await task == "done"


# --- the command ------------------------------------------------------------------------------


async def test_broadcast_commands(
    services: Services, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """list, show, cancel, and send refusing what it should (the CLI runs in a thread)."""
    for name in [n for n in os.environ if n.startswith("CHUNGSUC_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CHUNGSUC_DB_URL", settings.db_url)
    await subscribe_many(services.db, [9101, 9102])
    now_id = await new_broadcast(services.db, title="Họp thôn Nà Pài")
    later_id = await new_broadcast(services.db, send_at=utcnow() + timedelta(days=1))
    app = typer.Typer()
    register(app)

    async def run(*args: str) -> Result:
        return await asyncio.to_thread(CliRunner().invoke, app, ["broadcast", *args])

    listed = await run("list")
    assert listed.exit_code == 0 and "Họp thôn Nà Pài" in listed.stdout
    assert "scheduled" in listed.stdout
    later = await run("send", str(later_id))
    assert later.exit_code == 1 and "add --now" in later.stderr
    no_channel = await run("send", str(now_id))
    assert no_channel.exit_code == 2 and "CHUNGSUC_TELEGRAM_TOKEN" in no_channel.stderr
    cancelled = await run("cancel", str(later_id))
    assert cancelled.exit_code == 0, cancelled.output
    assert f"Cancelled broadcast {later_id}" in cancelled.stdout
    assert (await run("cancel", str(later_id))).exit_code == 1
    shown = await run("show", str(later_id))
    assert shown.exit_code == 0 and "(cancelled)" in shown.stdout
    assert (await run("show", "999")).exit_code == 1


def cli_env(monkeypatch: pytest.MonkeyPatch, settings: Settings, **values: str) -> None:
    """The command's settings: this test's database, nothing inherited."""
    for name in [n for n in os.environ if n.startswith("CHUNGSUC_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CHUNGSUC_DB_URL", settings.db_url)
    for name, value in values.items():
        monkeypatch.setenv(f"CHUNGSUC_{name}", value)


async def run_command(*args: str) -> Result:
    """`broadcast ARGS` in a thread, so the fake Bot API keeps answering in this loop."""
    app = typer.Typer()
    register(app)
    return await asyncio.to_thread(CliRunner().invoke, app, ["broadcast", *args])


async def crashed_midway(services: Services, broadcast_id: int, lease_ends: datetime) -> None:
    """What a SIGKILLed sender leaves: the broadcast sending, one delivery sent, two claimed
    (in flight at the kill), the rest pending, and its lease, which ends at `lease_ends`."""
    b = await get_broadcast(services.db, broadcast_id)
    assert b is not None
    await start(services.db, b, utcnow(), 7)
    async with services.db.write() as conn:
        ids = (
            await conn.execute(
                select(deliveries.c.id)
                .where(deliveries.c.broadcast_id == broadcast_id)
                .order_by(deliveries.c.id)
            )
        ).scalars()
        first, *claimed = list(ids)[:3]
        await conn.execute(update(deliveries).where(deliveries.c.id == first).values(state="sent"))
        await conn.execute(
            update(deliveries).where(deliveries.c.id.in_(claimed)).values(state="sending")
        )
        await conn.execute(
            insert(schedules).values(
                name=lease_name(broadcast_id), next_run_at=lease_ends, last_run_at=utcnow()
            )
        )


async def test_after_a_crash_send_resumes_with_no_flag_once_the_lease_has_ended(
    services: Services, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    people = list(range(9201, 9211))
    await subscribe_many(services.db, people)
    broadcast_id = await new_broadcast(services.db)
    await crashed_midway(services, broadcast_id, utcnow() - timedelta(seconds=1))
    async with fake_api() as (fake, url):
        cli_env(monkeypatch, settings, TELEGRAM_TOKEN=TOKEN, TELEGRAM_API_URL=f"{url}/bot")

        resumed = await run_command("send", str(broadcast_id))

    assert resumed.exit_code == 0, resumed.output
    assert f"Broadcast {broadcast_id} done" in resumed.stderr
    assert sorted(s.chat_id for s in fake.accepted) == people[1:]  # the sent one is not resent
    counts = await progress(services.db, broadcast_id)
    assert counts is not None and counts["sent"] == len(people) and counts.remaining == 0


async def test_a_live_lease_refuses_and_says_until_when_and_what_takeover_does(
    services: Services, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    await subscribe_many(services.db, [9301, 9302])
    broadcast_id = await new_broadcast(services.db)
    lease_ends = datetime(2026, 11, 29, 4, 30, 15, tzinfo=UTC)  # 11:30 in Vietnam
    frozen = lease_ends - timedelta(seconds=20)
    await crashed_midway(services, broadcast_id, lease_ends)
    monkeypatch.setattr("bot.delivery.sender.utcnow", lambda: frozen)
    monkeypatch.setattr("bot.interfaces.cli.broadcast.utcnow", lambda: frozen)
    async with fake_api() as (fake, url):
        cli_env(monkeypatch, settings, TELEGRAM_TOKEN=TOKEN, TELEGRAM_API_URL=f"{url}/bot")

        refused = await run_command("send", str(broadcast_id))

    assert refused.exit_code == 1, refused.output
    message = " ".join(refused.stderr.split())
    assert (
        f"Một tiến trình khác đang gửi thông báo {broadcast_id}: nó giữ quyền gửi đến "
        "2026-11-29 11:30 +07 (còn 20 giây)" in message
    )
    assert "--takeover giành quyền ngay" in message and "nhận hai lần" in message
    assert fake.accepted == []


async def test_list_and_show_give_vietnam_time(
    services: Services, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli_env(monkeypatch, settings)
    at = datetime(2030, 11, 30, 11, 0, tzinfo=UTC)  # 18:00 in Vietnam
    broadcast_id = await new_broadcast(services.db, title="Họp tổ dân phố", send_at=at)

    listed = await run_command("list")
    shown = await run_command("show", str(broadcast_id))
    too_early = await run_command("send", str(broadcast_id))

    line = next(x for x in listed.stdout.splitlines() if "Họp tổ dân phố" in x)
    assert "2030-11-30 18:00 +07" in line and "UTC" not in line
    assert "send at: 2030-11-30 18:00 +07" in shown.stdout
    assert "scheduled for 2030-11-30 18:00 +07; add --now" in too_early.stderr
