"""`chungsuc run zalo` and `chungsuc serve`: the Zalo poller and the webhook server."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Annotated

import typer

from bot.app.services import Services

log = logging.getLogger(__name__)


def run_zalo() -> None:
    """Poll the Zalo Bot Platform for updates (needs CHUNGSUC_ZALO_BOT_TOKEN)."""
    import httpx

    from bot.app.jobs import background_jobs
    from bot.channels.zalo_bot import ZaloBot, ZaloBotClient, ZaloBotError
    from bot.channels.zalo_transport import ZaloBotTransport
    from bot.delivery.limiter import Limiter
    from bot.interfaces.cli.common import _dispatcher, _settings, _with_services, err
    from bot.storage.events import prune

    settings = _settings()
    token = settings.zalo_bot_token.get_secret_value().strip() if settings.zalo_bot_token else ""
    if not token:
        err.print("Cannot start the Zalo bot: CHUNGSUC_ZALO_BOT_TOKEN is not set.")
        raise typer.Exit(2)

    async def work(services: Services) -> None:
        async with httpx.AsyncClient() as http:
            client = ZaloBotClient(http, token, settings.zalo_bot_api_url)
            try:
                me = await client.get_me()
            except ZaloBotError as error:
                err.print(f"Cannot start the Zalo bot ({settings.zalo_bot_api_url}): {error}")
                raise typer.Exit(3 if error.code == 0 or error.code >= 500 else 2) from None
            try:
                await client.delete_webhook()  # getUpdates does not work while one is set
            except ZaloBotError as error:
                log.warning("deleteWebhook: %s", error)
            await prune(services.db)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            name = me.get("account_name") or me.get("display_name") or "the bot"
            err.print(f"Chung Sức is polling Zalo as {name}. Ctrl+C stops.")
            transports = {"zalo": ZaloBotTransport(client, Limiter.from_settings(settings))}
            async with background_jobs(services, transports):
                await ZaloBot(client, _dispatcher(services)).poll(stop)

    _with_services(work)


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (a reverse proxy in front).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    set_webhooks: Annotated[
        str | None,
        typer.Option(
            "--set-webhooks",
            metavar="URL",
            help="Public https:// base URL: register <URL>/telegram/webhook and "
            "<URL>/zalo/bot/webhook with the platforms at start.",
        ),
    ] = None,
) -> None:
    """Serve the webhooks of every configured channel, and /healthz."""
    import uvicorn

    from bot.interfaces.cli.common import _settings, err
    from bot.interfaces.server import create_app, plan_channels

    settings = _settings()
    if set_webhooks is not None and not set_webhooks.startswith("https://"):
        err.print("--set-webhooks needs the public https:// URL (platforms post only to HTTPS).")
        raise typer.Exit(2)
    mounted, _problems = plan_channels(settings)  # problems are logged by create_app
    app = create_app(settings, set_webhooks=set_webhooks, jobs=True)
    served = ", ".join(mounted) or "no channel, only /healthz"
    err.print(f"Chung Sức serves {served} on http://{host}:{port}. Ctrl+C stops.")
    # log_config=None: uvicorn logs through the logging set up by _settings, one line each.
    uvicorn.run(app, host=host, port=port, log_config=None, server_header=False)


def register(app: typer.Typer, run_app: typer.Typer) -> None:
    """Add `run zalo` and `serve` to the `chungsuc` command."""
    run_app.command("zalo")(run_zalo)
    app.command("serve")(serve)
