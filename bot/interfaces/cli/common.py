"""What every `chungsuc` command shares: the consoles, settings with logging, services."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console

from bot.app.logs import setup_logging
from bot.app.services import Services, build_services
from bot.app.settings import Settings, load_settings

# No markup: file names, cells and principals are printed as given. Messages are not wrapped
# at 80 columns when stderr is not a terminal (logs, systemd, pipes): one message, one line.
err = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)
out = Console(highlight=False, markup=False)
T = TypeVar("T")
CHAT_LOG = "var/chungsuc.log"  # `chungsuc chat` logs here, beside the default database


def _settings(quiet: bool = False, log_file: str | None = None) -> Settings:
    """The settings, with logging set up (secrets redacted); `quiet` logs warnings only, unless
    CHUNGSUC_LOG_LEVEL says otherwise; `log_file` is where logs go unless CHUNGSUC_LOG_FILE
    names another (default: stderr)."""
    try:
        settings = load_settings()
    except ValidationError as error:
        problems = "; ".join(
            f"CHUNGSUC_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in error.errors()
        )
        err.print(f"Settings are not valid: {problems}")
        raise typer.Exit(2) from None
    level = settings.log_level
    if quiet and "CHUNGSUC_LOG_LEVEL" not in os.environ:
        level = "WARNING"
    setup_logging(settings, level, settings.log_file or log_file)
    return settings


def _with_services(
    work: Callable[[Services], Awaitable[T]], quiet: bool = False, log_file: str | None = None
) -> T:
    async def main() -> T:
        services = await build_services(_settings(quiet, log_file))
        try:
            return await work(services)
        finally:
            await services.close()

    return asyncio.run(main())
