"""Several workers, one bot: update throughput, latency and per-user order over real HTTP.

    .venv/bin/python bench/scale.py [--part updates|broadcast|all] [--users 200]
        [--workers 1,2,4] [--pg-url URL] [--no-sqlite]

Real `chungsuc serve` processes (uvicorn, this checkout's code) answer Telegram webhooks posted
by an aiohttp client (httpx, at 200 connections at once, spent more CPU than the worker it
loaded: 9 ms per update), and reply to a fake Bot API in a process of its own
(tests/fake_bot_api.py, limits off: replies are what is measured). PostgreSQL is a throwaway
cluster started with tools/pg_cluster.sh (or --pg-url); SQLite runs with one worker, the other
backend's baseline.

Every user (`--users` at once) has one conversation of six updates — /start, the language
typed, the commune typed, /tiendo, a question typed in words, /tiendo — each posted as soon as
the one before was acknowledged (200), not answered, and to the next worker round the ring:
a user's updates are handled by different workers at the same time, as Telegram's
`max_connections` > 1 does. A user's replies must be the reference transcript (one user run
alone first), in order; a user whose replies are the same messages in another order is out of
order, one with more or fewer is counted apart. Throughput is updates answered per second, from
the first post to the last reply; latency is from a post to its last reply's arrival (both
stamped with the machine's monotonic clock). The database's CPU share is the postgres
processes' CPU time (from /proc) over the CPU time of everything in the run.

`--part broadcast` runs bench/scale_broadcast.py (the outbox across workers) on the same
cluster, `all` both.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import httpx  # noqa: E402

from tests.offline_telegram import TOKEN, text_update  # noqa: E402

SECRET = "scale-secret_0123456789"
HEADER = "X-Telegram-Bot-Api-Secret-Token"
CONVERSATION = [
    "/start",
    "tieng viet",
    "cho don",
    "/tiendo",
    "xa minh dat may tieu chi roi",
    "/tiendo",
]
TICK = os.sysconf("SC_CLK_TCK")


# --- the fake Bot API, in a process of its own ------------------------------------------------


async def fake_api() -> None:
    """The fake Bot API without limits, keeping texts; GET /_sent lists what arrived."""
    import uvicorn
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from tests.fake_bot_api import FakeBotApi

    fake = FakeBotApi(rate=None, paid_rate=None, per_chat_interval=None, keep_text=True)

    async def sent(request: Request) -> JSONResponse:
        low = int(request.query_params.get("min_chat", "0"))
        return JSONResponse([[s.chat_id, s.text, s.at] for s in fake.accepted if s.chat_id >= low])

    async def ok(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True, "result": True})

    extra = [Route(f"/bot{{token}}/{m}", ok, methods=["POST"]) for m in ("setMyCommands",)]
    fake.app.router.routes[:0] = [*extra, Route("/_sent", sent, methods=["GET"])]
    # Connections kept open longer than the workers' pools keep them: a connection closed by
    # the server just as a worker reuses it would lose that reply.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP_NODELAY
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(fake.app, log_config=None, access_log=False, timeout_keep_alive=300)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(1000):
        if server.started:
            break
        await asyncio.sleep(0.01)
    gc.freeze()
    print(json.dumps({"url": f"http://127.0.0.1:{sock.getsockname()[1]}"}), flush=True)
    await task


# --- processes --------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time of the processes (those gone since count nothing)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def postgres_pids(data_dir: Path) -> list[int]:
    """The postmaster and its children (backends, writer, WAL writer …)."""
    master = int((data_dir / "postmaster.pid").read_text().split()[0])
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == master:
                children.append(int(stat.parent.name))
    return [master, *children]


@contextlib.contextmanager
def started_fake_api() -> Iterator[tuple[str, subprocess.Popen[str]]]:
    fake = subprocess.Popen(
        [sys.executable, __file__, "--fake-api"], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert fake.stdout is not None
        yield json.loads(fake.stdout.readline())["url"], fake
    finally:
        fake.terminate()
        fake.wait(10)


@contextlib.contextmanager
def postgres(pg_url: str | None) -> Iterator[tuple[str, Path | None]]:
    """The server's URL, and its data directory when this run started it."""
    if pg_url:
        yield pg_url, None
        return
    folder = Path(tempfile.mkdtemp(prefix="chungsuc-scale-pg-"))
    script = str(ROOT / "tools" / "pg_cluster.sh")
    url = subprocess.run(
        [script, "start", str(folder)], check=True, capture_output=True, text=True
    ).stdout.strip()
    try:
        yield url, folder / "data"
    finally:
        subprocess.run([script, "stop", str(folder)], capture_output=True)


