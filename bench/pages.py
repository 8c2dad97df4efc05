"""What the public commune page costs with a big commune behind it, against a bare page.

    .venv/bin/python bench/pages.py [--contributions 100000] [--reports 10000] [--polls 1000]
                                    [--seconds 10] [--concurrency 50] [--rounds 3]

One SQLite file, migrated, with reference data and the sample statuses and campaigns; then, in
Xã Chợ Đồn, `--contributions` confirmed gifts from as many households over twelve villages,
`--reports` reports (a third closed with an answer) and `--polls` polls (half closed, ten
votes each), all inserted with INSERT … SELECT. Two servers run under uvicorn on 127.0.0.1,
each in its own process: `chungsuc serve`'s app (no messenger configured) and the baseline, a
bare Starlette app whose one route renders one Jinja2 template. An async HTTP client (aiohttp's)
keeps `--concurrency` requests in flight against each for `--seconds`, baseline and site taking
turns for `--rounds` rounds; every answer must be a 200. Figures: requests per second and p95
latency, the median round. Targets: at least a third of the baseline's throughput, p95 under
50 ms. The page cache (bot/web/site.py, 10 s) is part of what is measured: a run longer than
10 s includes its re-renders.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
from sqlalchemy import text

from bot.app.services import build_services
from bot.app.settings import load_settings
from bot.content.sample import load_sample, load_sample_campaigns
from bot.domain.clock import TZ, FixedClock

NOW = datetime(2026, 11, 29, 7, 0, tzinfo=TZ)  # fixed: the figures depend on no date
COMMUNE = "02020"
PAGE = f"/xa/{COMMUNE}"
SERIES = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count) "
STAMP = "%Y-%m-%d %H:%M:%S.000000"  # how SQLAlchemy keeps a DateTime in SQLite
BARE = """<!doctype html><html lang="vi"><head><meta charset="utf-8"><title>{{ title }}</title>
</head><body><h1>{{ title }}</h1><ul>{% for item in items %}<li>{{ item.name }}: {{ item.n }}</li>
{% endfor %}</ul></body></html>"""


async def fill(url: str, gifts: int, reports: int, polls: int) -> None:
    services = await build_services(load_settings(db_url=url))
    services.clock = FixedClock(NOW)
    try:
        await load_sample(services.db, services.reference, services.statuses, NOW.date())
        await load_sample_campaigns(services)
        campaign = await services.campaigns.by_slug("mau-duong-thon-na-lang")
        assert campaign is not None
        now = services.clock.utcnow().strftime(STAMP)
        params = {"now": now, "campaign": campaign.id, "commune": COMMUNE}
        async with services.db.write() as conn:
            await conn.execute(
                text(
                    SERIES + "INSERT INTO contributions (campaign_id, commune_code, village,"
                    " channel, user_id, display_name, show_name, kind, amount, unit, description,"
                    " status, source_key, created_at, updated_at) SELECT :campaign, :commune,"
                    " 'Thôn ' || (i % 12), 'telegram', CAST(20000000 + i AS TEXT), NULL, 0,"
                    " CASE i % 3 WHEN 0 THEN 'money' WHEN 1 THEN 'workdays' ELSE 'land' END,"
                    " CASE i % 3 WHEN 0 THEN 100000 * (1 + i % 5) ELSE 2 END, NULL, NULL,"
                    " 'confirmed', 'bench:' || i, :now, :now FROM n"
                ),
                params | {"count": gifts},
            )
            await conn.execute(
                text(
                    SERIES + "INSERT INTO reports (commune_code, village, category, description,"
                    " channel, user_id, state, answer, reopened, created_at, updated_at,"
                    " closed_at, source_key) SELECT :commune, 'Thôn ' || (i % 12),"
                    " CASE i % 4 WHEN 0 THEN 'roads' WHEN 1 THEN 'water' WHEN 2 THEN 'power'"
                    " ELSE 'environment' END, 'Phản ánh thử ' || i, 'zalo',"
                    " CAST(30000000 + i AS TEXT),"
                    " CASE i % 3 WHEN 0 THEN 'resolved' WHEN 1 THEN 'received' ELSE 'new' END,"
                    " CASE i % 3 WHEN 0 THEN 'Đã xử lý xong.' END, 0,"
                    " strftime('%Y-%m-%d %H:%M:%S.000000', :now, '-' || (i % 90) || ' days'),"
                    " :now, CASE i % 3 WHEN 0 THEN :now END, 'bench:' || i FROM n"
                ),
                params | {"count": reports},
            )
            await conn.execute(
                text(
                    SERIES + "INSERT INTO polls (commune_code, village, question, results,"
                    " closes_at, status, created_by, created_at, closed_at, source_key)"
                    " SELECT :commune, NULL, 'Câu hỏi thử số ' || i || '?', 'after_close',"
                    " :now, CASE i % 2 WHEN 0 THEN 'closed' ELSE 'open' END, 'bench', :now,"
                    " CASE i % 2 WHEN 0 THEN :now END, 'bench:' || i FROM n"
                ),
                params | {"count": polls},
            )
            await conn.execute(
                text(
                    "INSERT INTO poll_questions (poll_id, position, text, kind)"
                    " SELECT id, 0, question, 'one' FROM polls"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO poll_options (poll_id, position, text, question) SELECT id, p, "
                    " CASE p WHEN 0 THEN 'Đồng ý' ELSE 'Không đồng ý' END, 0 FROM polls,"
                    " (SELECT 0 AS p UNION ALL SELECT 1)"
                )
            )
            # Ten ballots a poll, each choosing one option; villages "Thôn 0" to "Thôn 2".
            await conn.execute(
                text(
                    "WITH RECURSIVE v(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM v WHERE k < 10)"
                    " INSERT INTO poll_ballots (poll_id, channel, user_id, village,"
                    " created_at, updated_at) SELECT p.id, 'telegram',"
                    " CAST(40000000 + k AS TEXT), 'Thôn ' || (k % 3), :now, :now FROM polls p, v"
                ),
                params,
            )
            await conn.execute(
                text(
                    "INSERT INTO poll_choices (ballot_id, poll_id, option_id, village)"
                    " SELECT b.id, b.poll_id, o.id, b.village FROM poll_ballots b"
                    " JOIN poll_options o ON o.poll_id = b.poll_id"
                    " AND o.position = CAST(b.user_id AS INTEGER) % 2"
                )
            )
    finally:
        await services.close()


def bare_app() -> object:
    """The baseline: one route rendering one Jinja2 template, nothing else."""
    from jinja2 import DictLoader, Environment
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    template = Environment(loader=DictLoader({"t": BARE}), autoescape=True).get_template("t")
    items = [{"name": f"Tiêu chí {n}", "n": n} for n in range(1, 20)]

    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(template.render(title="Xã Chợ Đồn", items=items))

    return Starlette(routes=[Route(PAGE, page)])


def serve(which: str, url: str, port: int) -> None:
    """In the child process: one server until killed."""
    import uvicorn

    from bot.interfaces.server import create_app

    if which == "site":
        app = create_app(load_settings(db_url=url), clock=FixedClock(NOW))
    else:
        app = bare_app()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def ready(base: str) -> float:
    """Once the server answers: how long its first page took, in ms (nothing cached yet)."""
    async with aiohttp.ClientSession(base) as client:
        for _ in range(600):
            try:
                began = time.perf_counter()
                async with client.get(PAGE) as answer:
                    if answer.status == 200:
                        return 1000 * (time.perf_counter() - began)
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{base} did not start")


async def load(base: str, seconds: float, concurrency: int) -> tuple[float, float, int]:
    """(requests per second, p95 in ms, bytes of the page) with `concurrency` in flight."""
    latencies: list[float] = []
    size = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base, connector=connector) as client:
        stop = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal size
            while time.perf_counter() < stop:
                began = time.perf_counter()
                async with client.get(PAGE) as answer:
                    body = await answer.read()
                latencies.append(time.perf_counter() - began)
                if answer.status != 200:
                    raise RuntimeError(f"{base}{PAGE}: {answer.status}")
                size = len(body)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        took = time.perf_counter() - began
    p95 = statistics.quantiles(latencies, n=20)[-1] * 1000 if len(latencies) > 1 else 0.0
    return len(latencies) / took, p95, size


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.sqlite3'}"
        began = time.perf_counter()
        await fill(url, args.contributions, args.reports, args.polls)
        print(
            f"database: {args.contributions:,} contributions, {args.reports:,} reports,"
            f" {args.polls:,} polls in {time.perf_counter() - began:.1f} s"
        )
        ports = {"bare": free_port(), "site": free_port()}
        children = [
            await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--serve", which, "--db", url, "--port", str(port)
            )
            for which, port in ports.items()
        ]
        try:
            bases = {which: f"http://127.0.0.1:{port}" for which, port in ports.items()}
            await ready(bases["bare"])
            cold = await ready(bases["site"])
            print(f"first render of the page (cold: no cache warm): {cold:.0f} ms")
            async with aiohttp.ClientSession(bases["site"]) as client:
                first = time.perf_counter()
                async with client.get(PAGE, params={"lang": "en"}) as answer:  # not cached yet
                    await answer.read()
                took = 1000 * (time.perf_counter() - first)
                print(f"first render in English (the stores' caches warm): {took:.0f} ms")
            figures: dict[str, list[tuple[float, float, int]]] = {"bare": [], "site": []}
            for _ in range(args.rounds):
                for which in ("bare", "site"):
                    figures[which].append(await load(bases[which], args.seconds, args.concurrency))
        finally:
            for child in children:
                child.terminate()
                await asyncio.wait_for(child.wait(), 10)
    bare = sorted(figures["bare"])[len(figures["bare"]) // 2]
    site = sorted(figures["site"])[len(figures["site"]) // 2]
    print(
        f"bare Starlette + one Jinja2 template: {bare[0]:.0f} req/s, p95 {bare[1]:.1f} ms"
        f" ({bare[2]:,} bytes)"
    )
    print(
        f"commune page {PAGE}: {site[0]:.0f} req/s, p95 {site[1]:.1f} ms ({site[2]:,} bytes)"
        f" at {args.concurrency} concurrent, {args.seconds:g} s × {args.rounds} rounds"
    )
    print(f"commune page ÷ bare: {site[0] / bare[0]:.2f} of the throughput (target ≥ 0.33)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contributions", type=int, default=100_000)
    parser.add_argument("--reports", type=int, default=10_000)
    parser.add_argument("--polls", type=int, default=1_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", choices=("bare", "site"), help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve:
        serve(options.serve, options.db, options.port)
    else:
        asyncio.run(main(options))
