"""One ASGI app for every webhook (Telegram, Zalo Bot, Zalo OA) and a health check.

Only channels with complete credentials are mounted. Every webhook answers at once and the
update is handled in the background, so a slow reply never makes a platform retry. Bodies are
read with a size cap and a time limit (bot/interfaces/request_body.py); one that is
refused is one log line.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from telegram import Update
from telegram.error import InvalidToken, TelegramError
from telegram.ext import Application
from telegram.request import BaseRequest

from bot.app.jobs import background_jobs
from bot.app.services import Services, build_services
from bot.app.settings import Settings
from bot.channels.telegram_transport import TelegramTransport
from bot.channels.zalo_bot import Background, ZaloBot, ZaloBotClient, ZaloBotError, secret_matches
from bot.channels.zalo_oa import OaClient, Rejected, ZaloOa
from bot.channels.zalo_transport import ZaloBotTransport, ZaloOaTransport
from bot.core.dispatch import Dispatcher
from bot.delivery.limiter import Limiter
from bot.delivery.transport import Transport
from bot.interfaces.request_body import BodyRefused, read_body
from bot.storage.events import first_time, prune

log = logging.getLogger(__name__)
TelegramApp = Application[Any, Any, Any, Any, Any, Any]
TELEGRAM_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
PATHS = {
    "telegram": "/telegram/webhook",
    "zalo": "/zalo/bot/webhook",
    "zalo_oa": "/zalo/oa/webhook",
}


def _secret(value: Any) -> str:
    return value.get_secret_value().strip() if value is not None else ""


def plan_channels(settings: Settings) -> tuple[list[str], list[str]]:
    """The channels to mount, and one line for each configured channel that cannot be."""
    mounted: list[str] = []
    problems: list[str] = []
    if settings.telegram_token is not None:
        secret = _secret(settings.telegram_webhook_secret)
        problem = settings.telegram_token_problem()
        if problem is None and not secret:
            problem = "CHUNGSUC_TELEGRAM_WEBHOOK_SECRET is not set"
        elif problem is None and not TELEGRAM_SECRET_RE.match(secret):
            problem = "CHUNGSUC_TELEGRAM_WEBHOOK_SECRET must be 1–256 of A-Z a-z 0-9 _ -"
        (problems.append(f"telegram: {problem}") if problem else mounted.append("telegram"))
    if _secret(settings.zalo_bot_token):
        secret = _secret(settings.zalo_bot_webhook_secret)
        if not 8 <= len(secret) <= 256:
            problems.append("zalo: CHUNGSUC_ZALO_BOT_WEBHOOK_SECRET must be 8–256 characters")
        else:
            mounted.append("zalo")
    if settings.zalo_oa_app_id:
        needed = ("zalo_oa_secret_key", "zalo_oa_app_secret", "zalo_oa_refresh_token")
        missing = [f"CHUNGSUC_{n.upper()}" for n in needed if not _secret(getattr(settings, n))]
        if missing:
            problems.append(f"zalo_oa: {', '.join(missing)} not set")
        else:
            mounted.append("zalo_oa")
    return mounted, problems


@dataclass
class Runtime:
    """What the routes use, built once by the lifespan."""

    settings: Settings
    services: Services
    channels: list[str]
    telegram: TelegramApp | None = None
    zalo_bot: ZaloBot | None = None
    zalo_oa: ZaloOa | None = None
    background: Background = field(default_factory=Background)
    limiter: Limiter | None = None  # Telegram's, shared by replies and broadcasts


def _runtime(request: Request) -> Runtime:
    return cast(Runtime, request.state.runtime)


async def healthz(request: Request) -> Response:
    """200 when the database answers, 503 otherwise; lists the mounted channels."""
    runtime = _runtime(request)
    try:
        async with runtime.services.db.read() as conn:
            await conn.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError) as error:
        log.warning("health check: database unreachable: %s", error)
        return JSONResponse({"database": "unreachable", "channels": runtime.channels}, 503)
    return JSONResponse({"database": "ok", "channels": runtime.channels})


async def _body(request: Request) -> bytes:
    """The request's body within the configured size and time; BodyRefused otherwise."""
    settings = _runtime(request).settings
    return await read_body(request, settings.webhook_max_body, settings.webhook_body_timeout)


async def _json(request: Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await _body(request))
    except ValueError:  # not JSON, or not UTF-8
        return None
    return body if isinstance(body, dict) else None


