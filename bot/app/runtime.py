"""The one runtime: everything a process runs beside its database, built from the settings.

A mode says what the process is for; the runtime builds the rest:

    mode       channels                                              jobs
    telegram   Telegram, polling                                     sender, scheduler
    zalo       the Zalo Bot, polling                                 sender, scheduler
    serve      by webhook, each one configured: Telegram, Zalo Bot,  sender, scheduler
               Zalo OA — or none (then only /healthz and the public site)
    chat       the terminal                                          notices

Started in this order, stopped in the reverse one: processed events pruned; the HTTP client
(Zalo); Telegram's Application (initialised, started, polling); the Zalo Bot (checked, and its
poller) and the OA; the webhooks registered; the transports and the one sender (notices, then
broadcasts) with the scheduler. Stopping sets each loop's stop, waits for it a few seconds and
then cancels it, drains the work updates started, and closes the clients. The commands
(bot/interfaces/cli/) and the webhook server's lifespan (bot/interfaces/server.py) use it:

    async with Runtime.start(settings, services, "zalo") as runtime:
        await runtime.wait(stop)  # a signal, or a channel's loop that ended

A channel a polling mode needs that cannot start is `CannotStart`: one line for the operator
and an exit code, never a traceback. `serve` logs such a channel and serves the others.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TextIO

from bot.app.services import Services
from bot.app.settings import Settings
from bot.channels.zalo_bot import Background
from bot.core.dispatch import Dispatcher
from bot.core.inbox import Inbox
from bot.delivery.limiter import Limiter
from bot.delivery.scheduler import run_scheduler
from bot.delivery.sender import run_sender
from bot.delivery.transport import Transport
from bot.storage import inbox as inbox_store
from bot.storage.events import prune

if TYPE_CHECKING:
    import httpx
    from rich.console import Console
    from telegram.ext import Application
    from telegram.request import BaseRequest

    from bot.channels.terminal import Terminal
    from bot.channels.zalo_bot import ZaloBot
    from bot.channels.zalo_oa import ZaloOa

    TelegramApp = Application[Any, Any, Any, Any, Any, Any]

log = logging.getLogger(__name__)
Mode = Literal["telegram", "zalo", "serve", "chat"]
MODES: tuple[Mode, ...] = ("telegram", "zalo", "serve", "chat")
WEBHOOK_PATHS = {
    "telegram": "/telegram/webhook",
    "zalo": "/zalo/bot/webhook",
    "zalo_oa": "/zalo/oa/webhook",
}
TELEGRAM_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
STOP_GRACE = 10.0  # seconds a loop has to finish what it holds once told to stop
_BESIDE_A_BOT = ("sender", "scheduler")


class CannotStart(Exception):
    """A channel the mode needs cannot start: the line for the operator, and the exit code
    (2: the settings or the token are wrong, 3: the platform could not be reached)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def secret(value: Any) -> str:
    """A SecretStr setting's value, stripped; "" when it is not set."""
    return value.get_secret_value().strip() if value is not None else ""


@dataclass(frozen=True)
class Plan:
    """What a mode runs with these settings."""

    mode: Mode
    channels: tuple[str, ...]  # started in this order
    jobs: tuple[str, ...]
    webhook: bool = False  # channels take updates by webhook, not by polling
    problems: tuple[str, ...] = ()  # configured channels `serve` cannot mount, one line each


def webhook_channels(settings: Settings) -> tuple[list[str], list[str]]:
    """The channels to serve by webhook, and one line for each configured one that cannot be."""
    mounted: list[str] = []
    problems: list[str] = []
    if settings.telegram_token is not None:
        given = secret(settings.telegram_webhook_secret)
        problem = settings.telegram_token_problem()
        if problem is None and not given:
            problem = "CHUNGSUC_TELEGRAM_WEBHOOK_SECRET is not set"
        elif problem is None and not TELEGRAM_SECRET_RE.match(given):
            problem = "CHUNGSUC_TELEGRAM_WEBHOOK_SECRET must be 1–256 of A-Z a-z 0-9 _ -"
        (problems.append(f"telegram: {problem}") if problem else mounted.append("telegram"))
    if secret(settings.zalo_bot_token):
        if not 8 <= len(secret(settings.zalo_bot_webhook_secret)) <= 256:
            problems.append("zalo: CHUNGSUC_ZALO_BOT_WEBHOOK_SECRET must be 8–256 characters")
        else:
            mounted.append("zalo")
    if settings.zalo_oa_app_id:
        needed = ("zalo_oa_secret_key", "zalo_oa_app_secret", "zalo_oa_refresh_token")
        missing = [f"CHUNGSUC_{n.upper()}" for n in needed if not secret(getattr(settings, n))]
        if missing:
            problems.append(f"zalo_oa: {', '.join(missing)} not set")
        else:
            mounted.append("zalo_oa")
    return mounted, problems


