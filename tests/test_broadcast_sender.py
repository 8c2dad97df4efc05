"""The broadcast sender against a fake Bot API that enforces Telegram's limits.

Rates are small and windows compressed so that the file runs in seconds; every limit is read
back from the times at which the fake server received the messages.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import insert, select

from bot.app.services import Services
from bot.app.settings import Settings
from bot.channels.telegram_transport import telegram_transport
from bot.delivery.limiter import Limiter
from bot.delivery.outbox import cancel as cancel_broadcast
from bot.delivery.outbox import get_broadcast, materialise, status_of, utcnow
from bot.delivery.sender import Sender, run_sender
from bot.delivery.transport import progress
from bot.storage.db import Database
from bot.storage.schema import broadcasts, deliveries, subscriptions, users
from tests.fake_bot_api import PTB_RETRY_AFTER_WARNING, FakeBotApi, gaps, max_in_window
from tests.live_server import serve
from tests.offline_telegram import TOKEN

COMMUNE, NEIGHBOUR, FOREIGN = "01840", "01843", "99999"  # two of province 19, one elsewhere
PARAGRAPH = "Thông báo họp thôn về làm đường bê tông. " * 70  # ~2,900 characters


async def subscribe(
    db: Database, user_id: str, commune: str = COMMUNE, channel: str = "telegram", **flags: Any
) -> None:
    """A subscription; by default active, commune news only, no digest, Vietnamese."""
    values = dict(
        channel=channel,
        user_id=user_id,
        commune_code=commune,
        active=True,
        commune_news=True,
        province_news=False,
        campaign_news=False,
        pledge_reminders=False,
        digest="off",
        locale="vi",
        updated_at=utcnow(),
    )
    async with db.write() as conn:
        await conn.execute(insert(subscriptions).values(values | flags))


async def subscribe_many(db: Database, user_ids: list[int], **flags: Any) -> None:
    """Subscriptions for many Telegram chats at once; commune and province news on."""
    rows = [
        dict(
            channel="telegram",
            user_id=str(u),
            commune_code=COMMUNE,
            active=True,
            commune_news=True,
            province_news=True,
            campaign_news=False,
            pledge_reminders=False,
            digest="off",
            locale="vi",
            updated_at=utcnow(),
        )
        | flags
        for u in user_ids
    ]
    async with db.write() as conn:
        await conn.execute(insert(subscriptions), rows)


async def new_broadcast(db: Database, **values: Any) -> int:
    """An announcement to COMMUNE's commune-news subscribers, due now."""
    row = (
        dict(
            kind="announcement",
            title="Họp thôn",
            text="Mời bà con họp thôn lúc 19 giờ.",
            scope_level="commune",
            scope_code=COMMUNE,
            topic="commune_news",
            paid=False,
            status="scheduled",
            send_at=utcnow(),
            created_by="telegram:1",
            created_at=utcnow(),
        )
        | values
    )
    async with db.write() as conn:
        result = await conn.execute(insert(broadcasts).values(row))
    assert result.inserted_primary_key is not None
    return int(result.inserted_primary_key[0])


async def rows_of(db: Database, broadcast_id: int) -> dict[str, Any]:
    """The deliveries of a broadcast by user id."""
    async with db.read() as conn:
        rows = await conn.execute(
            select(deliveries).where(deliveries.c.broadcast_id == broadcast_id)
        )
        return {row.user_id: row for row in rows}


def configured(services: Services, url: str, **overrides: Any) -> Settings:
    """The test settings pointed at the fake Bot API."""
    return services.settings.model_copy(
        update={"telegram_token": SecretStr(TOKEN), "telegram_api_url": f"{url}/bot"} | overrides
    )


@asynccontextmanager
async def fake_api(**limits: Any) -> AsyncIterator[tuple[FakeBotApi, str]]:
    """A fake Bot API with these limits, served on 127.0.0.1."""
    fake = FakeBotApi(**limits)
    async with serve(fake.app) as url:
        yield fake, url


