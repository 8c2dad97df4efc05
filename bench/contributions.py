"""What a pledge costs: register-and-confirm flows through the Telegram path, many users at once.

    .venv/bin/python bench/contributions.py [--users 50] [--rounds 5]

Each flow is eight updates through the whole path (offline Bot API, SQLite file, sample data):
the villager's "/dongop", village, kind, "500k", when, anonymity and confirmation, then an
official's confirmation. All users run their flows at the same time. In the same run, the bare
python-telegram-bot echo of bench/updates.py gets the same number of updates with the same
concurrency: the baseline. Target: a pledge step costs at most 3× a bare echo update.
With --typed every answer is typed as villagers type it ("na lang", "nam tram nghin",
"dung roi"), so the step's understanding is measured too.

A first round of every path runs before the measured ones and is not counted: it is where
SQLAlchemy compiles each statement, Jinja each template and Babel loads its locale data, once
per process — a bot that has answered one villager has paid those.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import ApplicationBuilder, ContextTypes, TypeHandler

from bench.updates import App, build_echo, build_ours
from tests.offline_telegram import TOKEN, OfflineRequest, callback_update, text_update

OFFICIAL = 900_000
STEPS = 8
BASELINE_REPEATS = 3


async def step(app: App, data: dict[str, Any], took: list[float]) -> None:
    start = time.perf_counter()
    await app.process_update(Update.de_json(data, app.bot))
    took.append(time.perf_counter() - start)


def last_buttons(request: OfflineRequest, user: int) -> list[str]:
    markup = request.sent(user)[-1].get("reply_markup") or {}
    return [b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row]


TYPED = False  # --typed: every answer typed as villagers do, through the step's understanding


async def flow(app: App, request: OfflineRequest, user: int, took: list[float]) -> None:
    """One villager's pledge from start to receipt, then the official's confirmation."""
    if TYPED:
        steps = [
            text_update(user, "toi muon gop"),
            text_update(user, "na lang"),
            text_update(user, "tien"),
            text_update(user, "nam tram nghin"),
            text_update(user, "bay gio"),
            text_update(user, "khong"),
            text_update(user, "dung roi"),
        ]
    else:
        steps = [
            text_update(user, "/dongop"),
            callback_update(user, "contrib:vil:0"),
            callback_update(user, "contrib:kind:money"),
            text_update(user, "500k"),
            callback_update(user, "contrib:when:now"),
            callback_update(user, "contrib:public:no"),
        ]
    for data in steps:
        await step(app, data, took)
    if not TYPED:
        buttons = last_buttons(request, user)
        ok = next((b for b in buttons if b.startswith("contrib:ok:")), None)
        assert ok, request.sent(user)[-3:]
        await step(app, callback_update(user, ok), took)
    assert "CS-26-" in request.sent(user)[-1]["text"]
    gift = request.sent(user)[-1]["text"].split("CS-26-")[1][:5]
    await step(app, callback_update(OFFICIAL, f"review:ok:{int(gift)}"), took)


async def onboard(app: App, users: list[int]) -> None:
    for user in users:
        for data in (
            text_update(user, "/start"),
            callback_update(user, "lang:vi"),
            text_update(user, "cho don"),
        ):
            await app.process_update(Update.de_json(data, app.bot))


async def echo_round(app: App, users: list[int], took: list[float], same: bool = False) -> None:
    """STEPS updates per user, all users at once: plain texts for the echo; for `same`, the
    flow's mix (two texts, six button presses) as the bare app below answers them."""

    async def one(user: int) -> None:
        for index in range(STEPS):
            data = (
                text_update(user, "500k")
                if not same or index in (0, 3)
                else callback_update(user, "contrib:kind:money")
            )
            await step(app, data, took)

    await asyncio.gather(*(one(u) for u in users))