def plan(settings: Settings, mode: Mode) -> Plan:
    """What `mode` runs; CannotStart when a polling mode's channel is not configured (checked
    before the database is opened, so the operator reads one line)."""
    if mode == "telegram":
        problem = settings.telegram_token_problem()
        if problem:
            raise CannotStart(f"Cannot start the Telegram bot: {problem}.")
        return Plan(mode, ("telegram",), _BESIDE_A_BOT)
    if mode == "zalo":
        if not secret(settings.zalo_bot_token):
            raise CannotStart("Cannot start the Zalo bot: CHUNGSUC_ZALO_BOT_TOKEN is not set.")
        return Plan(mode, ("zalo",), _BESIDE_A_BOT)
    if mode == "serve":
        mounted, problems = webhook_channels(settings)
        return Plan(mode, tuple(mounted), _BESIDE_A_BOT, webhook=True, problems=tuple(problems))
    if mode == "chat":
        return Plan(mode, ("terminal",), ("notices",))
    raise ValueError(f"no runtime mode {mode!r}; the modes: {', '.join(MODES)}")


@dataclass(frozen=True)
class _TerminalIO:
    """Who is at the terminal, and its input and output (`chat`)."""

    user: str
    stdin: TextIO | None
    console: Console | None


def _report(task: asyncio.Task[None]) -> None:
    """A loop that ends on its own with an error is worth a loud line at once."""
    if not task.cancelled() and task.exception() is not None:
        log.error("%s stopped with an error", task.get_name(), exc_info=task.exception())