@asynccontextmanager
async def sender_for(
    services: Services, url: str, limiter: Limiter | None = None, **overrides: Any
) -> AsyncIterator[Sender]:
    """A sender on Telegram through the fake, with fast retries."""
    settings = configured(services, url, **overrides)
    async with telegram_transport(settings, limiter) as transport:
        yield Sender(services.db, settings, {"telegram": transport}, backoff_base=0.05)


# --- who gets it ------------------------------------------------------------------------------


async def test_recipients_are_materialised_in_one_statement(services: Services) -> None:
    """Scope, topic flags, digests and the OA window decide who gets a delivery row."""
    db, now = services.db, utcnow()
    await subscribe(db, "1")
    await subscribe(db, "2", commune_news=False)
    await subscribe(db, "3", active=False)
    await subscribe(db, "4", commune=NEIGHBOUR, province_news=True)
    await subscribe(db, "5", commune=FOREIGN, province_news=True)
    await subscribe(db, "6", province_news=True, digest="weekly", locale="en")
    await subscribe(db, "7", digest="weekly", locale="vi")
    await subscribe(db, "8", digest="daily", locale="en")
    for user_id, seen in (("o1", now - timedelta(days=1)), ("o2", now - timedelta(days=30))):
        await subscribe(db, user_id, channel="zalo_oa")
        async with db.write() as conn:
            await conn.execute(
                insert(users).values(
                    channel="zalo_oa",
                    user_id=user_id,
                    locale="vi",
                    state_data={},
                    offered=[],
                    last_seen_at=seen,
                    created_at=now,
                    updated_at=now,
                )
            )
    await subscribe(db, "o3", channel="zalo_oa")  # never wrote: no users row at all

    async def recipients(**values: Any) -> dict[str, str]:
        b = await get_broadcast(db, await new_broadcast(db, **values))
        assert b is not None
        async with db.write() as conn:
            await materialise(conn, b, now, oa_days=7)
            assert await materialise(conn, b, now, oa_days=7) == 0  # a restart adds nobody
        return {user_id: row.state for user_id, row in (await rows_of(db, b.id)).items()}

    commune = await recipients()
    assert commune == {
        **dict.fromkeys(["1", "6", "7", "8", "o1"], "pending"),
        "o2": "skipped",  # outside the OA window
        "o3": "skipped",
    }
    province = await recipients(scope_level="province", scope_code="19", topic="province_news")
    assert province == {"4": "pending", "6": "pending"}
    digest = await recipients(topic="digest:weekly", locale="en", kind="digest")
    assert digest == {"6": "pending"}


# --- limits -----------------------------------------------------------------------------------


async def test_limits_are_respected(services: Services) -> None:
    """20/s overall, 1 s per chat (two parts each), and no 429 from a strict server."""
    chats = list(range(1001, 1031))
    await subscribe_many(services.db, chats)
    broadcast_id = await new_broadcast(services.db, text=f"{PARAGRAPH}\n\n{PARAGRAPH}")
    async with (
        fake_api(rate=20, burst=2) as (fake, url),
        sender_for(services, url, broadcast_rate=20) as sender,
    ):
        assert await sender.send(broadcast_id, asyncio.Event()) == "done"
    times = [s.at for s in fake.accepted]
    assert len(times) == 2 * len(chats) and fake.too_many == []
    assert (len(times) - 1) / (max(times) - min(times)) <= 20 * 1.02
    assert max_in_window(times, 1.0) <= 20 + 2  # + the catch-up allowance, see limiter.py
    for chat in chats:
        parts = fake.sent_to(chat)
        assert [len(p.text) < 4096 for p in parts] == [True, True]
        assert min(gaps([p.at for p in parts])) >= 1.0
    counts = await progress(services.db, broadcast_id)
    assert counts is not None and counts.counts == {"sent": 30} and counts.remaining == 0


