"""Several workers on one database behave as one bot: a user's updates answered in order and
once, each scheduled job run once, a change made on one worker seen by the other within the
caches' bound. Two real stacks (Services, Dispatcher, the webhook app under uvicorn) share one
database; the inbox's own tests run on SQLite too."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from bot.app.services import Services, build_services
from bot.app.settings import Settings
from bot.core.conversation import Context, Reply
from bot.core.dispatch import Dispatcher
from bot.core.inbox import Inbox
from bot.delivery import scheduler
from bot.domain.clock import FixedClock
from bot.interfaces.server import create_app
from bot.storage import inbox as store
from bot.storage.cache import CHECK_EVERY
from bot.storage.schema import inbox, inbox_turns, schedules, status_records
from bot.storage.statuses import ImportBatch
from handlers import build_router
from tests.conftest import NOW, make_settings
from tests.fake_zalo import eventually
from tests.live_server import serve
from tests.offline_telegram import TOKEN, OfflineRequest, text_update

TG_SECRET = "tg-secret_0123456789"
TG_HEADER = "X-Telegram-Bot-Api-Secret-Token"


@pytest.fixture
async def other(services: Services, settings: Settings) -> AsyncIterator[Services]:
    """A second worker's services on the same database: its own caches, its own pool."""
    built = await build_services(settings)
    built.clock = FixedClock(NOW)
    yield built
    await built.close()


