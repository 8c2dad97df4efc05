"""Broadcasts on Telegram, through python-telegram-bot's `Bot` (its own rate limiter unused)
on aiohttp (`bot.channels.telegram_http`).

Telegram HTML when the broadcast has it, plain text otherwise; long texts split below 4096 at
paragraph boundaries; a photo carries the text as its caption when it fits in 1024 characters,
else a short caption (the title) and the text follows as messages. A broadcast's buttons (a
poll's options) go under its last message.
"""

from __future__ import annotations

import html
import logging
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from telegram import Bot
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.warnings import PTBDeprecationWarning

from bot.channels.telegram_http import closing_on_failure, send, telegram_request
from bot.delivery.limiter import Limiter
from bot.delivery.outbox import Broadcast
from bot.delivery.transport import Blocked, Permanent, RetryLater, Temporary
from bot.domain.text import split_message

if TYPE_CHECKING:
    from bot.app.settings import Settings

CHANNEL = "telegram"
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024

log = logging.getLogger(__name__)


def retry_after_seconds(error: RetryAfter) -> float:
    """RetryAfter's wait in seconds, whichever type this PTB version gives it as."""
    with warnings.catch_warnings():
        # PTB 22 warns that the attribute turns into a timedelta; both are handled here.
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value: Any = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def build_bot(settings: Settings) -> Bot:
    """A Bot on the configured API URL for the broadcast sender alone."""
    assert settings.telegram_token is not None
    token = settings.telegram_token.get_secret_value().strip()
    return Bot(token, base_url=settings.telegram_api_url, request=telegram_request(settings))


def _markup(broadcast: Broadcast) -> dict[str, Any] | None:
    """The broadcast's buttons (a poll's vote) as an inline keyboard, if it has any."""
    if not broadcast.buttons:
        return None
    rows = [[{"text": label, "callback_data": i} for i, label in row] for row in broadcast.buttons]
    return {"inline_keyboard": rows}


class TelegramTransport:
    """Sends a broadcast to one Telegram chat, each message paced by the shared limiter."""

    def __init__(self, bot: Bot, limiter: Limiter) -> None:
        self.bot = bot
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
        parts: list[str]
        first: str | None = None
        common: dict[str, Any] = {"chat_id": chat_id}
        if mode:
            common["parse_mode"] = mode
        if broadcast.paid:
            common["allow_paid_broadcast"] = True
        markup = _markup(broadcast)
        if broadcast.photo:
            if len(body) <= CAPTION_LIMIT:
                caption, parts = body, []
            else:
                title = broadcast.title[: CAPTION_LIMIT - 1]
                caption = html.escape(title) if mode else title
                parts = split_message(body, TEXT_LIMIT)
            photo = common | {"photo": broadcast.photo, "caption": caption}
            if markup is not None and not parts:
                photo["reply_markup"] = markup
            first = await self._call(chat_id, broadcast.paid, True, "sendPhoto", photo)
        else:
            parts = split_message(body, TEXT_LIMIT)
        for index, part in enumerate(parts):
            text = common | {"text": part}
            if markup is not None and index == len(parts) - 1:
                text["reply_markup"] = markup  # under the last part, as a reply's buttons
            sent = await self._call(chat_id, broadcast.paid, first is None, "sendMessage", text)
            first = first or sent
        if first is None:
            raise Permanent("the broadcast has no text and no photo")
        return first

    async def _call(
        self, chat_id: int, paid: bool, first: bool, method: str, params: dict[str, Any]
    ) -> str:
        """One Bot API call within the limits, its errors turned into the sender's."""
        while True:
            await self.limiter.acquire(chat_id, interactive=False, paid=paid)
            try:
                return str((await send(self.bot, method, params))["message_id"])
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
    settings: Settings, limiter: Limiter | None = None, bot: Bot | None = None
) -> AsyncIterator[TelegramTransport]:
    """A started Telegram transport (getMe checked), shut down on leaving."""
    bot = bot or build_bot(settings)
    async with closing_on_failure(bot):
        await bot.initialize()
    try:
        yield TelegramTransport(bot, limiter or Limiter.from_settings(settings))
    finally:
        await bot.shutdown()