async def test_group_chats_get_at_most_their_share(services: Services) -> None:
    """A group gets at most N messages per window (20/min compressed to 2 per 3 s)."""
    await subscribe(services.db, "-100")
    broadcast_id = await new_broadcast(services.db, text="\n\n".join([PARAGRAPH] * 4))
    limiter = Limiter(rate=20, group_per_window=2, group_window=3.0)
    async with (
        fake_api(group_per_window=2, group_window=3.0) as (fake, url),
        sender_for(services, url, limiter) as sender,
    ):
        assert await sender.send(broadcast_id, asyncio.Event()) == "done"
    times = [s.at for s in fake.sent_to(-100)]
    assert len(times) == 4 and fake.too_many == []
    assert max_in_window(times, 3.0) <= 2


async def test_a_groups_window_counts_a_message_from_its_answer() -> None:
    """A request can take a while to reach Telegram: the group's window starts when the
    answer comes back, not when the message was let through."""
    now = [100.0]
    limiter = Limiter(
        rate=1000, per_chat_interval=0, group_per_window=1, group_window=3.0, clock=lambda: now[0]
    )
    await limiter.acquire(-100, interactive=False)  # let through at 100.0
    now[0] = 100.8
    limiter.sent(-100)  # answered at 100.8
    now[0] = 103.2  # 3.2 s after it was let through, 2.4 s after Telegram had it
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(limiter.acquire(-100, interactive=False), 0.2)
    now[0] = 103.81
    await asyncio.wait_for(limiter.acquire(-100, interactive=False), 0.2)


async def test_a_notice_takes_the_next_turn_before_waiting_broadcast_messages() -> None:
    """Broadcast messages wait for the pace, then a notice comes: it goes right after the one
    already waiting for its slot, before all the others in line."""
    limiter = Limiter(rate=20, per_chat_interval=0)
    order: list[str] = []

    async def send(name: str, chat: int, notice: bool = False) -> None:
        await limiter.acquire(chat, interactive=False, notice=notice)
        order.append(name)

    queued = [asyncio.create_task(send(f"b{n}", n)) for n in range(1, 9)]
    await asyncio.sleep(0.01)  # the first went at once (or two: catch-up); one holds the turn
    gone = len(order)
    await asyncio.gather(send("notice", 99, notice=True), *queued)
    assert 1 <= gone <= 2 and order.index("notice") == gone + 1  # after the holder only
    assert [name for name in order if name != "notice"] == [f"b{n}" for n in range(1, 9)]


async def test_a_cancelled_wait_passes_the_turn_on() -> None:
    """A sender stopped while waiting for its turn holds up nobody behind it."""
    limiter = Limiter(rate=20, per_chat_interval=0)
    await limiter.acquire(1, interactive=False)
    holder = asyncio.create_task(limiter.acquire(2, interactive=False))
    stopped = asyncio.create_task(limiter.acquire(3, interactive=False, notice=True))
    await asyncio.sleep(0.01)
    stopped.cancel()
    await asyncio.gather(stopped, return_exceptions=True)
    await asyncio.wait_for(asyncio.gather(holder, limiter.acquire(4, interactive=False)), 1)


@PTB_RETRY_AFTER_WARNING
async def test_429_pauses_every_send_then_retries(services: Services) -> None:
    """A 429 holds every send for retry_after and costs the person no attempt."""
    chats = list(range(2001, 2031))
    await subscribe_many(services.db, chats)
    broadcast_id = await new_broadcast(services.db)
    async with (
        fake_api(rate=20, burst=2) as (fake, url),
        sender_for(services, url, broadcast_rate=20) as sender,
    ):
        fake.force_429[2005] = 1
        assert await sender.send(broadcast_id, asyncio.Event()) == "done"
    (_, at429), *_ = fake.too_many
    assert len(fake.too_many) == 1
    paused = [s for s in fake.accepted if at429 + 0.1 < s.at < at429 + 0.95]
    assert paused == []  # retry_after=1: nothing went out meanwhile
    rows = await rows_of(services.db, broadcast_id)
    assert rows["2005"].state == "sent" and rows["2005"].attempts == 1  # not counted as failure
    assert len(fake.accepted) == len(chats)