def _started(tasks: set[asyncio.Task[None]]) -> Any:
    def start(work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    return start


# --- the inbox, on both databases ------------------------------------------------------------


async def test_a_users_updates_recorded_on_two_workers_are_answered_in_order_once(
    services: Services, other: Services
) -> None:
    answered: list[tuple[str, str, int]] = []
    tasks: set[asyncio.Task[None]] = set()
    workers = [Inbox(services.db, _started(tasks)), Inbox(other.db, _started(tasks))]
    users = [f"u{i}" for i in range(8)]
    recorded = {key: asyncio.Event() for key in users}  # all of a user's updates are in
    for name, worker in zip("ab", workers, strict=True):

        async def answer(body: dict[str, Any], name: str = name) -> None:
            if body["n"] == 1:  # a slow first answer: the others arrive meanwhile
                await asyncio.wait_for(recorded[body["user"]].wait(), 10)
            await asyncio.sleep(random.uniform(0, 0.01))
            answered.append((name, body["user"], body["n"]))

        worker.register("telegram", answer)

    async def user(key: str) -> None:
        first = {"user": key, "n": 1}
        assert await workers[0].accept("telegram", f"{key}:1", key, 1, first)
        later = list(range(2, 7))
        random.shuffle(later)  # recorded out of order, on either worker, while #1 is answered
        await asyncio.gather(
            *(
                workers[n % 2].accept("telegram", f"{key}:{n}", key, n, {"user": key, "n": n})
                for n in later
            )
        )
        recorded[key].set()
        # A replay, on the other worker: recorded once, answered once.
        assert not await workers[1].accept("telegram", f"{key}:3", key, 3, {"user": key, "n": 3})

    await asyncio.gather(*(user(u) for u in users))
    await eventually(lambda: len(answered) == 6 * len(users) and not tasks, within=15)
    for key in users:
        assert [n for _, u, n in answered if u == key] == [1, 2, 3, 4, 5, 6]
    async with services.db.read() as conn:
        left = (await conn.execute(select(inbox).where(inbox.c.taken_at.is_(None)))).all()
        leases = (await conn.execute(select(inbox_turns.c.lease_until))).scalars().all()
    assert left == [] and set(leases) == {None}  # every turn given back


async def test_updates_a_hung_or_killed_worker_left_are_answered_by_another_after_its_lease(
    services: Services, other: Services
) -> None:
    answered: list[int] = []
    tasks: set[asyncio.Task[None]] = set()
    stuck = asyncio.Event()
    crashing = Inbox(services.db, _started(tasks), lease=0.5)

    async def hang(body: dict[str, Any]) -> None:
        stuck.set()
        await asyncio.sleep(3600)  # the worker dies in the middle of answering #1

    crashing.register("telegram", hang)
    survivor = Inbox(other.db, lambda work: work.close(), lease=0.5)  # answers only by sweeping

    async def answer(body: dict[str, Any]) -> None:
        answered.append(body["n"])

    survivor.register("telegram", answer)
    await crashing.accept("telegram", "k1", "u1", 1, {"n": 1})
    await asyncio.wait_for(stuck.wait(), 5)
    for n in (3, 2):
        await survivor.accept("telegram", f"k{n}", "u1", n, {"n": n})
    assert await survivor.sweep(older_than=0) == 0  # the lease still runs: the holder may live
    assert answered == []
    await asyncio.sleep(0.6)  # it renews nothing: as good as killed
    assert await survivor.sweep(older_than=0) == 1
    assert answered == [2, 3]  # #1 was taken when the worker died: lost, not answered twice
    for task in list(tasks):
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    async with other.db.read() as conn:  # the hung worker's give-back did not touch the turn
        turns = (await conn.execute(select(inbox_turns))).all()
    assert [(t.holder, t.lease_until) for t in turns] == [(survivor.holder, None)]


async def test_a_holder_whose_lease_lapsed_stops_and_answers_nothing_more(
    services: Services,
) -> None:
    taken, held = store.Claim.TAKEN, store.Claim.HELD
    assert await store.claim(services.db, "telegram", "u1", "me", 30) is taken
    assert await store.claim(services.db, "telegram", "u1", "you", 30) is held
    await store.add(services.db, "telegram", "k1", "u1", 1, {"n": 1})
    async with services.db.write() as conn:  # my lease ran out and "you" took the turn
        past = store.now() - timedelta(seconds=1)
        await conn.execute(update(inbox_turns).values(lease_until=past))
    assert await store.claim(services.db, "telegram", "u1", "you", 30) is taken
    assert await store.take_next(services.db, "telegram", "u1", "me", 30) == (None, False)
    first = await store.take_next(services.db, "telegram", "u1", "you", 30)
    assert first.row is not None and first.row.body == {"n": 1}
    # None left: the turn is given back, and nothing came meanwhile.
    assert await store.take_next(services.db, "telegram", "u1", "you", 30) == (None, False)
    assert await store.claim(services.db, "telegram", "u1", "you", 30) is store.Claim.RESUMED
    assert await store.take_next(services.db, "telegram", "u1", "you", 30) == (None, False)
    assert await store.claim(services.db, "telegram", "u1", "me", 30) is taken  # you had it


# --- two webhook servers, one database -------------------------------------------------------


def _echoing(services: Services, name: str, recorded: dict[str, asyncio.Event]) -> Dispatcher:
    """The real dispatcher (profiles loaded and saved, per-user locks) whose every answer names
    the worker and the text; a user's first message is answered once all of theirs were
    posted (`recorded`), as a slow answer would be."""
    router, fallbacks = build_router()

    async def echo(ctx: Context) -> Reply:
        if ctx.event.text.endswith(" 1"):
            await asyncio.wait_for(recorded[ctx.event.user_id].wait(), 10)
        await asyncio.sleep(random.uniform(0, 0.01))
        ctx.user.state_data = {"last": ctx.event.text}  # a profile write per update
        return Reply(f"{name}|{ctx.event.text}")

    return Dispatcher(services, router, replace(fallbacks, unknown=echo, newcomer=echo))


@pytest.mark.postgres_only  # several workers run on PostgreSQL; SQLite keeps one process
async def test_two_workers_behind_one_address_answer_each_users_updates_in_order(
    services: Services, other: Services, tmp_path: Path, db_url: str
) -> None:
    settings = make_settings(
        tmp_path, db_url, telegram_token=TOKEN, telegram_webhook_secret=TG_SECRET
    )
    bot_api = OfflineRequest()  # the one Bot API both workers send to
    users = list(range(2001, 2021))
    recorded = {str(chat): asyncio.Event() for chat in users}
    apps = [
        create_app(
            settings, services=s, telegram_request=bot_api, dispatcher=_echoing(s, n, recorded)
        )
        for s, n in ((services, "a"), (other, "b"))
    ]
    async with serve(apps[0]) as a, serve(apps[1]) as b, httpx.AsyncClient() as http:

        async def post(url: str, body: dict[str, Any]) -> None:
            answer = await http.post(f"{url}/telegram/webhook", json=body, headers=headers)
            assert answer.status_code == 200

        headers = {TG_HEADER: TG_SECRET}

        async def user(chat: int) -> list[dict[str, Any]]:
            updates = [text_update(chat, f"zq {n}") for n in range(1, 7)]
            first, second = (a, b) if chat % 2 else (b, a)
            await post(first, updates[0])
            rest = list(enumerate(updates[1:]))
            random.shuffle(rest)  # the rest at once, to either worker, while #1 is answered
            await asyncio.gather(*(post((second, first)[i % 2], u) for i, u in rest))
            recorded[str(chat)].set()  # acknowledged, so recorded
            await post(second, updates[2])  # Telegram redelivers one
            return updates

        await asyncio.gather(*(user(chat) for chat in users))
        await eventually(lambda: len(bot_api.sent()) == 6 * len(users), within=20)
        await asyncio.sleep(0.2)  # a second answer to anything would have come by now
    assert len(bot_api.sent()) == 6 * len(users)
    workers = set()
    for chat in users:
        said = [m["text"].split("|") for m in bot_api.sent(chat)]
        assert [text for _, text in said] == [f"zq {n}" for n in range(1, 7)], chat
        workers |= {name for name, _ in said}
    assert workers == {"a", "b"}  # each worker answered users whose updates both received
    profile = await other.users.load("telegram", str(users[0]), "vi")
    assert profile.state_data == {"last": "zq 6"}  # the last update's save is the one kept


# --- the scheduler ---------------------------------------------------------------------------


async def test_two_schedulers_racing_run_each_due_job_once(
    services: Services, other: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[str] = []

    def jobs(services: Services) -> dict[str, Any]:
        def recorder(name: str) -> Any:
            async def run(now: Any) -> None:
                ran.append(name)
                await asyncio.sleep(0.01)

            return run

        return {name: recorder(name) for name in scheduler.JOB_NAMES}

    monkeypatch.setattr(scheduler, "_jobs", jobs)
    async with services.db.write() as conn:
        await conn.execute(schedules.delete())
    # Both start at once: each row is made once, without an error on either.
    await asyncio.gather(
        scheduler.ensure_schedules(services, NOW), scheduler.ensure_schedules(other, NOW)
    )
    moment = NOW
    for _ in range(10):
        async with services.db.read() as conn:
            due = min((await conn.execute(select(schedules.c.next_run_at))).scalars())
        moment = max(moment, due.astimezone(NOW.tzinfo) + timedelta(minutes=1))
        before = len(ran)
        results = await asyncio.gather(
            scheduler.run_due(services, moment), scheduler.run_due(other, moment)
        )
        names = [n for r in results for n in r if n != "polls:close"]
        assert sorted(names) == sorted(ran[before:])
        assert len(names) == len(set(names)) >= 1  # each due job ran, and ran once


# --- caches ----------------------------------------------------------------------------------


async def _seen_within(check: Any, bound: float) -> float:
    """Seconds until `check()` holds, failing past `bound`."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started <= bound, f"not seen within {bound} s"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def test_a_grant_revoked_on_one_worker_is_seen_by_the_other_within_the_bound(
    services: Services, other: Services
) -> None:
    await services.officials.grant("telegram:7", "commune_official", "25117", "admin")
    assert await other.officials.may("telegram:7", "commune_official", "25117", "22")
    assert await other.officials.may("telegram:7", "commune_official", "25117", "22")  # cached
    await services.officials.revoke("telegram:7", "commune_official", "25117")

    async def refused() -> bool:
        return not await other.officials.may("telegram:7", "commune_official", "25117", "22")

    assert await _seen_within(refused, CHECK_EVERY + 0.3) <= CHECK_EVERY + 0.3


async def test_a_status_imported_on_one_worker_is_seen_by_the_other_within_the_bound(
    services: Services, other: Services
) -> None:
    async with services.db.read() as conn:
        criterion = select(status_records).where(status_records.c.indicator_code == "")
        row = (await conn.execute(criterion.limit(1))).one()
    was = (
        (await other.statuses.commune(row.set_id, row.commune_code))
        .criteria[row.criterion_number]
        .met
    )
    changed = {c.name: getattr(row, c.name) for c in status_records.c if c.name != "id"}
    del changed["import_id"]
    changed |= {"met": not was, "assessed_on": row.assessed_on + timedelta(days=400)}
    batch = ImportBatch("later.csv", "ab" * 32, "tester", False, [changed], [])
    await services.statuses.record(batch)

    async def imported() -> bool:
        status = await other.statuses.commune(row.set_id, row.commune_code)
        return status.criteria[row.criterion_number].met is (not was)

    assert await _seen_within(imported, CHECK_EVERY + 0.3) <= CHECK_EVERY + 0.3