@dataclass
class Runtime:
    """What one process runs; built and started by `Runtime.start`."""

    settings: Settings
    services: Services
    dispatcher: Dispatcher
    plan: Plan
    telegram: TelegramApp | None = None  # None in `serve` if it failed to start: 503
    zalo_bot: ZaloBot | None = None
    zalo_oa: ZaloOa | None = None
    terminal: Terminal | None = None
    limiter: Limiter | None = None  # Telegram's, shared by replies, notices and broadcasts
    http: httpx.AsyncClient | None = None  # the Zalo channels' one client
    transports: dict[str, Transport] = field(default_factory=dict)  # broadcasts go out on these
    background: Background = field(default_factory=Background)  # updates being answered
    # `serve` on PostgreSQL: webhook updates recorded first, a user's answered in order by
    # whichever worker holds their turn (bot/core/inbox.py); None: the dispatcher's locks.
    inbox: Inbox | None = None
    accounts: dict[str, str] = field(default_factory=dict)  # channel → the bot's name there
    loops: dict[str, asyncio.Task[None]] = field(default_factory=dict)  # pollers, terminal, jobs

    @property
    def mode(self) -> Mode:
        """What the process is for."""
        return self.plan.mode

    @property
    def channels(self) -> list[str]:
        """The channels of the plan (in `serve`, every mounted webhook)."""
        return list(self.plan.channels)

    @property
    def failed(self) -> list[str]:
        """The loops that ended with an error."""
        return [
            name
            for name, task in self.loops.items()
            if task.done() and not task.cancelled() and task.exception() is not None
        ]

    @classmethod
    @asynccontextmanager
    async def start(
        cls,
        settings: Settings,
        services: Services,
        mode: Mode,
        *,
        jobs: bool = True,
        set_webhooks: str | None = None,
        dispatcher: Dispatcher | None = None,
        telegram_request: BaseRequest | None = None,
        terminal_user: str = "local",
        stdin: TextIO | None = None,
        console: Console | None = None,
    ) -> AsyncIterator[Runtime]:
        """Build and start what `mode` runs; everything is stopped, in reverse, on leaving.

        `jobs=False` leaves out the sender and the scheduler (tests of one channel);
        `set_webhooks` is the public base URL to register webhooks at (`serve`);
        `telegram_request` replaces Telegram's HTTP (tests); `terminal_user`, `stdin` and
        `console` are the terminal's (`chat`). `services` stay open: they are the caller's.
        """
        runtime = cls(settings, services, dispatcher or _dispatcher(services), plan(settings, mode))
        terminal = _TerminalIO(terminal_user, stdin, console)
        for problem in runtime.plan.problems:
            log.error("not serving %s", problem)
        async with AsyncExitStack() as stack:
            if mode != "chat":
                await prune(services.db)  # events seen over a week ago: no retry comes that late
                await inbox_store.prune(services.db)
            answering = Background()  # the inbox's turns, drained before the channels stop
            if mode == "serve" and runtime.plan.channels and not services.db.is_sqlite:
                runtime.inbox = Inbox(
                    services.db, answering.start, on_turn=services.users.forget_one
                )
            http = runtime.http = await runtime._http(stack)
            stack.push_async_callback(runtime.background.drain)  # before the clients close
            for channel in runtime.plan.channels:
                await runtime._start_channel(channel, stack, http, telegram_request, terminal)
            stack.push_async_callback(answering.drain)
            if set_webhooks:
                await runtime.register_webhooks(set_webhooks)
            runtime.transports = runtime._transports()
            if runtime.inbox is not None:
                runtime._spawn(stack, "inbox", runtime.inbox.run)
            if jobs:
                for name in runtime.plan.jobs:
                    runtime._spawn(stack, name, runtime._job(name))
            yield runtime

    async def wait(self, stop: asyncio.Event | None = None) -> None:
        """Until `stop` is set, or a channel's loop ends: the terminal's input ran out, or a
        poller failed (its error is logged as it ends)."""
        ended = [self.loops[c] for c in self.plan.channels if c in self.loops]
        waiting: set[asyncio.Future[Any]] = set(ended)
        stopping = asyncio.ensure_future(stop.wait()) if stop is not None else None
        if stopping is not None:
            waiting.add(stopping)
        if not waiting:
            raise RuntimeError("nothing would end this wait: give it a stop event")
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if stopping is not None:
                stopping.cancel()
                await asyncio.gather(stopping, return_exceptions=True)

    # --- channels ------------------------------------------------------------------------------

    async def _http(self, stack: AsyncExitStack) -> httpx.AsyncClient | None:
        """The one HTTP client of the Zalo channels, closed last; None when none runs."""
        if not {"zalo", "zalo_oa"} & set(self.plan.channels):
            return None
        import httpx

        return await stack.enter_async_context(httpx.AsyncClient(timeout=30.0))

    async def _start_channel(
        self,
        channel: str,
        stack: AsyncExitStack,
        http: httpx.AsyncClient | None,
        telegram_request: BaseRequest | None,
        terminal: _TerminalIO,
    ) -> None:
        if channel == "telegram":
            self.telegram = await self._start_telegram(stack, telegram_request)
        elif channel == "zalo":
            assert http is not None
            await self._start_zalo_bot(stack, http)
        elif channel == "zalo_oa":
            assert http is not None
            self._start_zalo_oa(http)
        elif channel == "terminal":
            from bot.channels.terminal import Terminal

            self.terminal = Terminal(
                self.dispatcher, terminal.user, terminal.stdin, terminal.console
            )
            run = self.terminal.run
            # It ends with its input; reading a line cannot be told to stop, only cancelled.
            self._spawn(stack, "terminal", lambda stop: run(), grace=0)
        else:
            raise ValueError(f"no channel {channel!r}")

    async def _start_telegram(
        self, stack: AsyncExitStack, request: BaseRequest | None
    ) -> TelegramApp | None:
        """Telegram's Application, initialised (getMe), its command menus set, started and, when
        polling, polling. In `serve` a failure is one error line and the webhook answers 503."""
        from telegram.error import InvalidToken, NetworkError, TelegramError

        from bot.channels.telegram import build_application, register_commands
        from bot.channels.telegram_http import closing_on_failure

        settings, webhook = self.settings, self.plan.webhook
        self.limiter = Limiter.from_settings(settings, self.services.db)  # on PG: all workers'
        application = build_application(
            settings, self.dispatcher, request, webhook=webhook, limiter=self.limiter
        )
        try:
            async with closing_on_failure(application.bot):
                await application.initialize()
        except TelegramError as error:
            if isinstance(error, InvalidToken):  # its message holds the token
                refused = "CHUNGSUC_TELEGRAM_TOKEN refused"
                line = "Telegram rejected CHUNGSUC_TELEGRAM_TOKEN"
            else:
                refused = line = str(error)
            if webhook:
                log.error("Telegram not started, its webhook answers 503: %s", refused)
                return None
            if isinstance(error, InvalidToken):
                raise CannotStart(f"Cannot start the Telegram bot: {line}.") from None
            if isinstance(error, NetworkError):
                raise CannotStart(
                    f"Cannot reach the Telegram Bot API at {settings.telegram_api_url}: {error}", 3
                ) from None
            raise CannotStart(f"Cannot start the Telegram bot: {error}", 3) from None
        stack.push_async_callback(application.shutdown)
        await register_commands(application, self.dispatcher)
        await application.start()
        stack.push_async_callback(_stop_application, application)
        if not webhook:
            assert application.updater is not None
            try:
                await application.updater.start_polling(drop_pending_updates=False)
            except InvalidToken:
                raise CannotStart(
                    "Cannot start the Telegram bot: Telegram rejected CHUNGSUC_TELEGRAM_TOKEN."
                ) from None
            except TelegramError as error:
                raise CannotStart(
                    f"Cannot start polling Telegram at {settings.telegram_api_url}: {error}", 3
                ) from None
            stack.push_async_callback(_stop_polling, application)
        self.accounts["telegram"] = f"@{application.bot.username}"
        if self.inbox is not None:
            from telegram import Update

            from bot.channels.telegram import answer_update

            dispatcher, limiter = self.dispatcher, self.limiter

            async def answer(body: dict[str, Any]) -> None:
                update = Update.de_json(body, application.bot)
                await answer_update(application, dispatcher, update, limiter)

            self.inbox.register("telegram", answer)
        return application

    async def _start_zalo_bot(self, stack: AsyncExitStack, http: httpx.AsyncClient) -> None:
        """The Zalo Bot: by webhook as it is, or polling once its token is checked (getMe) and
        any webhook is deleted (getUpdates does not work while one is set)."""
        from bot.channels.zalo_bot import ZaloBot, ZaloBotClient, ZaloBotError

        settings = self.settings
        client = ZaloBotClient(http, secret(settings.zalo_bot_token), settings.zalo_bot_api_url)
        bot = ZaloBot(client, self.dispatcher, background=self.background)
        self.zalo_bot = bot
        if self.inbox is not None:
            bot.inbox = self.inbox
            self.inbox.register("zalo", bot.answer_body)
        if self.plan.webhook:
            return
        try:
            me = await client.get_me()
        except ZaloBotError as error:
            code = 3 if error.code == 0 or error.code >= 500 else 2
            raise CannotStart(
                f"Cannot start the Zalo bot ({settings.zalo_bot_api_url}): {error}", code
            ) from None
        try:
            await client.delete_webhook()
        except ZaloBotError as error:
            log.warning("deleteWebhook: %s", error)
        self.accounts["zalo"] = str(me.get("account_name") or me.get("display_name") or "the bot")
        self._spawn(stack, "zalo", bot.poll)

    def _start_zalo_oa(self, http: httpx.AsyncClient) -> None:
        """The Official Account: signed webhook events in, consultation messages out."""
        from bot.channels.zalo_oa import OaClient, ZaloOa

        settings = self.settings
        app_id = settings.zalo_oa_app_id or ""
        client = OaClient(
            http,
            self.services.db,
            app_id=app_id,
            app_secret=secret(settings.zalo_oa_app_secret),
            refresh_token=secret(settings.zalo_oa_refresh_token),
            api_url=settings.zalo_oa_api_url,
            oauth_url=settings.zalo_oa_oauth_url,
        )
        self.zalo_oa = ZaloOa(
            client,
            self.dispatcher,
            app_id=app_id,
            secret_key=secret(settings.zalo_oa_secret_key),
            max_skew=settings.zalo_oa_max_clock_skew,
            background=self.background,
            inbox=self.inbox,
        )
        if self.inbox is not None:
            self.inbox.register("zalo_oa", self.zalo_oa.answer_body)

    async def register_webhooks(self, base_url: str) -> None:
        """Tell each platform where to post; one clear line per channel, failures included."""
        from telegram.error import TelegramError

        from bot.channels.zalo_bot import ZaloBotError

        settings, base = self.settings, base_url.rstrip("/")
        if self.telegram is not None:
            url = base + WEBHOOK_PATHS["telegram"]
            try:
                await self.telegram.bot.set_webhook(
                    url,
                    secret_token=secret(settings.telegram_webhook_secret),
                    max_connections=settings.telegram_webhook_max_connections,
                )
                log.info("Telegram webhook set: %s", url)
            except TelegramError as error:
                log.error("Telegram webhook NOT set to %s: %s", url, error)
        if self.zalo_bot is not None:
            url = base + WEBHOOK_PATHS["zalo"]
            try:
                await self.zalo_bot.client.set_webhook(
                    url, secret(settings.zalo_bot_webhook_secret)
                )
                log.info("Zalo Bot webhook set: %s", url)
            except ZaloBotError as error:
                log.error("Zalo Bot webhook NOT set to %s: %s", url, error)
        if self.zalo_oa is not None:
            # The OA webhook URL is entered in the Zalo developer console; there is no API call.
            url = base + WEBHOOK_PATHS["zalo_oa"]
            log.info("Zalo OA: enter %s as the webhook URL in the app's settings", url)

    def _transports(self) -> dict[str, Transport]:
        """Broadcast transports for the channels that run; Telegram's shares the replies'
        limiter, so villagers' answers keep their turn ahead of a broadcast."""
        transports: dict[str, Transport] = {}
        if self.telegram is not None:
            from bot.channels.telegram_transport import TelegramTransport

            limiter = self.limiter or Limiter.from_settings(self.settings, self.services.db)
            transports["telegram"] = TelegramTransport(self.telegram.bot, limiter)
        if self.zalo_bot is not None or self.zalo_oa is not None:
            from bot.channels.zalo_transport import ZaloBotTransport, ZaloOaTransport

            db = self.services.db

            if self.zalo_bot is not None:
                transports["zalo"] = ZaloBotTransport(
                    self.zalo_bot.client, Limiter.from_settings(self.settings, db, "zalo")
                )
            if self.zalo_oa is not None:
                transports["zalo_oa"] = ZaloOaTransport(
                    self.zalo_oa.client, Limiter.from_settings(self.settings, db, "zalo_oa")
                )
        return transports

    # --- loops ---------------------------------------------------------------------------------

    def _job(self, name: str) -> Callable[[asyncio.Event], Awaitable[None]]:
        """A job beside the channels: the one sender — notices on the channels registered with
        the notifier, broadcasts on the transports — the scheduler, or (the terminal's) the
        notices alone."""
        if name == "sender":
            return lambda stop: run_sender(self.services, self.transports, stop)
        if name == "scheduler":
            return lambda stop: run_scheduler(self.services, stop)
        if name == "notices":
            return self.services.notifier.run
        raise ValueError(f"no job {name!r}")

    def _spawn(
        self,
        stack: AsyncExitStack,
        name: str,
        loop: Callable[[asyncio.Event], Awaitable[None]],
        grace: float = STOP_GRACE,
    ) -> None:
        """Run `loop(stop)` as a task until the runtime stops: then `stop` is set, the loop has
        `grace` seconds to finish, and is cancelled after them."""
        stop = asyncio.Event()

        async def run() -> None:
            await loop(stop)

        task = asyncio.create_task(run(), name=name)
        task.add_done_callback(_report)
        self.loops[name] = task
        stack.push_async_callback(_halt, task, stop, grace)


async def _halt(task: asyncio.Task[None], stop: asyncio.Event, grace: float) -> None:
    """Tell a loop to stop, give it `grace` seconds, then cancel it; its error was logged."""
    stop.set()
    if not task.done():
        done, _ = await asyncio.wait({task}, timeout=grace)
        if not done:
            log.warning("%s did not stop within %.0f s; cancelled", task.get_name(), grace)
            task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _stop_polling(application: TelegramApp) -> None:
    if application.updater is not None and application.updater.running:
        await application.updater.stop()


async def _stop_application(application: TelegramApp) -> None:
    if application.running:
        await application.stop()


def _dispatcher(services: Services) -> Dispatcher:
    """The dispatcher on every feature's router."""
    from handlers import build_router

    router, fallbacks = build_router()
    return Dispatcher(services, router, fallbacks)
