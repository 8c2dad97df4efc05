"""How much one status request costs next to a bare python-telegram-bot echo.

    .venv/bin/python bench/updates.py [--updates N] [--rounds R] [--profile]

Ours: "/tiendo" from a user who has chosen a commune, through the whole path
(Update.de_json → Application.process_update → dispatcher → SQLite → template →
send_message) on a temporary database with the sample data. Echo: a bare Application whose
MessageHandler answers `reply_text(update.message.text)`. Both talk to the same kind of
offline Bot API (tests/offline_telegram.py), so no network is involved. A third path, a
bare Application sending our card's text and keyboard, shows what python-telegram-bot alone
costs for such a reply. The paths alternate in rounds so a noisy machine slows all alike.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import pstats
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import Application, ApplicationBuilder, ContextTypes, MessageHandler, filters

from bot.app.services import Services, build_services
from bot.app.settings import load_settings
from bot.channels.telegram import build_application
from bot.content.sample import load_sample, load_sample_campaigns
from bot.core.dispatch import Dispatcher
from bot.domain.clock import FixedClock
from handlers import build_router
from tests.offline_telegram import TOKEN, OfflineRequest, callback_update, text_update

App = Application[Any, Any, Any, Any, Any, Any]
TODAY = date(2026, 11, 29)  # the date the tests use; the sample data is dated from it
USER = 4242
WARMUP = 50
CARD = "/10 tiêu chí"  # in every status card
OURS = "ours: /tiendo, whole path"
ECHO = "bare PTB echo"
SAME = "bare PTB, same reply (card text + 8 buttons)"
TYPED = "ours: the question typed in words, whole path"
QUESTION = "xa minh dat may tieu chi roi ạ"  # no diacritics, teencode: the intent matcher


async def build_ours(folder: Path) -> tuple[App, OfflineRequest, Services]:
    settings = load_settings(
        db_url=f"sqlite+aiosqlite:///{folder / 'bench.sqlite3'}", telegram_token=TOKEN
    )
    services = await build_services(settings)
    services.clock = FixedClock(TODAY)
    await load_sample(services.db, services.reference, services.statuses, TODAY)
    await load_sample_campaigns(services)
    request = OfflineRequest()
    app = build_application(settings, Dispatcher(services, *build_router()), request=request)
    return app, request, services


def build_echo(card: tuple[str, InlineKeyboardMarkup] | None = None) -> tuple[App, OfflineRequest]:
    """The bare Application: echoes the text, or sends a fixed reply (text and keyboard)."""

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None and update.message.text is not None
        if card is None:
            await update.message.reply_text(update.message.text)
        else:
            await update.message.reply_text(card[0], reply_markup=card[1])

    request = OfflineRequest()
    app = ApplicationBuilder().token(TOKEN).request(request).get_updates_request(request).build()
    app.add_handler(MessageHandler(filters.TEXT, echo))
    return app, request


async def run(
    app: App, request: OfflineRequest, n: int, expect: str, text: str = "/tiendo"
) -> list[float]:
    """Send n updates of `text` one after the other; the time each took, in seconds."""
    updates = [text_update(USER, text) for _ in range(n)]
    request.clear()
    took = []
    clock = time.perf_counter
    for data in updates:
        start = clock()
        await app.process_update(Update.de_json(data, app.bot))
        took.append(clock() - start)
    sent = request.sent(USER)
    assert len(sent) == n and all(expect in p["text"] for p in sent), sent[:1]
    return took


def summary(name: str, took: list[float]) -> dict[str, Any]:
    ordered = sorted(took)
    return {
        "name": name,
        "n": len(took),
        "rate": len(took) / sum(took),
        "mean_us": statistics.fmean(took) * 1e6,
        "p50_us": ordered[len(ordered) // 2] * 1e6,
        "p95_us": ordered[int(len(ordered) * 0.95)] * 1e6,
    }


async def main(n: int, rounds: int, profile: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ours, ours_request, services = await build_ours(Path(tmp))
        async with ours:
            onboarding = [
                text_update(USER, "/start"),
                callback_update(USER, "lang:vi"),
                text_update(USER, "cho don"),
            ]
            for data in onboarding:
                await ours.process_update(Update.de_json(data, ours.bot))
            assert any("Đã lưu" in p["text"] for p in ours_request.sent(USER))
            await run(ours, ours_request, WARMUP, CARD)
            sent = ours_request.sent(USER)[-1]
            markup = InlineKeyboardMarkup.de_json(sent["reply_markup"], ours.bot)
            echo, echo_request = build_echo()
            same, same_request = build_echo((sent["text"], markup))
            paths = {
                OURS: (ours, ours_request, CARD, "/tiendo"),
                TYPED: (ours, ours_request, CARD, QUESTION),
                ECHO: (echo, echo_request, "/tiendo", "/tiendo"),
                SAME: (same, same_request, CARD, "/tiendo"),
            }
            async with echo, same:
                for app, request, expect, text in paths.values():
                    await run(app, request, WARMUP, expect, text)
                timings: dict[str, list[list[float]]] = {name: [] for name in paths}
                names = list(paths)
                for index in range(rounds):
                    turn = index % len(names)
                    for name in names[turn:] + names[:turn]:
                        gc.collect()
                        app, request, expect, text = paths[name]
                        timings[name].append(await run(app, request, n // rounds, expect, text))
                if profile:
                    profiler = cProfile.Profile()
                    profiler.enable()
                    await run(ours, ours_request, n, CARD)
                    profiler.disable()
        await services.close()

    report(timings, rounds)
    if profile:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("cumulative")
        stats.print_stats(40)
        print(out.getvalue())


def report(timings: dict[str, list[list[float]]], rounds: int) -> None:
    rows = {name: summary(name, [t for r in runs for t in r]) for name, runs in timings.items()}
    print(f"{rows[OURS]['n']} updates per path, {rounds} interleaved rounds\n")
    print("| path | updates/s | mean µs | p50 µs | p95 µs |")
    print("|---|---:|---:|---:|---:|")
    for row in rows.values():
        print(
            f"| {row['name']} | {row['rate']:,.0f} | {row['mean_us']:,.0f} "
            f"| {row['p50_us']:,.0f} | {row['p95_us']:,.0f} |"
        )

    def ratio(other: str) -> tuple[float, float]:
        overall = rows[OURS]["mean_us"] / rows[other]["mean_us"]
        per_round = [sum(a) / sum(b) for a, b in zip(timings[OURS], timings[other], strict=True)]
        return overall, statistics.median(per_round)

    overall, median = ratio(ECHO)
    verdict = "goal met" if overall <= 2 else "within target" if overall <= 3 else "ABOVE TARGET"
    print(f"\nours ÷ echo (per-update time): {overall:.2f}× (median of rounds {median:.2f}×)")
    print(f"  {verdict}: target ≤ 3×, goal ≤ 2×")
    typed = rows[TYPED]["mean_us"] / rows[ECHO]["mean_us"]
    understanding = rows[TYPED]["mean_us"] - rows[OURS]["mean_us"]
    print(f"typed question ÷ echo: {typed:.2f}× (goal ≤ 2×)")
    print(f"  understanding the words costs {understanding:,.0f} µs more than the command")
    overall, median = ratio(SAME)
    print(f"ours ÷ PTB sending the same reply: {overall:.2f}× (median of rounds {median:.2f}×)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=2000, help="per path (default 2000)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--profile", action="store_true", help="then cProfile our path")
    args = parser.parse_args()
    asyncio.run(main(args.updates, args.rounds, args.profile))
