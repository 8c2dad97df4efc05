"""The Telegram channel on python-telegram-bot: updates in, replies out, command menus."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from telegram import (
    BotCommand,
    BotCommandScopeDefault,
    Update,
)
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError
from telegram.ext import Application, ApplicationBuilder, ContextTypes, TypeHandler
from telegram.request import BaseRequest

from bot.channels.telegram_http import send, telegram_request
from bot.channels.telegram_transport import retry_after_seconds
from bot.core.conversation import Document, Incoming, Reply
from bot.core.dispatch import Dispatcher
from bot.core.files import CannotFetch, FileTooBig
from bot.delivery.limiter import Limiter
from bot.delivery.notify import Undeliverable
from bot.delivery.transport import Permanent, RetryLater
from bot.domain.i18n import LOCALES, _, use_locale
from bot.domain.text import clean, split_message

if TYPE_CHECKING:
    from bot.app.settings import Settings

log = logging.getLogger(__name__)
CHANNEL = "telegram"
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
REPLY_CONNECTIONS = 64  # answers to villagers in flight at once, beside the broadcast
_UNSUPPORTED = (
    "sticker",
    "photo",
    "voice",
    "video",
    "video_note",
    "audio",
    "document",
    "animation",
    "location",
    "contact",
    "poll",
    "dice",
    "venue",
)


def to_event(update: Update) -> Incoming | None:
    """The update as the core sees it, or None for updates the bot ignores."""
    user = update.effective_user
    if user is None or user.is_bot:
        return None
    who = Incoming(
        CHANNEL, str(user.id), language_hint=user.language_code, display_name=user.full_name
    )
    query = update.callback_query
    if query is not None:
        return replace(who, button=query.data or "", message_id=query.id)
    message = update.message
    if message is None:
        return None  # edits, membership changes …
    message_id = f"{message.chat_id}:{message.message_id}"
    if message.text is not None:
        return replace(who, text=clean(message.text), message_id=message_id)
    kind = next((k for k in _UNSUPPORTED if getattr(message, k, None)), "other")
    photo = message.photo[-1].file_id if message.photo else None  # the largest size
    caption = clean(message.caption or "")
    place = message.location
    location = (place.latitude, place.longitude) if place is not None else None
    sent = message.document
    document = (
        Document(sent.file_id, clean(sent.file_name or "")[:200], int(sent.file_size or 0))
        if sent is not None
        else None
    )
    return replace(
        who,
        unsupported=kind,
        photo=photo,
        location=location,
        document=document,
        text=caption,
        message_id=message_id,
    )


async def fetch_file(bot: Any, file_id: str, max_bytes: int) -> bytes:
    """A file a user sent: getFile, then its download, refused over `max_bytes` (before the
    download when Telegram tells the size)."""
    try:
        found = await bot.get_file(file_id)
        if found.file_size is not None and found.file_size > max_bytes:
            raise FileTooBig(f"{found.file_size} bytes")
        return bytes(await found.download_as_bytearray())
    except TelegramError as error:
        raise CannotFetch(str(error)) from error


def to_markup(reply: Reply) -> dict[str, Any] | None:
    """The reply's buttons as Bot API JSON (an InlineKeyboardMarkup)."""
    if not reply.buttons:
        return None
    keyboard = [[{"text": b.label, "callback_data": b.id} for b in row] for row in reply.buttons]
    return {"inline_keyboard": keyboard}


async def send_replies(
    app: Application[Any, Any, Any, Any, Any, Any],
    chat_id: int,
    replies: list[Reply],
    limiter: Limiter | None = None,
    notice: bool = False,
) -> list[int]:
    """Send replies, long ones in parts; the message ids. With a limiter shared with
    broadcasts, each reply takes its turn ahead of them (it almost never waits); a `notice`
    waits for the pace, ahead of broadcast messages."""
    sent = []
    for reply in replies:
        parts = split_message(reply.text, TEXT_LIMIT)
        if reply.photo:
            # The photo first, with the text as its caption when it fits (1024 characters).
            photo: dict[str, Any] = {"chat_id": chat_id, "photo": reply.photo}
            if len(reply.text) <= CAPTION_LIMIT:
                photo["caption"], parts = reply.text, []
                if (markup := to_markup(reply)) is not None:
                    photo["reply_markup"] = markup
            if limiter is not None:
                await limiter.acquire(chat_id, interactive=not notice, notice=notice)
            try:
                sent.append(int((await send(app.bot, "sendPhoto", photo))["message_id"]))
            finally:
                if limiter is not None and notice:
                    limiter.sent(chat_id)
        for index, part in enumerate(parts):
            params: dict[str, Any] = {"chat_id": chat_id, "text": part}
            if index == len(parts) - 1 and (markup := to_markup(reply)) is not None:
                params["reply_markup"] = markup
            if limiter is not None:
                await limiter.acquire(chat_id, interactive=not notice, notice=notice)
            try:
                sent.append(int((await send(app.bot, "sendMessage", params))["message_id"]))
            finally:
                if limiter is not None and notice:
                    limiter.sent(chat_id)  # as a broadcast's: the chat's interval from the answer
    return sent