async def fresh_database(server_url: str, name: str, create: bool = True) -> str:
    """An empty database `name` on the server (or none, `create=False`); its SQLAlchemy URL."""
    import asyncpg  # type: ignore[import-untyped]
    from sqlalchemy.engine import make_url

    url = make_url(server_url)
    admin = await asyncpg.connect(
        url.set(drivername="postgresql").render_as_string(hide_password=False)
    )
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return url.set(database=name).render_as_string(hide_password=False)


async def prepare(db_url: str) -> None:
    """Migrated, with the reference and sample data, as a province's database would be."""
    from bot.app.services import build_services
    from bot.app.settings import load_settings
    from bot.content.sample import load_sample, load_sample_campaigns

    services = await build_services(load_settings(db_url=db_url))
    await load_sample(services.db, services.reference, services.statuses, services.today())
    await load_sample_campaigns(services)
    await services.close()


@contextlib.asynccontextmanager
async def workers(n: int, db_url: str, api_url: str) -> AsyncIterator[list[tuple[str, int]]]:
    """`n` `chungsuc serve` processes; their base URLs and pids once each answers /healthz."""
    env = os.environ | {
        "PYTHONPATH": str(ROOT),
        "CHUNGSUC_DB_URL": db_url,
        "CHUNGSUC_TELEGRAM_TOKEN": TOKEN,
        "CHUNGSUC_TELEGRAM_WEBHOOK_SECRET": SECRET,
        "CHUNGSUC_TELEGRAM_API_URL": f"{api_url}/bot",
        "CHUNGSUC_BROADCAST_RATE": "1000000",  # replies are measured, not Telegram's pace
        "CHUNGSUC_LOG_LEVEL": "WARNING",
    }
    env.pop("CHUNGSUC_CONFIG", None)
    ports = [_free_port() for _ in range(n)]
    command = [sys.executable, "-m", "bot.interfaces.cli.main", "serve", "--port"]
    log = (Path(tempfile.gettempdir()) / "chungsuc-scale-workers.log").open("a")
    procs = [
        subprocess.Popen([*command, str(p)], cwd=ROOT, env=env, stderr=log)  # noqa: ASYNC220
        for p in ports
    ]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    try:
        async with httpx.AsyncClient() as http:
            for url, proc in zip(urls, procs, strict=True):
                for _ in range(600):
                    assert proc.poll() is None, f"worker at {url} exited with {proc.returncode}"
                    with contextlib.suppress(httpx.HTTPError):
                        if (await http.get(f"{url}/healthz")).status_code == 200:
                            break
                    await asyncio.sleep(0.1)
        yield [(u, p.pid) for u, p in zip(urls, procs, strict=True)]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# --- the load ---------------------------------------------------------------------------------


