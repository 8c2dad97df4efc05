"""A province-wide broadcast against the fake Bot API: rate, duplicates after kills, memory.

    .venv/bin/python bench/broadcast.py [--subscribers 100000] [--sample-seconds 60]

The fake Bot API (tests/fake_bot_api.py) runs in its own process and enforces the limits; each
sender runs in its own process too (so its peak RSS is its own) on one SQLite file. Free runs
use an in-flight window of --in-flight, paid runs --paid-in-flight (paid mode needs a window of
about rate × cycle time: claim, send, record):

1. free mode, 30/s, through python-telegram-bot: the clock is not compressed, a sample of
   --sample-seconds is measured (all 100,000 would take 56 minutes). Achieved ÷ configured.
2. the same for 20 s with a villager chatting (a reply every 100 ms): p95 reply latency,
   against the same replies before the broadcast started.
3. paid mode, 1000/s, all recipients, with a transport that does no HTTP (a 5 ms round trip):
   what the sender itself sustains (limiter, outbox, SQLite); peak RSS; CPU per message.
4. paid mode through python-telegram-bot (on aiohttp, as the bot sends) for --sample-seconds / 2:
   achieved ÷ configured, CPU per message, reply p95 beside it.
5. the same with python-telegram-bot on its default HTTP layer (httpx), for comparison.
6. paid mode through python-telegram-bot to a fifth of the subscribers, the sender killed with
   SIGKILL twice and restarted: duplicates against the rows left "sending" at the kills.
7. paid mode, no HTTP, to one commune (~1% of the recipients): peak RSS next to 3.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from sqlalchemy import func, insert, select
from telegram import Bot
from telegram.request import HTTPXRequest

from bot.app.services import build_services
from bot.app.settings import load_settings
from bot.channels.telegram_transport import telegram_transport
from bot.delivery import outbox
from bot.delivery.limiter import Limiter
from bot.delivery.outbox import Broadcast, utcnow
from bot.delivery.sender import Sender
from bot.delivery.transport import Transport
from bot.storage.db import Database
from bot.storage.schema import areas, broadcasts, deliveries, subscriptions
from tests.offline_telegram import TOKEN

ROOT = Path(__file__).resolve().parents[1]
FIRST_CHAT = 10_000_000  # subscribers' chat ids; the reply probe uses ids below
REPLY = "Dạ, xã Chợ Đồn đã đạt 17/19 tiêu chí nông thôn mới."
TEXT = "Thông báo: từ 8 giờ sáng Chủ nhật, bà con các thôn tham gia làm đường bê tông liên thôn."


# --- the sender process ----------------------------------------------------------------------


class NullTransport:
    """No HTTP: waits a fixed round trip. Measures the sender itself (limiter, outbox)."""

    def __init__(self, limiter: Limiter, round_trip: float) -> None:
        self.limiter, self.round_trip = limiter, round_trip

    def pause(self, seconds: float) -> None:
        self.limiter.pause(seconds)

    async def send(self, user_id: str, broadcast: Broadcast) -> str:
        await self.limiter.acquire(user_id, interactive=False, paid=broadcast.paid)
        await asyncio.sleep(self.round_trip)
        self.limiter.sent(user_id)
        return user_id


async def child(args: argparse.Namespace) -> dict[str, Any]:
    """Run the sender on one broadcast (until done, or for --seconds); figures as JSON."""
    settings = load_settings(
        db_url=args.db,
        telegram_token=TOKEN,
        telegram_api_url=f"{args.api}/bot",
        broadcast_rate=args.rate,
        broadcast_paid_rate=args.paid_rate,
        broadcast_in_flight=args.in_flight,
    )
    db = Database(settings.db_url)
    limiter = Limiter.from_settings(settings)
    stop = asyncio.Event()
    baseline: list[float] = []
    during: list[float] = []
    figures: dict[str, Any] = {}
    bot = None
    if args.httpx:  # python-telegram-bot's default HTTP layer, for comparison
        request = HTTPXRequest(connection_pool_size=args.in_flight + 1)
        bot = Bot(TOKEN, base_url=settings.telegram_api_url, request=request)
    async with telegram_transport(settings, limiter, bot) as transport:
        channel: Transport = transport
        if args.null_rtt is not None:
            channel = NullTransport(limiter, args.null_rtt / 1000)
        sender = Sender(db, settings, {"telegram": channel})
        b = await outbox.get_broadcast(db, args.broadcast)
        assert b is not None
        if b.status == "scheduled":  # timed apart from the sending
            started = time.perf_counter()
            figures["materialised"] = await outbox.start(db, b, outbox.utcnow(), 7)
            figures["materialise_s"] = time.perf_counter() - started
        if args.probe:
            await probe(transport.bot, limiter, baseline, until=time.monotonic() + 3)
        cpu = time.process_time()
        task = asyncio.create_task(sender.send(args.broadcast, stop, takeover=True))
        prober = asyncio.create_task(probe(transport.bot, limiter, during)) if args.probe else None
        if args.seconds:
            await asyncio.wait({task}, timeout=args.seconds)
            stop.set()
        figures["result"] = await task
        figures["cpu_s"] = time.process_time() - cpu
        if prober is not None:
            prober.cancel()
            await asyncio.gather(prober, return_exceptions=True)
    async with db.read() as conn:
        d = deliveries
        sent, first, last = (
            await conn.execute(
                select(func.count(), func.min(d.c.updated_at), func.max(d.c.updated_at)).where(
                    d.c.broadcast_id == args.broadcast, d.c.state == "sent"
                )
            )
        ).one()
    await db.close()
    return figures | {
        "sent": sent,
        "recorded_rate": (sent - 1) / max((last - first).total_seconds(), 1e-9) if sent else 0,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "baseline_p95_ms": p95(baseline) * 1000 if baseline else None,
        "during_p95_ms": p95(during) * 1000 if during else None,
        "during_p50_ms": statistics.median(during) * 1000 if during else None,
        "replies": len(during),
    }


async def probe(bot: Any, limiter: Limiter, took: list[float], until: float | None = None) -> None:
    """A villager chatting: a reply every 100 ms, timed from the limiter to Telegram's answer."""
    chat = 1000
    while until is None or time.monotonic() < until:
        chat += 1  # a new chat each time, so the per-chat limit plays no part
        started = time.perf_counter()
        await limiter.acquire(chat, interactive=True)
        await bot.send_message(chat, REPLY)
        took.append(time.perf_counter() - started)
        await asyncio.sleep(0.1)


