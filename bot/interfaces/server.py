"""One ASGI app for every webhook (Telegram, Zalo Bot, Zalo OA), a health check and the public
site (bot/web/: province and commune pages, open data).

Only channels with complete credentials are mounted. Every webhook answers at once and the
update is handled in the background, so a slow reply never makes a platform retry. On
PostgreSQL (several workers behind one address) each update is first recorded in the inbox and
a user's are answered in their order by one worker at a time (bot/core/inbox.py). Bodies are
read with a size cap and a time limit (bot/interfaces/request_body.py); one that is
refused is one log line. The channels, their transports and the jobs beside them are the
runtime's (bot/app/runtime.py, mode `serve`), started by the lifespan: this module is the routes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, cast

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from telegram import Update
from telegram.request import BaseRequest

from bot.app.runtime import WEBHOOK_PATHS, Runtime, secret, webhook_channels
from bot.app.services import Services, build_services
from bot.app.settings import Settings
from bot.channels.telegram import to_event
from bot.channels.zalo_bot import secret_matches
from bot.channels.zalo_oa import Rejected
from bot.core.dispatch import Dispatcher
from bot.domain.clock import Clock
from bot.interfaces.request_body import BodyRefused, read_body
from bot.storage.events import first_time
from bot.web.site import Site

log = logging.getLogger(__name__)


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
    expected = secret(runtime.settings.telegram_webhook_secret)
    if not secret_matches(request.headers.get("X-Telegram-Bot-Api-Secret-Token"), expected):
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
    if runtime.inbox is not None:
        # Several workers: recorded first (the dedupe too), then answered in update order by
        # whichever worker holds the user's turn (bot/core/inbox.py).
        event = to_event(update)
        if event is not None and update.effective_chat is not None:
            seq, user_id = update.update_id, event.user_id
            if not await runtime.inbox.accept("telegram", str(seq), user_id, seq, body):
                log.info("duplicate Telegram update %s ignored", update.update_id)
        return Response()
    if not await first_time(runtime.services.db, "telegram", str(update.update_id)):
        log.info("duplicate Telegram update %s ignored", update.update_id)
        return Response()
    await runtime.telegram.update_queue.put(update)
    return Response()


async def zalo_bot_webhook(request: Request) -> Response:
    """Checks X-Bot-Api-Secret-Token, accepts wrapped or bare bodies, answers at once."""
    runtime = _runtime(request)
    expected = secret(runtime.settings.zalo_bot_webhook_secret)
    if not secret_matches(request.headers.get("X-Bot-Api-Secret-Token"), expected):
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


def create_app(
    settings: Settings,
    *,
    services: Services | None = None,
    set_webhooks: str | None = None,
    telegram_request: BaseRequest | None = None,
    jobs: bool = False,
    clock: Clock | None = None,
    dispatcher: Dispatcher | None = None,
) -> Starlette:
    """The app, on the runtime of `serve` (bot/app/runtime.py) started by its lifespan;
    `services` given (tests) are used as they are and not closed here. With `jobs`, the sender
    and the scheduler run beside it. A `clock` (tests) is the one of services built here;
    `dispatcher` replaces the one on every feature (tests)."""
    mounted, _problems = webhook_channels(settings)  # the runtime logs the problems
    handlers = {"telegram": telegram_webhook, "zalo": zalo_bot_webhook, "zalo_oa": zalo_oa_webhook}
    routes: list[BaseRoute] = [Route("/healthz", healthz, methods=["GET"])]
    routes += [Route(WEBHOOK_PATHS[c], handlers[c], methods=["POST"]) for c in mounted]
    routes += Site().routes()  # the public pages and open data, with or without a channel

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        async with AsyncExitStack() as stack:
            ready = services
            if ready is None:
                ready = await build_services(settings)
                stack.push_async_callback(ready.close)
                if clock is not None:
                    ready.clock = clock
            runtime = await stack.enter_async_context(
                Runtime.start(
                    settings,
                    ready,
                    "serve",
                    jobs=jobs,
                    set_webhooks=set_webhooks,
                    telegram_request=telegram_request,
                    dispatcher=dispatcher,
                )
            )
            yield {"runtime": runtime}

    return Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={BodyRefused: body_refused}
    )
