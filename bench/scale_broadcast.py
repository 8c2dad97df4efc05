"""One province-wide broadcast sent by several worker processes together, one killed midway.

    .venv/bin/python bench/scale_broadcast.py [--subscribers 100000] [--rate 500] [--workers 2 4]

For each run a fresh database gets N subscribers and one scheduled announcement; a fake Bot
API (tests/fake_bot_api.py, its own process, on 127.0.0.1) enforces the limit with a small
tolerance (--burst); W worker processes each run the sender as `chungsuc serve` runs it
(`Sender.run`, its limiter from the settings: on PostgreSQL shared by all of them through the
database). --kill-after seconds after the first message arrives, one worker chosen at random
is killed with SIGKILL; the others go on, and the killed worker's claims go out again once their
lease (--lease) has lapsed. On SQLite one worker sends and is restarted after its kill.

The limit is the free pace raised to --rate (Telegram's is 30/s: 100,000 would take 56 minutes
a run); the per-chat limit plays no part (one message each). Figures: achieved ÷ configured over
the whole run (the lapsed lease's wait included) and over its steady middle (5 %–95 % of the
messages), the busiest 1 s window against the limit both as the workers sent (each send's
moment as it is handed to aiohttp, logged by every worker) and as the fake stamped arrivals,
429s, everyone reached, duplicates against the killed worker's in-flight window.

PostgreSQL: --pg-url, or a throwaway cluster started with tools/pg_cluster.sh.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from sqlalchemy import func, insert, select

from bench.broadcast import TEXT, add_subscribers, rate_of, stats
from bot.app.services import build_services
from bot.app.settings import load_settings
from bot.channels.telegram_http import AiohttpRequest
from bot.channels.telegram_transport import telegram_transport
from bot.delivery import outbox
from bot.delivery.limiter import Limiter
from bot.delivery.outbox import utcnow
from bot.delivery.sender import Sender
from bot.storage.db import Database
from bot.storage.schema import broadcasts, deliveries
from tests import databases
from tests.fake_bot_api import max_in_window
from tests.offline_telegram import TOKEN

ROOT = Path(__file__).resolve().parents[1]


# --- a worker process --------------------------------------------------------------------------


async def worker(args: argparse.Namespace) -> dict[str, Any]:
    """The sender loop beside a bot, until the broadcast is done; its CPU time as JSON."""
    settings = load_settings(
        db_url=args.db,
        telegram_token=TOKEN,
        telegram_api_url=f"{args.api}/bot",
        broadcast_rate=args.rate,
        broadcast_paid_rate=args.rate,
        broadcast_in_flight=args.in_flight,
    )
    db = Database(settings.db_url)
    stop = asyncio.Event()

    async def until_done() -> None:
        while True:  # every worker stops once the broadcast is done
            if await outbox.status_of(db, args.broadcast) == "done":
                stop.set()
                return
            await asyncio.sleep(0.5)

    # Each send's moment as the worker hands it to aiohttp, line by line to a file: a SIGKILL
    # loses none written before it.
    log = Path(args.sent_log).open("a", buffering=1)  # noqa: ASYNC230, SIM115 (the process's life)
    handed = AiohttpRequest.do_request

    async def do_request(self: AiohttpRequest, url: str, *rest: Any, **named: Any) -> Any:
        if url.endswith("/sendMessage"):
            log.write(f"{time.time():.6f}\n")
        return await handed(self, url, *rest, **named)

    AiohttpRequest.do_request = do_request  # type: ignore[method-assign]
    cpu = time.process_time()
    async with telegram_transport(settings, Limiter.from_settings(settings, db)) as transport:
        sender = Sender(db, settings, {"telegram": transport}, lease_seconds=args.lease)
        watcher = asyncio.create_task(until_done())
        await sender.run(stop, poll=0.5)
        await watcher
    await db.close()
    return {"cpu_s": time.process_time() - cpu}


def start_worker(
    url: str, api: str, broadcast_id: int, args: argparse.Namespace, sent_log: Path
) -> Any:
    return asyncio.create_subprocess_exec(
        sys.executable, __file__, "--worker", "--db", url, "--api", api,
        "--broadcast", str(broadcast_id), "--rate", str(args.rate),
        "--in-flight", str(args.in_flight), "--lease", str(args.lease),
        "--sent-log", str(sent_log),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip


# --- the parent ------------------------------------------------------------------------------


async def prepare(url: str, subscribers: int) -> int:
    """Migrate, add the subscribers and one province-wide announcement; its id."""
    services = await build_services(load_settings(db_url=url))
    await add_subscribers(services.db, subscribers)
    now = utcnow()
    values = dict(
        kind="announcement",
        title="Bench scale",
        text=TEXT,
        scope_level="province",
        scope_code="19",
        topic="province_news",
        paid=False,
        status="scheduled",
        send_at=now,
        created_by="bench",
        created_at=now,
    )
    async with services.db.write() as conn:
        result = await conn.execute(insert(broadcasts).values(values))
    await services.close()
    return int(result.inserted_primary_key[0])  # type: ignore[index]


async def start_fake(rate: float, burst: int) -> tuple[asyncio.subprocess.Process, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.fake_bot_api", "--rate", str(rate), "--paid-rate",
        str(rate), "--burst", str(burst), cwd=ROOT, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    line = await process.stdout.readline()
    return process, json.loads(line)["url"]


async def in_state(url: str, broadcast_id: int, state: str) -> int:
    db = Database(url)
    async with db.read() as conn:
        count = await conn.execute(
            select(func.count()).where(
                deliveries.c.broadcast_id == broadcast_id, deliveries.c.state == state
            )
        )
        n = int(count.scalar() or 0)
    await db.close()
    return n


async def steady_rate(url: str, broadcast_id: int) -> float:
    """Messages per second between the 5th and the 95th percentile of their recorded times."""
    db = Database(url)
    async with db.read() as conn:
        times = sorted(
            t.timestamp()
            for t in (
                await conn.execute(
                    select(deliveries.c.updated_at).where(
                        deliveries.c.broadcast_id == broadcast_id, deliveries.c.state == "sent"
                    )
                )
            ).scalars()
        )
    await db.close()
    low, high = int(len(times) * 0.05), int(len(times) * 0.95)
    return (high - low) / max(times[high] - times[low], 1e-9)


async def run(
    args: argparse.Namespace, http: httpx.AsyncClient, url: str, count: int, label: str
) -> None:
    """One broadcast by `count` workers, one killed midway; its figures printed."""
    broadcast_id = await prepare(url, args.subscribers)
    fake, api = await start_fake(args.rate, args.burst)
    sent_log = Path(tempfile.mkdtemp()) / "sent.txt"  # every worker's sends, appended
    try:
        workers = [await start_worker(url, api, broadcast_id, args, sent_log) for _ in range(count)]
        while True:  # the kill is timed from the first message
            if (await http.get(f"{api}/_stats")).json()["accepted"]:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(args.kill_after)
        victim = random.Random(args.seed).randrange(count)
        with contextlib.suppress(ProcessLookupError):
            workers[victim].send_signal(signal.SIGKILL)
        await workers[victim].communicate()
        await asyncio.sleep(0.3)  # requests written before the kill still arrive
        left = await in_state(url, broadcast_id, "sending")  # every worker's window
        if count == 1:  # alone: restarted, as systemd would
            workers[victim] = await start_worker(url, api, broadcast_id, args, sent_log)
        cpu = 0.0
        for n, process in enumerate(workers):
            out, _ = await process.communicate()
            if n != victim or count == 1:
                assert process.returncode == 0, process.returncode
                cpu += json.loads(out.decode().strip().splitlines()[-1])["cpu_s"]
        got = await stats(http, api)
        steady = await steady_rate(url, broadcast_id)
        sent = await in_state(url, broadcast_id, "sent")
    finally:
        fake.terminate()
        await fake.wait()
    rate = args.rate
    print(f"\n{label}: {count} worker(s), worker {victim + 1} killed {args.kill_after:g} s in")
    print(f"   reached {got['chats']:,} of {args.subscribers:,} (recorded sent {sent:,}):")
    print(f"   missed {args.subscribers - got['chats']}; duplicates {got['duplicates']}")
    print(f"   (bound: the killed worker's window, {args.in_flight}; rows sending just after")
    print(f"   the kill, all workers: {left})")
    print(f"   achieved ÷ configured, whole run {rate_of(got) / rate:.3f} ({rate_of(got):.1f}/s,")
    print(f"   lease wait included), steady middle {steady / rate:.3f} ({steady:.1f}/s)")
    handed = [float(line) for line in sent_log.read_text().split()]
    sent_log.unlink()
    sent_log.parent.rmdir()
    print(f"   busiest 1 s window {got['max_per_second']} as the fake stamped arrivals,")
    as_sent = max_in_window(handed, 1.0)
    print(f"   {as_sent} as the workers sent (limit {rate:g}); 429s {got['too_many']}")
    print(f"   CPU of the workers {cpu / max(sent, 1) * 1e6:.0f} µs/message")


async def parent(args: argparse.Namespace, folder: Path) -> None:
    print(f"{args.subscribers:,} subscribers; limit {args.rate:g}/s (free pace, raised);")
    print(f"in-flight window {args.in_flight} per worker; lease {args.lease:g} s; fake's")
    print(f"tolerance {args.burst} messages over the limit in any 1 s.")
    async with httpx.AsyncClient() as http:
        if args.workers:
            os.environ[databases.PG_URL] = args.pg_url
        for count in args.workers:
            name = await databases.create_database(f"scale_broadcast_{os.getpid()}_{count}")
            try:
                await run(args, http, databases.url_of(name), count, "PostgreSQL")
            finally:
                await databases.drop_database(name)
        if args.sqlite:
            url = f"sqlite+aiosqlite:///{folder / 'scale.sqlite3'}"
            await run(args, http, url, 1, "SQLite")


def main(args: argparse.Namespace) -> None:
    """A throwaway PostgreSQL cluster unless --pg-url names a server; the runs."""
    with tempfile.TemporaryDirectory() as tmp:
        cluster = None
        if args.pg_url is None and args.workers:
            cluster = Path(tmp) / "pg"
            started = subprocess.run(
                [str(ROOT / "tools/pg_cluster.sh"), "start", str(cluster)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            args.pg_url = started.stdout.strip().splitlines()[-1]
        try:
            asyncio.run(parent(args, Path(tmp)))
        finally:
            if cluster is not None:
                subprocess.run([str(ROOT / "tools/pg_cluster.sh"), "stop", str(cluster)])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=500, help="the limit, messages/s")
    parser.add_argument("--workers", type=int, nargs="*", default=[2, 4])
    parser.add_argument("--no-sqlite", dest="sqlite", action="store_false")
    parser.add_argument("--in-flight", type=int, default=32)
    parser.add_argument("--lease", type=float, default=5.0, help="seconds a claim lasts")
    parser.add_argument("--kill-after", type=float, default=20.0)
    parser.add_argument("--burst", type=int, default=10, help="the fake's tolerance, messages")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--pg-url", help="a PostgreSQL server (default: a throwaway cluster)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--api", help=argparse.SUPPRESS)
    parser.add_argument("--broadcast", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--sent-log", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.worker:
        print(json.dumps(asyncio.run(worker(arguments))))
    else:
        main(arguments)