async def body_refused(request: Request, exc: Exception) -> Response:
    """A body too large, too slow, or cut off by the client: one line, no traceback."""
    assert isinstance(exc, BodyRefused)
    level = logging.INFO if exc.status is None else logging.WARNING
    log.log(level, "webhook %s from %s: %s", request.url.path, _peer(request), exc)
    return _refuse(exc.status or 400)  # when the client has gone, nobody reads it


def _refuse(status: int) -> Response:
    """An answer given before the body was read whole: the connection is closed after it, or
    uvicorn would let the client go on sending (and dripping) the rest."""
    return Response(status_code=status, headers={"Connection": "close"})


async def telegram_webhook(request: Request) -> Response:
    """Checks the secret header, queues the update for the Application, answers at once."""
    runtime = _runtime(request)
    secret = _secret(runtime.settings.telegram_webhook_secret)
    if not secret_matches(request.headers.get("X-Telegram-Bot-Api-Secret-Token"), secret):
        log.warning("Telegram webhook: wrong secret token from %s", _peer(request))
        return _refuse(403)
    if runtime.telegram is None:
        return _refuse(503)  # Telegram retries; initialise failed at start-up
    body = await _json(request)
    if body is None:
        return Response(status_code=400)
    try:
        update = Update.de_json(body, runtime.telegram.bot)
    except Exception as error:  # PTB's parser on a body it does not expect raises anything
        # 200: Telegram redelivers anything else, and this update would fail the same way.
        log.warning(
            "Telegram webhook: update %.40s dropped, PTB cannot read it: %s: %.200s",
            body.get("update_id", "?"),
            type(error).__name__,
            error,
        )
        return Response()
    if not await first_time(runtime.services.db, "telegram", str(update.update_id)):
        log.info("duplicate Telegram update %s ignored", update.update_id)
        return Response()
    await runtime.telegram.update_queue.put(update)
    return Response()


async def zalo_bot_webhook(request: Request) -> Response:
    """Checks X-Bot-Api-Secret-Token, accepts wrapped or bare bodies, answers at once."""
    runtime = _runtime(request)
    secret = _secret(runtime.settings.zalo_bot_webhook_secret)
    if not secret_matches(request.headers.get("X-Bot-Api-Secret-Token"), secret):
        log.warning("Zalo Bot webhook: wrong secret token from %s", _peer(request))
        return _refuse(403)
    body = await _json(request)
    if body is None:
        return Response(status_code=400)
    assert runtime.zalo_bot is not None
    await runtime.zalo_bot.accept(body)
    return JSONResponse({"ok": True})


async def zalo_oa_webhook(request: Request) -> Response:
    """Verifies X-ZEvent-Signature and the timestamp, then handles the event once."""
    runtime = _runtime(request)
    assert runtime.zalo_oa is not None
    try:
        body = runtime.zalo_oa.verify(
            await _body(request), request.headers.get("X-ZEvent-Signature")
        )
    except Rejected as rejected:
        log.warning("Zalo OA webhook rejected from %s: %s", _peer(request), rejected)
        return _refuse(403)
    await runtime.zalo_oa.accept(body)
    return JSONResponse({"error": 0})


def _peer(request: Request) -> str:
    return request.client.host if request.client else "?"


async def register_webhooks(runtime: Runtime, base_url: str) -> None:
    """Tell each platform where to post; one clear line per channel, failures included."""
    settings, base = runtime.settings, base_url.rstrip("/")
    if runtime.telegram is not None:
        url = base + PATHS["telegram"]
        try:
            await runtime.telegram.bot.set_webhook(
                url, secret_token=_secret(settings.telegram_webhook_secret)
            )
            log.info("Telegram webhook set: %s", url)
        except TelegramError as error:
            log.error("Telegram webhook NOT set to %s: %s", url, error)
    if runtime.zalo_bot is not None:
        url = base + PATHS["zalo"]
        try:
            await runtime.zalo_bot.client.set_webhook(
                url, _secret(settings.zalo_bot_webhook_secret)
            )
            log.info("Zalo Bot webhook set: %s", url)
        except ZaloBotError as error:
            log.error("Zalo Bot webhook NOT set to %s: %s", url, error)
    if runtime.zalo_oa is not None:
        # The OA webhook URL is entered in the Zalo developer console; there is no API call.
        log.info(
            "Zalo OA: enter %s as the webhook URL in the app's settings", base + PATHS["zalo_oa"]
        )


