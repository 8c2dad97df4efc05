"""A fake Telegram Bot API on 127.0.0.1 that enforces Telegram's send limits.

It answers getMe, sendMessage and sendPhoto with Message JSON that python-telegram-bot parses,
records what it accepted (with the time it arrived), and answers 429 with
`parameters.retry_after` when a message comes too soon: overall per second (free and paid
separately), per chat, per group per window. Chats can be told to answer 403, 400 or 5xx.

Run alone (for bench/broadcast.py, so the server does not share the sender's CPU):
    python -m tests.fake_bot_api --rate 1000 --paid-rate 1000
prints its URL; GET /_stats gives the counts, POST /_reset forgets them.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import re
import sys
import time
from collections import Counter, deque
from typing import Any, NamedTuple
from urllib.parse import parse_qs

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.live_server import serve
from tests.offline_telegram import BOT_USER, TOKEN

# python-telegram-bot 22 warns inside RetryAfter's own constructor (it reads the property it
# deprecates); the warning is PTB's, not ours, so tests that provoke a 429 let it pass.
PTB_RETRY_AFTER_WARNING = pytest.mark.filterwarnings(
    "ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning"
)


class Sent(NamedTuple):
    """One accepted message. A tuple of plain values, so the garbage collector stops tracking
    it: tens of thousands of them would otherwise lengthen every full collection."""

    method: str
    chat_id: int
    text: str  # the text or caption
    at: float  # time.monotonic() on arrival
    paid: bool
    parse_mode: str | None
    markup: str | None = None  # reply_markup as JSON text (a poll's vote buttons)


def _error(status: int, description: str, **parameters: Any) -> JSONResponse:
    """An error answer as Telegram gives it."""
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return JSONResponse(body, status)


class FakeBotApi:
    """The Bot API at /bot<token>/<method>, with Telegram's limits (None: not enforced)."""

    def __init__(
        self,
        rate: float | None = 30,
        paid_rate: float | None = 1000,
        per_chat_interval: float | None = 1.0,
        group_per_window: int = 20,
        group_window: float = 60.0,
        burst: int = 0,
        retry_after: int = 1,
        keep_text: bool = True,
    ) -> None:
        self.rate, self.paid_rate, self.burst = rate, paid_rate, burst
        self.per_chat_interval = per_chat_interval
        self.group_per_window, self.group_window = group_per_window, group_window
        self.retry_after = retry_after
        self.keep_text = keep_text
        self.accepted: list[Sent] = []
        self.too_many: list[tuple[int, float]] = []  # (chat, time) of every 429
        self.errors: list[tuple[int, int]] = []  # (chat, status) of every 4xx/5xx but 429
        self.blocked: set[int] = set()  # 403
        self.missing: set[int] = set()  # 400 chat not found
        self.failing: dict[int, int] = {}  # chat → how many 5xx still to give (-1: always)
        self.force_429: dict[int, int] = {}  # chat → how many 429s to give whatever the rate
        self._windows: dict[bool, deque[float]] = {False: deque(), True: deque()}
        self._last: dict[int, float] = {}
        self._groups: dict[int, deque[float]] = {}
        self._ids = itertools.count(1)
        self.app = Starlette(
            routes=[
                Route("/bot{token}/{method}", self._endpoint, methods=["POST"]),
                Route("/_stats", self._stats, methods=["GET"]),
                Route("/_reset", self._reset, methods=["POST"]),
            ]
        )

    def sent_to(self, chat_id: int) -> list[Sent]:
        """What one chat was sent, in order."""
        return [s for s in self.accepted if s.chat_id == chat_id]

    def reset(self) -> None:
        """Forget what was sent and refused."""
        self.accepted.clear()
        self.too_many.clear()
        self.errors.clear()

    def _too_soon(self, chat_id: int, paid: bool, now: float) -> bool:
        """Whether this message breaks a limit (then it is not counted)."""
        window = self._windows[paid]
        while window and window[0] <= now - 1.0:
            window.popleft()
        limit = self.paid_rate if paid else self.rate
        if limit is not None and len(window) >= limit + self.burst:
            return True
        last = self._last.get(chat_id)
        if self.per_chat_interval and last is not None and now - last < self.per_chat_interval:
            return True
        if chat_id < 0:
            sends = self._groups.setdefault(chat_id, deque())
            while sends and sends[0] <= now - self.group_window:
                sends.popleft()
            if len(sends) >= self.group_per_window:
                return True
        return False

    async def _endpoint(self, request: Request) -> JSONResponse:
        """One Bot API call: limits first, then the chosen failures, then a Message."""
        now = time.monotonic()
        if request.path_params["token"] != TOKEN:
            return _error(401, "Unauthorized")
        method = request.path_params["method"]
        if method == "getMe":
            return JSONResponse({"ok": True, "result": BOT_USER})
        if method not in ("sendMessage", "sendPhoto"):
            return _error(404, "Not Found")
        # python-telegram-bot posts form fields; JSON values (markup) arrive as strings.
        form = {k: v[-1] for k, v in parse_qs((await request.body()).decode()).items()}
        chat_id = int(form["chat_id"])
        paid = form.get("allow_paid_broadcast") in ("true", "True", "1")
        if self.force_429.get(chat_id, 0) > 0 or self._too_soon(chat_id, paid, now):
            if self.force_429.get(chat_id, 0) > 0:
                self.force_429[chat_id] -= 1
            self.too_many.append((chat_id, now))
            return _error(
                429,
                f"Too Many Requests: retry after {self.retry_after}",
                retry_after=self.retry_after,
            )
        if chat_id in self.blocked:
            self.errors.append((chat_id, 403))
            return _error(403, "Forbidden: bot was blocked by the user")
        if chat_id in self.missing:
            self.errors.append((chat_id, 400))
            return _error(400, "Bad Request: chat not found")
        if form.get("parse_mode") == "HTML" and not _balanced(form.get("text") or ""):
            self.errors.append((chat_id, 400))
            return _error(400, "Bad Request: can't parse entities: unclosed start tag")
        if self.failing.get(chat_id, 0) != 0:
            self.failing[chat_id] -= 1
            self.errors.append((chat_id, 502))
            return _error(502, "Bad Gateway")
        self._windows[paid].append(now)
        self._last[chat_id] = now
        if chat_id < 0:
            self._groups.setdefault(chat_id, deque()).append(now)
        text = form.get("text") or form.get("caption") or ""
        self.accepted.append(
            Sent(
                method,
                chat_id,
                text if self.keep_text else "",
                now,
                paid,
                form.get("parse_mode"),
                form.get("reply_markup"),
            )
        )
        return JSONResponse({"ok": True, "result": self._message(method, chat_id, form)})

    def _message(self, method: str, chat_id: int, form: dict[str, str]) -> dict[str, Any]:
        """The Message JSON Telegram answers a send with."""
        chat: dict[str, Any] = {"id": chat_id, "type": "private", "first_name": "Người"}
        if chat_id < 0:
            chat = {"id": chat_id, "type": "group", "title": "Thôn"}
        message: dict[str, Any] = {
            "message_id": next(self._ids),
            "date": int(time.time()),
            "chat": chat,
            "from": BOT_USER,
        }
        if method == "sendPhoto":
            size = {"file_id": "AgACAgIAAx", "file_unique_id": "AQAD", "width": 90, "height": 90}
            message["photo"] = [size]
            if form.get("caption"):
                message["caption"] = form["caption"]
        else:
            message["text"] = form["text"]
        return message

    async def _stats(self, request: Request) -> JSONResponse:
        """Counts for the benchmark: chats from `min_chat` up (its probes use lower ids)."""
        low = int(request.query_params.get("min_chat", "-1000000000000"))
        sent = [s for s in self.accepted if s.chat_id >= low]
        per_chat = Counter(s.chat_id for s in sent)
        times = [s.at for s in sent]
        return JSONResponse(
            {
                "accepted": len(sent),
                "chats": len(per_chat),
                "duplicates": sum(n - 1 for n in per_chat.values()),
                "too_many": len(self.too_many),
                "errors": len(self.errors),
                "first": min(times, default=0.0),
                "last": max(times, default=0.0),
                "max_per_second": max_in_window(times, 1.0),
            }
        )

    async def _reset(self, request: Request) -> JSONResponse:
        """POST /_reset: forget what was sent and refused."""
        self.reset()
        return JSONResponse({"ok": True})


