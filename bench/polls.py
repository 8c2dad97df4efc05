"""What closing a big poll costs: the scheduler's close of a poll with 100,000 votes.

    .venv/bin/python bench/polls.py [--votes 100000] [--subscribers 120000] [--rounds 5]

One SQLite file, migrated, with reference data. A commune-wide poll of four options gets its
ballots and their choices in two INSERT … SELECT (a recursive count, villages spread over
twelve), and the commune as many subscribers the same way. Each round reopens the poll and
times `close_due_polls`: the compare-and-set UPDATE … WHERE closed_at IS NULL, the counts per
option and village (with the under-5 merge), the turnout against the subscribers, and the
result's broadcast in each language with its audit rows — one write transaction. Target: under
2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text, update

from bot.app.services import build_services
from bot.app.settings import load_settings
from bot.delivery.poll_notices import close_due_polls
from bot.domain.clock import TZ, FixedClock
from bot.storage.polls import NewPoll, Question
from bot.storage.schema import polls

NOW = datetime(2026, 11, 29, 7, 0, tzinfo=TZ)  # fixed: the figures depend on no date
COMMUNE = "02020"
OPTIONS = ("Đường Nà Làng", "Kênh Bản Cuôn", "Nhà văn hóa", "Điện chiếu sáng")
SERIES = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count) "


async def main(votes: int, subscribers: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.sqlite3'}"
        services = await build_services(load_settings(db_url=url))
        services.clock = FixedClock(NOW)
        try:
            poll, _created = await services.polls.create(
                NewPoll(
                    COMMUNE,
                    None,
                    (Question("Làm việc nào trước?", "one", OPTIONS),),
                    "after_close",
                    NOW + timedelta(days=7),
                    "bench-poll",
                ),
                actor="bench",
            )
            ids = poll.option_ids
            start = time.perf_counter()
            async with services.db.write() as conn:
                await conn.execute(
                    text(
                        SERIES + "INSERT INTO poll_ballots (poll_id, channel, user_id,"
                        " village, created_at, updated_at) SELECT :poll,"
                        " 'telegram', CAST(10000000 + i AS TEXT),"
                        " CASE WHEN i % 50 = 0 THEN NULL ELSE 'Thôn ' || (i % 12) END, :now, :now"
                        " FROM n"
                    ),
                    {"count": votes, "poll": poll.id, "now": services.db.clock.utcnow()},
                )
                await conn.execute(
                    text(
                        "INSERT INTO poll_choices (ballot_id, poll_id, option_id, village)"
                        " SELECT id, poll_id, CASE CAST(user_id AS INTEGER) % 7 WHEN 0 THEN :o3"
                        " WHEN 1 THEN :o2 WHEN 2 THEN :o2 WHEN 3 THEN :o1 ELSE :o0 END, village"
                        " FROM poll_ballots WHERE poll_id = :poll"
                    ),
                    {"poll": poll.id, "o0": ids[0], "o1": ids[1], "o2": ids[2], "o3": ids[3]},
                )
                await conn.execute(
                    text(
                        SERIES
                        + "INSERT INTO subscriptions (channel, user_id, commune_code, active,"
                        " commune_news, province_news, campaign_news, pledge_reminders, polls,"
                        " digest, locale, updated_at)"
                        " SELECT 'telegram', CAST(10000000 + i AS TEXT), :commune,"
                        " 1, 1, 1, 1, 1, 1, 'weekly',"
                        " CASE WHEN i % 10 = 0 THEN 'en' ELSE 'vi' END, :now FROM n"
                    ),
                    {"count": subscribers, "commune": COMMUNE, "now": services.db.clock.utcnow()},
                )
            loaded = time.perf_counter() - start
            print(f"{votes:,} votes and {subscribers:,} subscribers inserted in {loaded:.2f} s")
            closing = NOW + timedelta(days=8)
            times = []
            for index in range(rounds + 1):  # round 0 compiles the statements: not counted
                async with services.db.write() as conn:
                    await conn.execute(
                        update(polls)
                        .where(polls.c.id == poll.id)
                        .values(status="open", closed_at=None)
                    )
                start = time.perf_counter()
                closed = await close_due_polls(services, closing)
                elapsed = time.perf_counter() - start
                assert closed == [poll.id], closed
                if index:
                    times.append(elapsed)
            results = await services.polls.results(poll)
            assert results.voters == votes, results
            print(
                f"close a poll of {votes:,} votes: median {statistics.median(times):.3f} s, "
                f"max {max(times):.3f} s over {rounds} rounds (target < 2 s); "
                f"turnout {results.voters:,}/{results.subscribers:,}, "
                f"{len(results.groups)} village groups"
            )
        finally:
            await services.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--votes", type=int, default=100_000)
    parser.add_argument("--subscribers", type=int, default=120_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.votes, args.subscribers, args.rounds))
