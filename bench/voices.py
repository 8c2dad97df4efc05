"""What a vote and a report step cost: the people's voice through the Telegram path, many at once.

    .venv/bin/python bench/voices.py [--users 50] [--rounds 15]

Each villager votes in a poll ("/binhchon", an option's button, then another option: a changed
vote) and files a report ("/phananh", roads, a description, no photo, no village, confirm: a
receipt PA-26-…). The descriptions are a few road problems, so most reports after the first
round meet the near-duplicate question ("Có phải việc này không?"): the villager answers
"Việc khác", one step more, counted (the report step is the wall time over the steps taken).
All users run at the same time through the whole path (offline Bot API, SQLite file, sample
data). In the same run the bare python-telegram-bot echo of
bench/updates.py gets the same number of updates with the same concurrency: the baseline.
Target: a vote step and a report step each cost at most 3× a bare echo update. Each round
measures both paths and the echo within the same second or so; the verdict is the median of
the rounds' ratios (a stall of the machine during one phase of one round moves the mean, not
the median), and the ratio of the means is printed beside it.

A first round of every path runs before the measured ones and is not counted (SQLAlchemy,
Jinja and Babel compile and load once per process).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from telegram import Update

from bench.contributions import BASELINE_REPEATS, echo_round, onboard
from bench.updates import App, build_echo, build_ours
from bot.app.services import Services
from bot.storage.polls import NewPoll, Question
from tests.offline_telegram import OfflineRequest, callback_update, text_update

VOTE_STEPS = 3
ROAD_PROBLEMS = (
    "Đường thôn Nà Làng bị sạt, xe máy không qua được",
    "Cầu tràn Bản Cuôn ngập sau mưa lớn",
    "Ổ gà lớn trước cổng trường tiểu học",
    "Cống thoát nước đầu dốc Pác Nặm bị vỡ",
    "Mặt đường bê tông khu chợ nứt toác một đoạn dài",
)


async def step(app: App, data: dict[str, Any], took: list[float]) -> None:
    start = time.perf_counter()
    await app.process_update(Update.de_json(data, app.bot))
    took.append(time.perf_counter() - start)


def buttons(request: OfflineRequest, user: int) -> list[str]:
    markup = request.sent(user)[-1].get("reply_markup") or {}
    return [b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row]


async def vote(app: App, request: OfflineRequest, user: int, poll: int, took: list[float]) -> None:
    await step(app, text_update(user, "/binhchon"), took)
    await step(app, callback_update(user, f"poll:vote:{poll}:0"), took)
    await step(app, callback_update(user, f"poll:vote:{poll}:1"), took)  # changed
    assert "Đã đổi ý kiến" in request.sent(user)[-1]["text"], request.sent(user)[-1]


async def report(app: App, request: OfflineRequest, user: int, took: list[float]) -> None:
    for data in (
        text_update(user, "/phananh"),
        callback_update(user, "report:cat:roads"),
        text_update(user, ROAD_PROBLEMS[user % len(ROAD_PROBLEMS)]),
        callback_update(user, "report:skip"),
        callback_update(user, "report:novil"),
    ):
        await step(app, data, took)
    if "report:other" in buttons(request, user):  # a near-duplicate shown first: another one
        await step(app, callback_update(user, "report:other"), took)
    ok = next(b for b in buttons(request, user) if b.startswith("report:ok:"))
    await step(app, callback_update(user, ok), took)
    assert "PA-26-" in request.sent(user)[-1]["text"], request.sent(user)[-1]


async def open_poll(services: Services) -> int:
    poll, _new = await services.polls.create(
        NewPoll(
            commune_code="02020",
            village=None,
            questions=(
                Question(
                    "Làm việc nào trước?",
                    "one",
                    ("Làm đường Nà Làng trước", "Sửa kênh mương Bản Cuôn"),
                ),
            ),
            results="after_vote",
            closes_at=services.clock.utcnow() + timedelta(days=3),
            source_key="bench",
        ),
        "bench",
    )
    return poll.id


async def main(n_users: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ours, request, services = await build_ours(Path(tmp))
        poll = await open_poll(services)
        echo, _echo_request = build_echo()
        walls: dict[str, list[float]] = {"vote": [], "report": [], "echo": []}
        async with ours, echo:
            for index in range(rounds + 1):  # round 0 warms up and is not counted
                if index == 1:
                    for figures in walls.values():
                        figures.clear()
                users = [10_000 * (index + 1) + u for u in range(n_users)]
                await onboard(ours, users)
                request.clear()
                gc.collect()
                start = time.perf_counter()
                await asyncio.gather(*(vote(ours, request, u, poll, []) for u in users))
                walls["vote"].append((time.perf_counter() - start) / (n_users * VOTE_STEPS))
                gc.collect()
                start = time.perf_counter()
                steps: list[float] = []
                await asyncio.gather(*(report(ours, request, u, steps) for u in users))
                walls["report"].append((time.perf_counter() - start) / len(steps))
                await services.notifier.settled()
                gc.collect()
                start = time.perf_counter()
                for _ in range(BASELINE_REPEATS):
                    await echo_round(echo, users, [])  # 8 updates per user
                walls["echo"].append(
                    (time.perf_counter() - start) / (BASELINE_REPEATS * n_users * 8)
                )
        await services.close()

    echo_step = statistics.mean(walls["echo"])
    print(f"{n_users} users at once × {rounds} rounds\n")
    print("| path | wall µs per update | ÷ echo |")
    print("|---|---:|---:|")
    verdicts = []
    for name in ("vote", "report"):
        per = statistics.mean(walls[name])
        ratios = [a / b for a, b in zip(walls[name], walls["echo"], strict=True)]
        median = statistics.median(ratios)
        rounds_text = ", ".join(f"{r:.2f}" for r in ratios)
        print(
            f"| {name} step (ours) | {per * 1e6:,.0f} | {median:.2f}× median of rounds, "
            f"{per / echo_step:.2f}× of the means (rounds {rounds_text}) |"
        )
        verdicts.append(
            f"{name} step ÷ echo {median:.2f}× (median of {len(ratios)} rounds): "
            f"{'within' if median <= 3 else 'ABOVE'} ≤ 3×"
        )
    print(f"| bare PTB echo | {echo_step * 1e6:,.0f} | 1× |\n")
    print("\n".join(verdicts))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50, help="users at once (default 50)")
    parser.add_argument("--rounds", type=int, default=15, help="rounds (default 15)")
    args = parser.parse_args()
    asyncio.run(main(args.users, args.rounds))