def max_in_window(times: list[float], width: float) -> int:
    """The most arrivals in any window [t, t + width)."""
    ordered = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(ordered):
        while ordered[start] <= t - width:
            start += 1
        best = max(best, end - start + 1)
    return best


def _balanced(text: str) -> bool:
    """Telegram refuses HTML whose tags do not close (a rough check, enough for the tests)."""
    opened = re.findall(r"<([a-z]+)[ >]", text)
    closed = re.findall(r"</([a-z]+)>", text)
    return sorted(opened) == sorted(closed)


def gaps(times: list[float]) -> list[float]:
    """Seconds between consecutive arrivals."""
    ordered = sorted(times)
    return [b - a for a, b in itertools.pairwise(ordered)]


async def _main(args: argparse.Namespace) -> None:
    """Serve a fake until terminated, its URL on stdout (for the benchmark)."""
    fake = FakeBotApi(rate=args.rate, paid_rate=args.paid_rate, burst=args.burst, keep_text=False)
    async with serve(fake.app) as url:
        # Arrival is stamped when a request is handled, so a full collection (20-30 ms with
        # everything imported) would stamp the requests that queued meanwhile as one burst and
        # answer 429 to a steady sender a second later. Startup objects are frozen out of it.
        gc.freeze()
        print(json.dumps({"url": url}), flush=True)
        await asyncio.Event().wait()  # until the parent terminates us


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="A fake Bot API for benchmarks.")
    parser.add_argument("--rate", type=float, default=30)
    parser.add_argument("--paid-rate", type=float, default=1000)
    parser.add_argument("--burst", type=int, default=0)
    try:
        asyncio.run(_main(parser.parse_args()))
    except KeyboardInterrupt:
        sys.exit(0)