async def test_blocked_people_are_unsubscribed_and_counted(services: Services) -> None:
    """A 403 marks the delivery blocked, unsubscribes the person and is never retried."""
    await subscribe_many(services.db, [3001, 3002, 3003])
    broadcast_id = await new_broadcast(services.db)
    async with fake_api() as (fake, url), sender_for(services, url) as sender:
        fake.blocked.add(3002)
        assert await sender.send(broadcast_id, asyncio.Event()) == "done"
    rows = await rows_of(services.db, broadcast_id)
    assert rows["3002"].state == "blocked" and "blocked" in rows["3002"].last_error
    assert fake.errors == [(3002, 403)]  # never retried
    async with services.db.read() as conn:
        sub = (
            await conn.execute(select(subscriptions).where(subscriptions.c.user_id == "3002"))
        ).one()
    assert sub.active is False and sub.blocked_at is not None
    counts = await progress(services.db, broadcast_id)
    assert counts is not None and counts["blocked"] == 1 and counts["sent"] == 2


async def test_server_errors_are_retried_then_fail(services: Services) -> None:
    """5xx retried with backoff up to max attempts; 400 fails at once."""
    await subscribe_many(services.db, [4001, 4002, 4003, 4004])
    broadcast_id = await new_broadcast(services.db)
    async with (
        fake_api() as (fake, url),
        sender_for(services, url, broadcast_max_attempts=3) as sender,
    ):
        fake.failing.update({4001: -1, 4002: 2})  # always 502; 502 twice then fine
        fake.missing.add(4003)  # 400 chat not found: failed at once
        started = time.monotonic()
        assert await sender.send(broadcast_id, asyncio.Event()) == "done"
    rows = await rows_of(services.db, broadcast_id)
    assert (rows["4001"].state, rows["4001"].attempts) == ("failed", 3)
    assert "Bad Gateway" in rows["4001"].last_error
    assert (rows["4002"].state, rows["4002"].attempts) == ("sent", 3)
    assert (rows["4003"].state, rows["4003"].attempts) == ("failed", 1)
    assert "chat not found" in rows["4003"].last_error.lower()
    assert rows["4004"].state == "sent"
    assert fake.errors.count((4001, 502)) == 3 and fake.errors.count((4003, 400)) == 1
    assert time.monotonic() - started < 5  # backoff 0.05 s · 2ⁿ with jitter


async def test_photo_html_and_paid(services: Services) -> None:
    """HTML caption on a photo; a long text follows a photo; paid is passed on."""
    await subscribe_many(services.db, [5001])
    short = await new_broadcast(
        services.db, photo="AgACAgIAAx", html="<b>Họp</b> thôn", paid=True, status="scheduled"
    )
    long = await new_broadcast(services.db, photo="AgACAgIAAx", text=PARAGRAPH, title="A & B")
    async with fake_api() as (fake, url), sender_for(services, url) as sender:
        assert await sender.send(short, asyncio.Event()) == "done"
        assert await sender.send(long, asyncio.Event()) == "done"
    first, second, third = fake.accepted
    assert (first.method, first.text, first.parse_mode, first.paid) == (
        "sendPhoto",
        "<b>Họp</b> thôn",
        "HTML",
        True,
    )
    assert (second.method, second.text, second.paid) == ("sendPhoto", "A & B", False)
    assert (third.method, third.text) == ("sendMessage", PARAGRAPH.strip())
    assert (await rows_of(services.db, long))["5001"].message_id == "2"  # the photo's id


# --- interactive replies, cancel, the long-running sender ------------------------------------