def p95(values: list[float]) -> float:
    """The 95th percentile."""
    return statistics.quantiles(values, n=20)[-1]


# --- the parent: data, fake server, runs -----------------------------------------------------


async def add_subscribers(db: Database, subscribers: int) -> list[str]:
    """N Telegram subscribers spread over the province's communes; the communes, in order."""
    now = utcnow()
    async with db.read() as conn:
        communes = list(
            (
                await conn.execute(
                    select(areas.c.code)
                    .where(areas.c.era == "2025", areas.c.level == "commune")
                    .order_by(areas.c.code)
                )
            ).scalars()
        )
    for start in range(0, subscribers, 10_000):
        rows = [
            dict(
                channel="telegram",
                user_id=str(FIRST_CHAT + i),
                commune_code=communes[i % len(communes)],
                active=True,
                commune_news=True,
                province_news=True,
                campaign_news=i % 5 == 0,  # a fifth: the broadcast killed and restarted
                pledge_reminders=False,
                digest="off",
                locale="vi",
                updated_at=now,
            )
            for i in range(start, min(start + 10_000, subscribers))
        ]
        async with db.write() as conn:
            await conn.execute(insert(subscriptions), rows)
    return communes


async def prepare(folder: Path, subscribers: int) -> tuple[str, dict[str, int]]:
    """A migrated SQLite file with N subscribers over the province; the broadcasts to run."""
    url = f"sqlite+aiosqlite:///{folder / 'bench.sqlite3'}"
    services = await build_services(load_settings(db_url=url))
    db, now = services.db, utcnow()
    communes = await add_subscribers(db, subscribers)
    ids = {}
    runs = {
        "free": (False, "province_news", "19"),
        "probe": (False, "province_news", "19"),
        "pipeline": (True, "province_news", "19"),
        "paid": (True, "province_news", "19"),
        "paid_httpx": (True, "province_news", "19"),
        "killed": (True, "campaign_news", "19"),
        "commune": (True, "commune_news", communes[0]),
    }
    for name, (paid, topic, scope) in runs.items():
        values = dict(
            kind="announcement",
            title=f"Bench {name}",
            text=TEXT,
            scope_level="province" if scope == "19" else "commune",
            scope_code=scope,
            topic=topic,
            paid=paid,
            status="scheduled",
            send_at=now,
            created_by="bench",
            created_at=now,
        )
        async with db.write() as conn:
            result = await conn.execute(insert(broadcasts).values(values))
        ids[name] = int(result.inserted_primary_key[0])  # type: ignore[index]
    await services.close()
    return url, ids