def build_same() -> App:
    """A bare Application making the Bot API calls our flow makes: a button press is answered
    and each update gets a reply with a three-button keyboard."""
    markup = InlineKeyboardMarkup(
        [
            [InlineKeyboardButton("Đúng, ghi nhận", callback_data="contrib:ok:0123456789abcdef")],
            [
                InlineKeyboardButton("Sửa lại", callback_data="contrib:redo"),
                InlineKeyboardButton("Hủy", callback_data="menu:main"),
            ],
        ]
    )
    text = "Bạn đăng ký góp 500.000 đồng cho “Bê tông hóa đường thôn Nà Làng”.\nĐúng không?"

    async def reply(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.callback_query is not None:
            await update.callback_query.answer()
        assert update.effective_chat is not None
        await context.bot.send_message(update.effective_chat.id, text, reply_markup=markup)

    request = OfflineRequest()
    app = ApplicationBuilder().token(TOKEN).request(request).get_updates_request(request).build()
    app.add_handler(TypeHandler(Update, reply))
    return app


def p95(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.95)]


async def main(n_users: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ours, request, services = await build_ours(Path(tmp))
        await services.officials.grant(f"telegram:{OFFICIAL}", "commune_official", "02020", "b")
        echo, _echo_request = build_echo()
        same = build_same()
        async with ours, echo, same:
            ours_wall: list[float] = []
            echo_wall: list[float] = []
            same_wall: list[float] = []
            ours_steps: list[float] = []
            echo_steps: list[float] = []
            same_steps: list[float] = []
            for index in range(rounds + 1):  # round 0 warms up and is not counted
                if index == 1:
                    for figures in (ours_wall, echo_wall, same_wall):
                        figures.clear()
                    for figures in (ours_steps, echo_steps, same_steps):
                        figures.clear()
                users = [10_000 * (index + 1) + u for u in range(n_users)]
                await onboard(ours, users)
                request.clear()  # keeps looking up each user's last message cheap
                gc.collect()
                start = time.perf_counter()
                await asyncio.gather(*(flow(ours, request, u, ours_steps) for u in users))
                ours_wall.append(time.perf_counter() - start)
                # The villagers' notices went out during the flows; what is left (recording the
                # last batch) must not run into the baselines' time.
                await services.notifier.settled()
                # The baselines are short (an eighth of our time or less), so one blip on the
                # machine moves them a lot: each runs BASELINE_REPEATS times per round.
                gc.collect()
                start = time.perf_counter()
                for _ in range(BASELINE_REPEATS):
                    await echo_round(echo, users, echo_steps)
                echo_wall.append((time.perf_counter() - start) / BASELINE_REPEATS)
                gc.collect()
                start = time.perf_counter()
                for _ in range(BASELINE_REPEATS):
                    await echo_round(same, users, same_steps, same=True)
                same_wall.append((time.perf_counter() - start) / BASELINE_REPEATS)
        await services.close()

    flows = n_users * rounds
    ours_step = sum(ours_wall) / (flows * STEPS)
    echo_step = sum(echo_wall) / (flows * STEPS)
    print(f"{n_users} users at once × {rounds} rounds = {flows} flows of {STEPS} updates\n")
    print("| path | flows/s | updates/s | wall µs per update | p95 latency ms |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| pledge flow (ours) | {flows / sum(ours_wall):,.1f} | {1 / ours_step:,.0f} "
        f"| {ours_step * 1e6:,.0f} | {p95(ours_steps) * 1e3:,.1f} |"
    )
    print(
        f"| bare PTB echo | — | {1 / echo_step:,.0f} | {echo_step * 1e6:,.0f} "
        f"| {p95(echo_steps) * 1e3:,.1f} |"
    )
    same_step = sum(same_wall) / (flows * STEPS)
    print(
        f"| bare PTB, same Bot API calls | — | {1 / same_step:,.0f} "
        f"| {same_step * 1e6:,.0f} | {p95(same_steps) * 1e3:,.1f} |"
    )
    per_round = [a / b for a, b in zip(ours_wall, echo_wall, strict=True)]
    ratio = ours_step / echo_step
    verdict = "within target" if ratio <= 3 else "ABOVE TARGET"
    print(
        f"\npledge step ÷ echo update: {ratio:.2f}× (rounds: "
        f"{', '.join(f'{r:.2f}' for r in per_round)}; median {statistics.median(per_round):.2f}×)"
    )
    print(f"  {verdict}: target ≤ 3×")
    print(
        f"bare PTB making the same calls ÷ echo: {same_step / echo_step:.2f}×; "
        f"ours ÷ that: {ours_step / same_step:.2f}×"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50, help="users at once (default 50)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--typed", action="store_true", help="type every answer in words")
    args = parser.parse_args()
    TYPED = args.typed
    asyncio.run(main(args.users, args.rounds))