async def test_replies_do_not_wait_behind_a_broadcast(services: Services) -> None:
    """While a broadcast takes every slot, a reply's acquire returns at once."""
    await subscribe_many(services.db, list(range(6001, 6091)))
    broadcast_id = await new_broadcast(services.db)
    limiter = Limiter(rate=30, reserve=0.1)
    waits: list[float] = []
    async with (
        fake_api(rate=30, burst=5) as (fake, url),
        sender_for(services, url, limiter) as sender,
    ):
        task = asyncio.create_task(sender.send(broadcast_id, asyncio.Event()))
        await asyncio.sleep(0.5)  # the broadcast is saturating the bucket
        for i in range(30):
            started = time.monotonic()
            await limiter.acquire(900 + i, interactive=True)
            waits.append(time.monotonic() - started)
            assert limiter.free.broadcast_wait(time.monotonic()) > 0  # the broadcast must wait
            await asyncio.sleep(0.1)
        assert not task.done()
        assert await task == "done"
    waits.sort()
    # Behind the broadcast a reply would wait for a slot, a thirtieth of a second; at once is
    # well under that even on a loaded machine.
    assert waits[int(len(waits) * 0.95)] < 0.015, waits
    assert fake.too_many == []
    # Replies took ~10/s of the 30/s; the broadcast had the rest.
    times = [s.at for s in fake.accepted]
    assert (len(times) - 1) / (max(times) - min(times)) <= 30


async def test_cancel_stops_a_running_broadcast(services: Services) -> None:
    """A cancel from elsewhere stops the sender; what was sent is recorded as sent."""
    await subscribe_many(services.db, list(range(7001, 7061)))
    broadcast_id = await new_broadcast(services.db)
    async with (
        fake_api(rate=20, burst=2) as (fake, url),
        sender_for(services, url, broadcast_rate=20) as sender,
    ):
        task = asyncio.create_task(sender.send(broadcast_id, asyncio.Event()))
        await asyncio.sleep(0.6)
        cancelled = await cancel_broadcast(services.db, broadcast_id, utcnow())
        assert cancelled is not None and cancelled > 20
        assert await task == "cancelled"
    counts = await progress(services.db, broadcast_id)
    assert counts is not None and counts.status == "cancelled" and counts.remaining == 0
    assert counts["sent"] == len(fake.accepted) and counts["cancelled"] == 60 - counts["sent"]


async def test_run_sender_sends_what_is_due(services: Services) -> None:
    """The long-running sender sends due broadcasts and leaves later ones."""
    await subscribe_many(services.db, [9001, 9002])
    due = await new_broadcast(services.db)
    later = await new_broadcast(services.db, send_at=utcnow() + timedelta(hours=1))
    async with fake_api() as (fake, url):
        settings = configured(services, url)
        async with telegram_transport(settings) as transport:
            stop = asyncio.Event()
            task = asyncio.create_task(run_sender(services, {"telegram": transport}, stop))
            deadline = time.monotonic() + 5
            while await status_of(services.db, due) != "done":
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            stop.set()
            await task
    assert await status_of(services.db, later) == "scheduled"
    assert sorted(s.chat_id for s in fake.accepted) == [9001, 9002]


async def test_html_telegram_refuses_goes_out_as_plain_text(services: Services) -> None:
    """A broadcast whose HTML Telegram cannot parse reaches people as its plain text."""
    await subscribe_many(services.db, [6001])
    broadcast_id = await new_broadcast(
        services.db, html="<b>Họp thôn lúc 19 giờ", text="Họp thôn lúc 19 giờ"
    )
    async with fake_api() as (fake, url), sender_for(services, url) as sender:
        assert await sender.send(broadcast_id, asyncio.Event()) == "done"
    rows = await rows_of(services.db, broadcast_id)
    assert rows["6001"].state == "sent"
    assert fake.errors == [(6001, 400)]
    [sent] = fake.accepted
    assert (sent.text, sent.parse_mode) == ("Họp thôn lúc 19 giờ", None)