async def start_fake(burst: int) -> tuple[asyncio.subprocess.Process, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.fake_bot_api", "--rate", "30", "--paid-rate", "1000",
        "--burst", str(burst), cwd=ROOT, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    line = await process.stdout.readline()
    return process, json.loads(line)["url"]


def start_child(url: str, api: str, broadcast_id: int, *extra: str) -> Any:
    return asyncio.create_subprocess_exec(
        sys.executable, __file__, "--child", "--db", url, "--api", api,
        "--broadcast", str(broadcast_id), *extra, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def run_child(url: str, api: str, broadcast_id: int, *extra: str) -> dict[str, Any]:
    process = await start_child(url, api, broadcast_id, *extra)
    out, _ = await process.communicate()
    assert process.returncode == 0, process.returncode
    figures: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return figures


async def stats(http: httpx.AsyncClient, api: str) -> dict[str, Any]:
    answer = await http.get(f"{api}/_stats", params={"min_chat": FIRST_CHAT})
    figures: dict[str, Any] = answer.json()
    await http.post(f"{api}/_reset")
    return figures


def rate_of(figures: dict[str, Any]) -> float:
    return (figures["accepted"] - 1) / max(figures["last"] - figures["first"], 1e-9)


async def sending_rows(url: str, broadcast_id: int) -> int:
    db = Database(url)
    async with db.read() as conn:
        count = await conn.execute(
            select(func.count()).where(
                deliveries.c.broadcast_id == broadcast_id, deliveries.c.state == "sending"
            )
        )
        n = int(count.scalar() or 0)
    await db.close()
    return n


async def parent(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url, ids = await prepare(Path(tmp), args.subscribers)
        fake, api = await start_fake(burst=args.burst)
        rates = ["--rate", "30", "--paid-rate", "1000"]
        limits = {
            "free": [*rates, "--in-flight", str(args.in_flight)],
            "paid": [*rates, "--in-flight", str(args.paid_in_flight)],
        }
        try:
            async with httpx.AsyncClient() as http:
                await report(args, url, api, ids, limits, http)
        finally:
            fake.terminate()
            await fake.wait()


async def report(
    args: argparse.Namespace,
    url: str,
    api: str,
    ids: dict[str, int],
    limits: dict[str, list[str]],
    http: httpx.AsyncClient,
) -> None:
    """Run the seven measurements and print their figures."""
    n, secs = args.subscribers, args.sample_seconds
    sample, half = ["--seconds", str(secs)], ["--seconds", str(secs / 2)]
    print(f"{n:,} subscribers over the province's communes; in-flight window {args.in_flight}")
    print(f"for free runs, {args.paid_in_flight} for paid runs.")
    print(f"Fake Bot API: 30/s free, 1000/s paid (1 s windows, burst {args.burst}), 1 s per chat.")

    free, paid = limits["free"], limits["paid"]
    run = await run_child(url, api, ids["free"], *free, *sample)
    got = await stats(http, api)
    print(f"\n1. free 30/s through PTB, {secs:g} s sample (real clock)")
    print(f"   sent {got['accepted']:,} at {rate_of(got):.2f}/s; achieved ÷ configured")
    print(f"   {rate_of(got) / 30:.3f}; busiest 1 s window {got['max_per_second']}; 429s")
    made, took = run["materialised"], run["materialise_s"]
    print(f"   {got['too_many']}; materialised {made:,} in {took:.2f} s")

    run = await run_child(url, api, ids["probe"], *free, "--seconds", "20", "--probe")
    got = await stats(http, api)
    print("\n2. free 30/s for 20 s, a reply every 100 ms beside it")
    print(f"   reply p95 {run['during_p95_ms']:.1f} ms, p50 {run['during_p50_ms']:.1f} ms")
    print(
        f"   ({run['replies']} replies); p95 before the broadcast {run['baseline_p95_ms']:.1f} ms"
    )
    print(f"   broadcast beside them {rate_of(got):.2f}/s; 429s {got['too_many']}")

    big = await run_child(url, api, ids["pipeline"], *paid, "--null-rtt", "5")
    print(f"\n3. paid 1000/s, all {n:,}, transport without HTTP (5 ms round trip)")
    print(f"   {big['result']}: {big['sent']:,} recorded sent at {big['recorded_rate']:.1f}/s")
    print(f"   achieved ÷ configured {big['recorded_rate'] / 1000:.3f}")
    cpu = big["cpu_s"] / big["sent"] * 1e6
    print(f"   peak RSS {big['maxrss_mb']:.0f} MB; CPU {cpu:.0f} µs/message")

    for number, name, how in ((4, "paid", "on aiohttp"), (5, "paid_httpx", "on httpx")):
        extra = ["--httpx"] if name == "paid_httpx" else []
        run = await run_child(url, api, ids[name], *paid, *half, "--probe", *extra)
        got = await stats(http, api)
        print(f"\n{number}. paid 1000/s through PTB, {how}, {secs / 2:g} s sample")
        print(f"   sent {got['accepted']:,} at {rate_of(got):.1f}/s; achieved ÷ configured")
        cpu = run["cpu_s"] / got["accepted"] * 1e6
        print(f"   {rate_of(got) / 1000:.3f}; CPU {cpu:.0f} µs/message")
        print(
            f"   reply p95 {run['during_p95_ms']:.1f} ms (before: {run['baseline_p95_ms']:.1f} ms)"
        )
        print(f"   429s {got['too_many']}; peak RSS {run['maxrss_mb']:.0f} MB")

    left = []
    for after in args.kill_after:
        process = await start_child(url, api, ids["killed"], *paid)
        await asyncio.sleep(after)
        with contextlib.suppress(ProcessLookupError):  # a small run may be over already
            process.send_signal(signal.SIGKILL)
        await process.communicate()
        await asyncio.sleep(0.3)  # requests written before the kill still arrive
        left.append(await sending_rows(url, ids["killed"]))
    run = await run_child(url, api, ids["killed"], *paid)
    got = await stats(http, api)
    kills = " and ".join(f"{a:g}" for a in args.kill_after)
    print(f"\n6. paid through PTB to {got['chats']:,} people; SIGKILL after {kills} s")
    print(f"   restarted: {run['result']}; everyone got it: {got['chats'] == n // 5}")
    print(f"   duplicates {got['duplicates']}; rows left sending at the kills {left}")
    print(f"   (bound: {args.paid_in_flight} per kill)")

    small = await run_child(url, api, ids["commune"], *paid, "--null-rtt", "5")
    print(f"\n7. paid, no HTTP, one commune ({small['sent']:,} recipients)")
    print(f"   peak RSS {small['maxrss_mb']:.0f} MB (all {n:,}: {big['maxrss_mb']:.0f} MB)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--sample-seconds", type=float, default=60)
    parser.add_argument("--in-flight", type=int, default=16, help="window for free runs")
    parser.add_argument("--paid-in-flight", type=int, default=32, help="window for paid runs")
    parser.add_argument("--burst", type=int, default=30, help="the fake's tolerance, messages")
    parser.add_argument("--kill-after", type=float, nargs="*", default=[5.0, 10.0])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--api", help=argparse.SUPPRESS)
    parser.add_argument("--broadcast", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, default=30, help=argparse.SUPPRESS)
    parser.add_argument("--paid-rate", type=float, default=1000, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--null-rtt", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--httpx", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        print(json.dumps(asyncio.run(child(arguments))))
    else:
        asyncio.run(parent(arguments))
