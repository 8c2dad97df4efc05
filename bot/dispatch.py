"""The dispatcher: one update in, replies out. Same path for every channel.

Updates from one user are handled one at a time, in arrival order; different users run
concurrently. Any failure becomes a short apology in the user's language and a log line.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

from sqlalchemy.exc import SQLAlchemyError

from bot.core import Context, Handler, Incoming, Reply, Router, StalePayload, as_list, parse_command
from bot.i18n import _, use_locale
from bot.services import Services
from bot.text import fold

log = logging.getLogger(__name__)
Deliver = Callable[[list[Reply]], Awaitable[None]]


@dataclass(frozen=True)
class Fallbacks:
    """What to answer when nothing else applies."""

    unknown: Handler  # text not understood, unknown command, forged or stale button
    unsupported: Handler  # sticker, photo, voice …
    too_long: Handler


class KeyedLocks:
    """An asyncio lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[object, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: object) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


def picked_by_number(event: Incoming, offered: list[str]) -> Incoming:
    """On a channel without buttons, "2" means the second button offered last."""
    text = event.text.strip()
    if event.numbered and text.isdigit() and 1 <= int(text) <= len(offered):
        return replace(event, text="", button=offered[int(text) - 1])
    return event


def apology() -> Reply:
    return Reply(_("Xin lỗi, hệ thống đang gặp sự cố. Bạn vui lòng thử lại sau ít phút."))


class Dispatcher:
    def __init__(self, services: Services, router: Router, fallbacks: Fallbacks) -> None:
        self.services = services
        self.router = router
        self.fallbacks = fallbacks
        self.locks = KeyedLocks()

    async def handle(self, event: Incoming, deliver: Deliver | None = None) -> list[Reply]:
        """Answer one event; never raises for the user's sake.

        `deliver`, when given, sends the replies before the user's lock is released, so a
        slow send cannot let the answer to a later message overtake this one.
        """
        async with self.locks.hold(event.key):
            replies, locale = await self._answer(event)
            if deliver is not None:
                with use_locale(locale):  # what the channel adds (a hint) in the same language
                    await deliver(replies)
            return replies

    async def _answer(self, event: Incoming) -> tuple[list[Reply], str]:
        """The replies, and the language they are in."""
        default_locale = self.services.settings.default_locale
        try:
            user = await self.services.users.load(event.channel, event.user_id, default_locale)
        except SQLAlchemyError:
            log.exception("loading user %s:%s failed", event.channel, event.user_id)
            with use_locale(default_locale):
                return [apology()], default_locale
        before = user.snapshot()
        user.seen(self.services.clock.utcnow())
        event = picked_by_number(event, user.offered)
        with use_locale(user.locale):
            try:
                replies = as_list(await self._route(Context(event, user, self.services)))
                if event.numbered:
                    user.offered = [b.id for r in replies for b in r.all_buttons()]
                await self.services.users.save(before, user)
            except Exception:
                log.exception(
                    "handling %s from %s:%s failed",
                    event.button or event.unsupported or "text",
                    event.channel,
                    event.user_id,
                )
                return [apology()], user.locale
        return replies, user.locale

    async def _route(self, ctx: Context) -> Reply | list[Reply]:
        event, user, router = ctx.event, ctx.user, self.router
        if event.unsupported:
            if event.photo and user.state in router.photo_states:
                return await router.states[user.state](ctx)
            return await self.fallbacks.unsupported(ctx)
        if event.button is not None:
            return await self._button(ctx, event.button)
        if len(event.text) > self.services.settings.max_message_chars:
            return await self.fallbacks.too_long(ctx)
        command = parse_command(event.text)
        if command is not None:
            name, args = command
            handler = router.commands.get(name)
            if handler is None:
                log.info("unknown command /%s", name)
                return await self.fallbacks.unknown(ctx)
            user.leave()
            ctx.args = args.split() if args else []
            return await handler(ctx)
        folded = fold(event.text)
        for matcher, handler in router.anywhere:
            if matcher(folded, ctx):
                user.leave()
                return await handler(ctx)
        if user.state is not None:
            handler = router.states.get(user.state)
            if handler is not None:
                return await handler(ctx)
            log.warning("unknown conversation state %r; leaving it", user.state)
            user.leave()
        for matcher, handler in router.intents:
            if matcher(folded, ctx):
                return await handler(ctx)
        return await self.fallbacks.unknown(ctx)

    async def _button(self, ctx: Context, button_id: str) -> Reply | list[Reply]:
        found = self.router.find_button(button_id)
        if found is None:
            log.warning("ignored unknown button %r from %s:%s", button_id, *ctx.event.key)
            return await self.fallbacks.unknown(ctx)
        handler, ctx.args = found
        user = ctx.user
        if user.state is not None and user.state.split(":")[0] != button_id.split(":")[0]:
            user.leave()  # a button from elsewhere ends the current step
        try:
            return await handler(ctx)
        except StalePayload as stale:
            log.warning("ignored stale button %r from %s:%s: %s", button_id, *ctx.event.key, stale)
            return await self.fallbacks.unknown(ctx)