def _transports(runtime: Runtime) -> dict[str, Transport]:
    """Broadcast transports for the channels this server runs, sharing each one's limiter."""
    transports: dict[str, Transport] = {}
    if runtime.telegram is not None:
        limiter = runtime.limiter or Limiter.from_settings(runtime.settings)
        transports["telegram"] = TelegramTransport(runtime.telegram.bot, limiter)
    if runtime.zalo_bot is not None:
        transports["zalo"] = ZaloBotTransport(
            runtime.zalo_bot.client, Limiter.from_settings(runtime.settings)
        )
    if runtime.zalo_oa is not None:
        transports["zalo_oa"] = ZaloOaTransport(
            runtime.zalo_oa.client, Limiter.from_settings(runtime.settings)
        )
    return transports


async def _start_telegram(
    settings: Settings,
    dispatcher: Dispatcher,
    request: BaseRequest | None,
    stack: AsyncExitStack,
    limiter: Limiter,
) -> TelegramApp | None:
    from bot.channels.telegram import build_application, register_commands
    from bot.channels.telegram_http import closing_on_failure

    application = build_application(settings, dispatcher, request, webhook=True, limiter=limiter)
    try:
        async with closing_on_failure(application.bot):
            await application.initialize()
    except InvalidToken:  # its message holds the token
        log.error("Telegram not started, its webhook answers 503: CHUNGSUC_TELEGRAM_TOKEN refused")
        return None
    except TelegramError as error:
        log.error("Telegram not started, its webhook answers 503: %s", error)
        return None
    stack.push_async_callback(application.shutdown)
    await register_commands(application, dispatcher)
    await application.start()
    stack.push_async_callback(application.stop)
    return application


def create_app(
    settings: Settings,
    *,
    services: Services | None = None,
    set_webhooks: str | None = None,
    telegram_request: BaseRequest | None = None,
    jobs: bool = False,
) -> Starlette:
    """The app; `services` given (tests) are used as they are and not closed here. With
    `jobs`, the broadcast sender and the scheduler run beside it on the mounted channels."""
    mounted, problems = plan_channels(settings)
    for problem in problems:
        log.error("not serving %s", problem)
    handlers = {"telegram": telegram_webhook, "zalo": zalo_bot_webhook, "zalo_oa": zalo_oa_webhook}
    routes = [Route("/healthz", healthz, methods=["GET"])]
    routes += [Route(PATHS[c], handlers[c], methods=["POST"]) for c in mounted]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        from handlers import build_router

        async with AsyncExitStack() as stack:
            ready = services
            if ready is None:
                ready = await build_services(settings)
                stack.push_async_callback(ready.close)
            dispatcher = Dispatcher(ready, *build_router())
            await prune(ready.db)
            http = await stack.enter_async_context(httpx.AsyncClient(timeout=30.0))
            runtime = Runtime(settings, ready, mounted)
            stack.push_async_callback(runtime.background.drain)  # before http closes
            if "telegram" in mounted:
                runtime.limiter = Limiter.from_settings(settings)
                runtime.telegram = await _start_telegram(
                    settings, dispatcher, telegram_request, stack, runtime.limiter
                )
            if "zalo" in mounted:
                client = ZaloBotClient(
                    http, _secret(settings.zalo_bot_token), settings.zalo_bot_api_url
                )
                runtime.zalo_bot = ZaloBot(client, dispatcher, background=runtime.background)
            if "zalo_oa" in mounted:
                oa = OaClient(
                    http,
                    ready.db,
                    app_id=settings.zalo_oa_app_id or "",
                    app_secret=_secret(settings.zalo_oa_app_secret),
                    refresh_token=_secret(settings.zalo_oa_refresh_token),
                    api_url=settings.zalo_oa_api_url,
                    oauth_url=settings.zalo_oa_oauth_url,
                )
                runtime.zalo_oa = ZaloOa(
                    oa,
                    dispatcher,
                    app_id=settings.zalo_oa_app_id or "",
                    secret_key=_secret(settings.zalo_oa_secret_key),
                    max_skew=settings.zalo_oa_max_clock_skew,
                    background=runtime.background,
                )
            if set_webhooks:
                await register_webhooks(runtime, set_webhooks)
            if jobs:
                await stack.enter_async_context(background_jobs(ready, _transports(runtime)))
            yield {"runtime": runtime}

    return Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={BodyRefused: body_refused}
    )
