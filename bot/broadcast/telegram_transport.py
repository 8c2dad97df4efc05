"""Broadcasts on Telegram, through python-telegram-bot's `Bot` (its own rate limiter unused).

Telegram HTML when the broadcast has it, plain text otherwise; long texts split below 4096 at
paragraph boundaries; a photo carries the text as its caption when it fits in 1024 characters,
else a short caption (the title) and the text follows as messages.
"""

from __future__ import annotations

import html
import logging
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from functools import partial
from typing import Any

from telegram import Bot, Message
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from bot.broadcast import Blocked, Permanent, RetryLater, Temporary
from bot.broadcast.limiter import Limiter
from bot.broadcast.outbox import Broadcast
from bot.settings import Settings
from bot.text import split_message

CHANNEL = "telegram"
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
POOL_SIZE = 4  # sends in flight per connection pool

log = logging.getLogger(__name__)


def retry_after_seconds(error: RetryAfter) -> float:
    """RetryAfter's wait in seconds, whichever type this PTB version gives it as."""
    with warnings.catch_warnings():
        # PTB 22 warns that the attribute turns into a timedelta; both are handled here.
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value: Any = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def build_bots(settings: Settings) -> list[Bot]:
    """Bots on the configured API URL, each with a small pool: one connection per send in flight.

    httpcore's pool scans every connection at each request's start and end, so one pool of N
    connections costs O(N) per request; at paid rates (hundreds in flight) that alone would use
    up the CPU. Several small pools keep it constant.
    """
    assert settings.telegram_token is not None
    token = settings.telegram_token.get_secret_value().strip()
    shards = max(1, settings.broadcast_in_flight // POOL_SIZE)
    size = -(-settings.broadcast_in_flight // shards) + 1  # ceiling, and one spare
    return [
        Bot(
            token,
            base_url=settings.telegram_api_url,
            # pool_timeout: a send waits for a free connection rather than fail.
            request=HTTPXRequest(connection_pool_size=size, read_timeout=10.0, pool_timeout=10.0),
        )
        for _ in range(shards)
    ]


class TelegramTransport:
    """Sends a broadcast to one Telegram chat, each message paced by the shared limiter."""

    def __init__(self, bots: Bot | Sequence[Bot], limiter: Limiter) -> None:
        self.bots = [bots] if isinstance(bots, Bot) else list(bots)
        self.bot = self.bots[0]
        self.limiter = limiter

    def pause(self, seconds: float) -> None:
        """Hold every broadcast send on Telegram (a 429 came back)."""
        self.limiter.pause(seconds)

    async def send(self, user_id: str, broadcast: Broadcast) -> str:
        """Send the broadcast's photo and text parts to the chat; the first message's id.
        HTML that Telegram cannot parse is sent again as the plain text it came with."""
        try:
            chat_id = int(user_id)
        except ValueError:
            raise Permanent(f"not a Telegram chat id: {user_id!r}") from None
        if broadcast.html:
            try:
                return await self._send(chat_id, broadcast, ParseMode.HTML, broadcast.html)
            except Permanent as error:
                if "parse entities" not in str(error):
                    raise
                log.warning(
                    "broadcast %s: HTML refused (%s); sending plain text", broadcast.id, error
                )
        return await self._send(chat_id, broadcast, None, broadcast.text)

    async def _send(self, chat_id: int, broadcast: Broadcast, mode: str | None, body: str) -> str:
        bot = self.bots[chat_id % len(self.bots)]
        parts: list[str]
        first: Message | None = None
        if broadcast.photo:
            if len(body) <= CAPTION_LIMIT:
                caption, parts = body, []
            else:
                title = broadcast.title[: CAPTION_LIMIT - 1]
                caption = html.escape(title) if mode else title
                parts = split_message(body, TEXT_LIMIT)
            first = await self._call(
                chat_id,
                broadcast.paid,
                True,
                partial(
                    bot.send_photo,
                    chat_id,
                    broadcast.photo,
                    caption=caption,
                    parse_mode=mode,
                    allow_paid_broadcast=broadcast.paid or None,
                ),
            )
        else:
            parts = split_message(body, TEXT_LIMIT)
        for part in parts:
            message = await self._call(
                chat_id,
                broadcast.paid,
                first is None,
                partial(
                    bot.send_message,
                    chat_id,
                    part,
                    parse_mode=mode,
                    allow_paid_broadcast=broadcast.paid or None,
                ),
            )
            first = first or message
        if first is None:
            raise Permanent("the broadcast has no text and no photo")
        return str(first.message_id)

    async def _call(
        self, chat_id: int, paid: bool, first: bool, request: Callable[[], Awaitable[Message]]
    ) -> Message:
        """One Bot API call within the limits, its errors turned into the sender's."""
        while True:
            await self.limiter.acquire(chat_id, interactive=False, paid=paid)
            try:
                return await request()
            except RetryAfter as error:
                if first:
                    raise RetryLater(retry_after_seconds(error), str(error)) from error
                # A later part: retrying the whole delivery would repeat the parts already
                # sent, so wait here (every broadcast send waits too) and send this part again.
                self.limiter.pause(retry_after_seconds(error))
            except Forbidden as error:
                raise Blocked(str(error)) from error
            except ChatMigrated as error:
                raise Permanent(f"group moved to supergroup {error.new_chat_id}") from error
            except BadRequest as error:  # before NetworkError: BadRequest is one of those
                raise Permanent(str(error)) from error
            except (TimedOut, NetworkError) as error:  # 5xx too
                raise Temporary(str(error)) from error
            finally:
                self.limiter.sent(chat_id)


@asynccontextmanager
async def telegram_transport(
    settings: Settings, limiter: Limiter | None = None, bots: Sequence[Bot] | None = None
) -> AsyncIterator[TelegramTransport]:
    """A started Telegram transport (getMe checked), shut down on leaving."""
    bots = list(bots) if bots is not None else build_bots(settings)
    async with AsyncExitStack() as stack:
        for bot in bots:
            await stack.enter_async_context(bot)
        yield TelegramTransport(bots, limiter or Limiter.from_settings(settings))