@dataclass
class Figures:
    name: str
    users: int
    updates: int
    seconds: float
    latencies: list[float]
    out_of_order: int
    wrong: int  # more or fewer messages than the transcript
    db_share: float | None  # of all CPU time in the run
    cpu_busy: float  # all CPU time in the run ÷ (wall time × cores)
    cpu: dict[str, float]  # CPU seconds of the workers, the fake Bot API, this client, the DB

    @property
    def rate(self) -> float:
        return self.updates / self.seconds

    def p(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000 if ordered else 0.0


_next_chat = iter(range(100_000, 10**9))
REDELIVERED = [0]  # posts sent again after a lost connection


async def conversation(
    post: aiohttp.ClientSession, urls: list[str], chat: int, start: int
) -> list[float]:
    """Post one user's updates, each when the one before was acknowledged; their post times."""
    posted = []
    for k, text in enumerate(CONVERSATION):
        url = urls[(start + k) % len(urls)]
        body = text_update(chat, text)
        posted.append(time.monotonic())
        for attempt in range(5):  # a connection lost: posted again, as Telegram redelivers
            try:
                async with post.post(
                    f"{url}/telegram/webhook", json=body, headers={HEADER: SECRET}
                ) as answer:
                    answer.raise_for_status()
                    await answer.read()
                break
            except aiohttp.ClientConnectionError:
                if attempt == 4:
                    raise
                REDELIVERED[0] += 1
    return posted


async def arrived(http: httpx.AsyncClient, api_url: str, low: int) -> dict[int, list[Any]]:
    per_chat: dict[int, list[Any]] = {}
    for chat, text, at in (await http.get(f"{api_url}/_sent", params={"min_chat": low})).json():
        per_chat.setdefault(chat, []).append((text, at))
    return per_chat


async def until_quiet(
    http: httpx.AsyncClient, api_url: str, low: int, expected: int, within: float = 120.0
) -> dict[int, list[Any]]:
    """What the chats from `low` up were sent, once `expected` messages came (or nothing more
    came for 3 s)."""
    deadline, last, since = time.monotonic() + within, -1, time.monotonic()
    while True:  # the count is cheap to ask for; the texts are fetched once, at the end
        stats = await http.get(f"{api_url}/_stats", params={"min_chat": low})
        count = int(stats.json()["accepted"])
        if count >= expected:
            await asyncio.sleep(0.5)  # a duplicate would come now
            break
        if count != last:
            last, since = count, time.monotonic()
        if time.monotonic() - since > 3 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    return await arrived(http, api_url, low)


async def reference(http: httpx.AsyncClient, urls: list[str], api_url: str) -> list[list[str]]:
    """One user's transcript, each update answered before the next is posted: the texts each
    update is answered with."""
    chat = next(_next_chat)
    transcript = []
    for text in CONVERSATION:
        before = len((await arrived(http, api_url, chat)).get(chat, []))
        body = text_update(chat, text)
        await http.post(f"{urls[0]}/telegram/webhook", json=body, headers={HEADER: SECRET})
        for _ in range(300):
            await asyncio.sleep(0.05)
            now = (await arrived(http, api_url, chat)).get(chat, [])
            if len(now) > before:
                await asyncio.sleep(0.3)  # the update's other messages
                now = (await arrived(http, api_url, chat)).get(chat, [])
                break
        transcript.append([t for t, _ in now[before:]])
        if not transcript[-1]:
            raise SystemExit(f"no answer to {text!r}: is the worker replying?")
    return transcript


async def load(
    name: str,
    urls: list[str],
    pids: list[int],
    api_url: str,
    users: int,
    transcript: list[list[str]],
    pg_data: Path | None,
) -> Figures:
    expected = [t for answer in transcript for t in answer]
    per_update = [len(a) for a in transcript]
    chats = [next(_next_chat) for _ in range(users)]
    db_pids = postgres_pids(pg_data) if pg_data is not None else []
    mine = resource.getrusage(resource.RUSAGE_SELF)
    worker_pids, api_pids = pids[:-1], pids[-1:]
    workers0, api0 = cpu_seconds(worker_pids), cpu_seconds(api_pids)
    cpu0 = cpu_seconds(pids) + cpu_seconds(db_pids)
    db0 = cpu_seconds(db_pids)
    # uvicorn closes a connection idle for 5 s: the client lets its own go sooner, or a post
    # may go out on one the worker has just closed (and be reset).
    connector = aiohttp.TCPConnector(limit=max(100, users), keepalive_timeout=3)
    timeout = aiohttp.ClientTimeout(total=60)
    async with (
        aiohttp.ClientSession(connector=connector, timeout=timeout) as post,
        httpx.AsyncClient(timeout=60) as http,
    ):
        started = time.monotonic()
        posted = await asyncio.gather(
            *(conversation(post, urls, chat, i) for i, chat in enumerate(chats))
        )
        got = await until_quiet(http, api_url, chats[0], users * len(expected))
    # Backends opened during the run count whole (they did nothing before it).
    db_pids = postgres_pids(pg_data) if pg_data is not None else []
    db1, cpu1 = cpu_seconds(db_pids), cpu_seconds(pids) + cpu_seconds(db_pids)
    workers1, api1 = cpu_seconds(worker_pids), cpu_seconds(api_pids)
    after = resource.getrusage(resource.RUSAGE_SELF)
    client = (after.ru_utime + after.ru_stime) - (mine.ru_utime + mine.ru_stime)
    latencies: list[float] = []
    out_of_order = wrong = 0
    last = started
    for chat, times in zip(chats, posted, strict=True):
        messages = got.get(chat, [])
        texts = [t for t, _ in messages]
        if texts != expected:
            if sorted(texts) == sorted(expected):
                out_of_order += 1
            else:
                wrong += 1
            continue
        end = 0
        for k, n in enumerate(per_update):
            end += n
            latencies.append(messages[end - 1][1] - times[k])
        last = max(last, messages[-1][1])
    wall = last - started
    total_cpu = (cpu1 - cpu0) + client
    return Figures(
        name,
        users,
        users * len(CONVERSATION),
        wall,
        latencies,
        out_of_order,
        wrong,
        (db1 - db0) / total_cpu if db_pids and total_cpu else None,
        total_cpu / (wall * (os.cpu_count() or 1)),
        {
            "workers": workers1 - workers0,
            "fake Bot API": api1 - api0,
            "client": client,
            "database": db1 - db0,
        },
    )


async def measure(
    name: str, n: int, db_url: str, api: tuple[str, int], users: int, pg_data: Path | None
) -> Figures:
    """`n` workers on `db_url`; the CPU counted is theirs, the fake API's (pid `api[1]`),
    this client's and PostgreSQL's."""
    api_url, api_pid = api
    async with workers(n, db_url, api_url) as running, httpx.AsyncClient(timeout=60) as http:
        urls = [u for u, _ in running]
        transcript = await reference(http, urls, api_url)
        # A first round, not counted: statements compiled, templates loaded, pools filled.
        await load(name, urls, [], api_url, min(20, users), transcript, None)
        pids = [*(p for _, p in running), api_pid]
        return await load(name, urls, pids, api_url, users, transcript, pg_data)


def table(rows: list[Figures]) -> str:
    lines = [
        "| backend, workers | users | updates/s | p50 ms | p95 ms | out of order | wrong "
        "| DB CPU share | CPU busy |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for f in rows:
        share = f"{f.db_share:.0%}" if f.db_share is not None else "—"
        lines.append(
            f"| {f.name} | {f.users} | {f.rate:,.0f} | {f.p(0.5):,.0f} | {f.p(0.95):,.0f} "
            f"| {f.out_of_order} | {f.wrong} | {share} | {f.cpu_busy:.0%} |"
        )
    return "\n".join(lines)


async def updates(args: argparse.Namespace, pg_url: str, pg_data: Path | None) -> None:
    counts = [int(n) for n in args.workers.split(",") if n]
    rows: list[Figures] = []
    with started_fake_api() as (api_url, fake):
        api = (api_url, fake.pid)
        folder = Path(tempfile.mkdtemp(prefix="chungsuc-scale-"))
        try:
            if not args.no_sqlite:
                sqlite_url = f"sqlite+aiosqlite:///{folder / 'scale.sqlite3'}"
                await prepare(sqlite_url)
                rows.append(await measure("SQLite, 1", 1, sqlite_url, api, args.users, None))
                print(table(rows[-1:]).splitlines()[-1], flush=True)
            # Rounds alternate the worker counts: a machine whose load changes (other work on
            # it) slows each alike.
            for _ in range(args.rounds):
                for n in counts:
                    db_url = await fresh_database(pg_url, f"chungsuc_scale_{os.getpid()}")
                    await prepare(db_url)
                    name = f"PostgreSQL, {n}"
                    row = await measure(name, n, db_url, api, args.users, pg_data)
                    rows.append(row)
                    print(table([row]).splitlines()[-1], flush=True)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            if counts:
                await fresh_database(pg_url, f"chungsuc_scale_{os.getpid()}", create=False)
    print()
    print(f"{args.users} users at once × {len(CONVERSATION)} updates each; cores: {os.cpu_count()}")
    print(table(rows))
    rates: dict[str, list[float]] = {}
    for f in rows:
        rates.setdefault(f.name, []).append(f.rate)
    one, two = rates.get("PostgreSQL, 1"), rates.get("PostgreSQL, 2")
    if one and two:
        ratio = statistics.median(two) / statistics.median(one)
        verdict = "goal met" if ratio >= 1.5 else "BELOW GOAL"
        pairs = ", ".join(f"{b / a:.2f}" for a, b in zip(one, two, strict=False))
        print(f"\n2 workers ÷ 1 (median updates/s): {ratio:.2f}× ({verdict}: ≥ 1.5×)")
        print(f"  per round: {pairs}")
    print("\nCPU µs per update, by process (the workers' share of all CPU in the run):")
    for f in rows:
        parts = ", ".join(f"{k} {v / f.updates * 1e6:,.0f}" for k, v in f.cpu.items())
        share = f.cpu["workers"] / max(1e-9, sum(f.cpu.values()))
        print(f"  {f.name}: {parts} (workers {share:.0%})")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    bad = sum(f.out_of_order + f.wrong for f in rows)
    print(f"users answered out of order or wrongly, all runs: {bad}")
    print(f"updates posted again after a lost connection: {REDELIVERED[0]}")


def broadcast(args: argparse.Namespace, pg_url: str) -> None:
    """The outbox across workers: bench/scale_broadcast.py on the same cluster."""
    script = ROOT / "bench" / "scale_broadcast.py"
    if not script.exists():
        print("bench/scale_broadcast.py is not in this checkout: no broadcast figures")
        return
    env = os.environ | {"CHUNGSUC_SCALE_PG_URL": pg_url}
    subprocess.run([sys.executable, str(script), *args.broadcast_args], cwd=ROOT, env=env)


async def main(args: argparse.Namespace) -> None:
    if args.part == "updates" and not args.workers:  # SQLite only: no server needed
        await updates(args, "", None)
        return
    with postgres(args.pg_url) as (pg_url, pg_data):
        pg_data = pg_data or args.pg_data
        if args.part in ("updates", "all"):
            await updates(args, pg_url, pg_data)
        if args.part in ("broadcast", "all"):
            broadcast(args, pg_url)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=["updates", "broadcast", "all"], default="updates")
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument(
        "--workers", default="1,2,4", help='PostgreSQL worker counts to run ("": SQLite only)'
    )
    parser.add_argument("--pg-url", help="a server to use (default: a throwaway cluster)")
    parser.add_argument("--pg-data", type=Path, help="its data directory, for its CPU share")
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite baseline")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of the worker counts")
    parser.add_argument("--fake-api", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "broadcast_args", nargs="*", help="after --: passed to bench/scale_broadcast.py"
    )
    parsed = parser.parse_args()
    asyncio.run(fake_api() if parsed.fake_api else main(parsed))