async def answer_update(
    app: Application[Any, Any, Any, Any, Any, Any],
    dispatcher: Dispatcher,
    update: Update,
    limiter: Limiter | None = None,
) -> None:
    """Answer one update and send the replies (from the Application's queue, or the inbox)."""
    event = to_event(update)
    if event is None or update.effective_chat is None:
        return
    chat_id = update.effective_chat.id

    async def deliver(replies: list[Reply]) -> None:
        if update.callback_query is not None:
            try:
                await update.callback_query.answer()
            except TelegramError as error:  # an old query can no longer be answered
                log.info("could not answer callback query: %s", error)
        await send_replies(app, chat_id, replies, limiter)

    await dispatcher.handle(event, deliver)


def build_application(
    settings: Settings,
    dispatcher: Dispatcher,
    request: BaseRequest | None = None,
    webhook: bool = False,
    limiter: Limiter | None = None,
) -> Application[Any, Any, Any, Any, Any, Any]:
    """The python-telegram-bot Application wired to the dispatcher; with `webhook`, it has no
    poller and updates are put on its queue by the web server."""
    assert settings.telegram_token is not None
    builder = (
        ApplicationBuilder()
        .token(settings.telegram_token.get_secret_value().strip())
        .base_url(settings.telegram_api_url)
        .concurrent_updates(True)  # per-user order is kept by the dispatcher's locks
    )
    if request is not None:
        builder = builder.request(request).get_updates_request(request)
    else:
        # Replies and broadcasts go out on aiohttp (a third of httpx's CPU per request);
        # getUpdates, one long poll at a time, stays on PTB's default.
        builder = builder.request(telegram_request(settings, replies=REPLY_CONNECTIONS))
    if webhook:
        builder = builder.updater(None)
    app = builder.build()

    async def on_update(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await answer_update(context.application, dispatcher, update, limiter)

    async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("Telegram update failed: %s", context.error, exc_info=context.error)

    async def notify(user_id: str, replies: list[Reply]) -> None:
        """A notice, paced after replies and before broadcasts; Telegram's refusals in the
        outbox's terms (network errors and 5xx are retried as they are)."""
        try:
            await send_replies(app, int(user_id), replies, limiter, notice=True)
        except Forbidden as error:  # they blocked the bot
            raise Undeliverable(str(error)) from error
        except RetryAfter as error:
            seconds = retry_after_seconds(error)
            if limiter is not None:
                limiter.pause(seconds)  # every queued send waits it out, not only this one
            raise RetryLater(seconds, str(error)) from error
        except BadRequest as error:  # chat not found, and the like: another try would not help
            raise Permanent(str(error)) from error

    async def fetch(file_id: str, max_bytes: int) -> bytes:
        return await fetch_file(app.bot, file_id, max_bytes)

    dispatcher.services.notifier.register(CHANNEL, notify)
    dispatcher.services.files.register(CHANNEL, fetch)
    app.add_handler(TypeHandler(Update, on_update))
    app.add_error_handler(on_error)
    return app


def command_menus(dispatcher: Dispatcher) -> dict[str, list[BotCommand]]:
    """The command menu per language: Vietnamese names for vi, English aliases for en."""
    menus: dict[str, list[BotCommand]] = {}
    for locale in LOCALES:
        with use_locale(locale):
            menus[locale] = [
                BotCommand(spec.names[0] if locale == "vi" else spec.names[-1], _(spec.description))
                for spec in dispatcher.router.command_specs
                if spec.menu
            ]
    return menus


async def register_commands(
    app: Application[Any, Any, Any, Any, Any, Any], dispatcher: Dispatcher
) -> None:
    """setMyCommands in vi (also the default) and en; optional, so failures only log."""
    for locale, commands in command_menus(dispatcher).items():
        for language in (locale, None) if locale == "vi" else (locale,):
            try:
                await app.bot.set_my_commands(
                    commands, scope=BotCommandScopeDefault(), language_code=language
                )
            except TelegramError as error:
                log.warning("setMyCommands(%s) failed: %s", language or "default", error)
