"""`chungsuc run telegram`, `run zalo` and `serve`: the bot on its messengers. Each names its
mode; the runtime (bot/app/runtime.py) builds and stops the channels and the jobs."""

from __future__ import annotations

import asyncio
import signal
from typing import TYPE_CHECKING, Annotated

import typer

from bot.app.services import Services

if TYPE_CHECKING:
    from bot.app.runtime import Mode

POLLING = {"telegram": "Telegram", "zalo": "Zalo"}


def _poll(mode: Mode) -> None:
    """Run one messenger by polling until SIGINT or SIGTERM; a channel that cannot start is
    one line and exit code 2 (settings, token) or 3 (the platform unreachable)."""
    from bot.app.runtime import CannotStart, Runtime, plan
    from bot.interfaces.cli.common import _settings, _with_services, err

    settings = _settings()
    try:
        plan(settings, mode)  # before the database is opened: one line, nothing else
    except CannotStart as error:
        err.print(str(error))
        raise typer.Exit(error.code) from None

    async def work(services: Services) -> None:
        stop = asyncio.Event()
        try:
            async with Runtime.start(settings, services, mode) as runtime:
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(sig, stop.set)
                account = runtime.accounts[mode]
                err.print(f"Chung Sức is polling {POLLING[mode]} as {account}. Ctrl+C stops.")
                await runtime.wait(stop)
        except CannotStart as error:
            err.print(str(error))
            raise typer.Exit(error.code) from None
        if runtime.failed:  # logged as it ended
            raise typer.Exit(1)

    _with_services(work)


def run_telegram() -> None:
    """Poll Telegram for updates (needs CHUNGSUC_TELEGRAM_TOKEN)."""
    _poll("telegram")


def run_zalo() -> None:
    """Poll the Zalo Bot Platform for updates (needs CHUNGSUC_ZALO_BOT_TOKEN)."""
    _poll("zalo")


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
    """Serve the webhooks of every configured channel, /healthz and the public site."""
    import uvicorn

    from bot.app.runtime import plan
    from bot.interfaces.cli.common import _settings, err
    from bot.interfaces.server import create_app

    settings = _settings()
    if set_webhooks is not None and not set_webhooks.startswith("https://"):
        err.print("--set-webhooks needs the public https:// URL (platforms post only to HTTPS).")
        raise typer.Exit(2)
    app = create_app(settings, set_webhooks=set_webhooks, jobs=True)
    served = ", ".join(plan(settings, "serve").channels) or "no channel"
    err.print(
        f"Chung Sức serves {served}, /healthz and the public site on http://{host}:{port}."
        " Ctrl+C stops."
    )
    # log_config=None: uvicorn logs through the logging set up by _settings, one line each.
    uvicorn.run(app, host=host, port=port, log_config=None, server_header=False)


def register(app: typer.Typer, run_app: typer.Typer) -> None:
    """Add `run telegram`, `run zalo` and `serve` to the `chungsuc` command."""
    run_app.command("telegram")(run_telegram)
    run_app.command("zalo")(run_zalo)
    app.command("serve")(serve)
