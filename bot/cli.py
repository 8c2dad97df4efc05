"""The `chungsuc` command: chat, run, db, seed, import, admin."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Column, Table

from bot.cli_broadcast import register as register_broadcast_commands
from bot.cli_channels import register as register_channel_commands
from bot.dispatch import Dispatcher
from bot.services import Services, build_services, prepare_database
from bot.settings import Settings, load_settings

app = typer.Typer(
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, help=__doc__
)
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
import_app = typer.Typer(no_args_is_help=True, help="Load data published by officials.")
admin_app = typer.Typer(no_args_is_help=True, help="Who may do what where.")
run_app = typer.Typer(no_args_is_help=True, help="Run the bot on a messenger.")
app.add_typer(db_app, name="db")
app.add_typer(import_app, name="import")
app.add_typer(admin_app, name="admin")
app.add_typer(run_app, name="run")

# No markup: file names, cells and principals are printed as given. Messages are not wrapped
# at 80 columns when stderr is not a terminal (logs, systemd, pipes): one message, one line.
err = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)
out = Console(highlight=False, markup=False)
T = TypeVar("T")


def _settings(quiet: bool = False) -> Settings:
    """The settings, with logging set up; `quiet` keeps a terminal chat free of info lines."""
    try:
        settings = load_settings()
    except ValidationError as error:
        problems = "; ".join(
            f"CHUNGSUC_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in error.errors()
        )
        err.print(f"Settings are not valid: {problems}")
        raise typer.Exit(2) from None
    level = settings.log_level.upper()
    if quiet and "CHUNGSUC_LOG_LEVEL" not in os.environ:
        level = "WARNING"
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # httpx logs request URLs, and a Telegram URL carries the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return settings


def _with_services(work: Callable[[Services], Awaitable[T]], quiet: bool = False) -> T:
    async def main() -> T:
        services = await build_services(_settings(quiet))
        try:
            return await work(services)
        finally:
            await services.close()

    return asyncio.run(main())


def _dispatcher(services: Services) -> Dispatcher:
    from handlers import build_router

    router, fallbacks = build_router()
    return Dispatcher(services, router, fallbacks)


@app.command()
def chat(
    user: Annotated[str, typer.Option(help="Who you are in the conversation.")] = "local",
) -> None:
    """Talk to the bot in this terminal (buttons are numbered; piped stdin works too)."""
    from bot.channels.terminal import run_terminal

    async def work(services: Services) -> None:
        await run_terminal(_dispatcher(services), user_id=user)

    with contextlib.suppress(KeyboardInterrupt):
        _with_services(work, quiet=True)


@run_app.command("telegram")
def run_telegram() -> None:
    """Poll Telegram for updates (needs CHUNGSUC_TELEGRAM_TOKEN)."""
    settings = _settings()
    problem = settings.telegram_token_problem()
    if problem:
        err.print(f"Cannot start the Telegram bot: {problem}.")
        raise typer.Exit(2)
    from telegram.error import InvalidToken, NetworkError, TelegramError

    from bot.channels.telegram import build_application, register_commands

    async def work(services: Services) -> None:
        from bot.broadcast.limiter import Limiter
        from bot.broadcast.telegram_transport import TelegramTransport
        from bot.channels.telegram_http import closing_on_failure
        from bot.jobs import background_jobs

        dispatcher = _dispatcher(services)
        limiter = Limiter.from_settings(settings)  # replies and broadcasts share Telegram's rate
        application = build_application(settings, dispatcher, limiter=limiter)
        try:
            async with closing_on_failure(application.bot):
                await application.initialize()
        except InvalidToken:
            err.print("Cannot start the Telegram bot: Telegram rejected CHUNGSUC_TELEGRAM_TOKEN.")
            raise typer.Exit(2) from None
        except NetworkError as error:
            err.print(f"Cannot reach the Telegram Bot API at {settings.telegram_api_url}: {error}")
            raise typer.Exit(3) from None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await register_commands(application, dispatcher)
            await application.start()
            assert application.updater is not None
            try:
                await application.updater.start_polling(drop_pending_updates=False)
            except InvalidToken:
                err.print(
                    "Cannot start the Telegram bot: Telegram rejected CHUNGSUC_TELEGRAM_TOKEN."
                )
                raise typer.Exit(2) from None
            except TelegramError as error:
                err.print(f"Cannot start polling Telegram at {settings.telegram_api_url}: {error}")
                raise typer.Exit(3) from None
            err.print(
                f"Chung Sức is polling Telegram as @{application.bot.username}. Ctrl+C stops."
            )
            transports = {"telegram": TelegramTransport(application.bot, limiter)}
            async with background_jobs(services, transports):
                await stop.wait()
        finally:
            if application.updater is not None and application.updater.running:
                await application.updater.stop()
            if application.running:
                await application.stop()
            await application.shutdown()

    _with_services(work)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database to the newest schema and load changed reference files."""

    async def main() -> None:
        db = await prepare_database(_settings())
        await db.close()

    asyncio.run(main())
    out.print("Database is up to date.")


@app.command()
def seed(
    sample: Annotated[
        bool, typer.Option("--sample", help="Load made-up statuses for a demo.")
    ] = False,
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Only if no status is loaded.")
    ] = False,
) -> None:
    """Load reference data, and with --sample the demo statuses (labelled as sample)."""
    from bot.sample import load_sample, load_sample_campaigns

    async def work(services: Services) -> None:
        if not sample:
            out.print("Reference data is loaded.")
            return
        if if_empty and await services.statuses.has_any():
            out.print("Statuses already loaded; sample data not added.")
            return
        rows = await load_sample(
            services.db, services.reference, services.statuses, services.today()
        )
        gifts = await load_sample_campaigns(services)
        out.print(
            f"Loaded {rows} sample status rows, sample campaigns and {gifts} sample "
            "contributions (all marked “dữ liệu mẫu”)."
        )

    _with_services(work)


@import_app.command("status")
def import_status(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    by: Annotated[str, typer.Option(help="Who is importing (kept in the history).")] = "cli",
) -> None:
    """Import commune statuses from a .csv or .xlsx file (one row per commune and criterion)."""
    from bot.importer import ImportRejected, StatusImporter, file_digest, read_table

    async def work(services: Services) -> int:
        table = read_table(file)
        batch = await StatusImporter(services.db, services.reference).check(
            table,
            file_name=file.name,
            sha256=file_digest(file),
            imported_by=by,
            today=services.today(),
        )
        await services.statuses.record(batch)
        return len(batch.statuses)

    try:
        rows = _with_services(work)
    except ImportRejected as rejected:
        err.print(f"{file.name} was not imported; nothing was changed:")
        for problem in rejected.problems:
            err.print(f"  {problem}")
        raise typer.Exit(1) from None
    out.print(f"Imported {rows} status rows from {file.name}.")


export_app = typer.Typer(no_args_is_help=True, help="Records for the commune's files.")
app.add_typer(export_app, name="export")


@export_app.command("contributions")
def export_contributions(
    format: Annotated[str, typer.Option("--format", help="csv or xlsx")] = "csv",
    area: Annotated[str | None, typer.Option(help="Commune or province code")] = None,
    since: Annotated[str | None, typer.Option(help="Only from this date (YYYY-MM-DD)")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write")] = None,
) -> None:
    """Write the contributions (every status) as CSV or XLSX, to a file or stdout (CSV)."""
    from datetime import date

    from bot.exports import write_contributions

    if format not in ("csv", "xlsx"):
        raise typer.BadParameter("csv or xlsx", param_hint="--format")
    if format == "xlsx" and output is None:
        raise typer.BadParameter("an .xlsx export needs --output FILE", param_hint="--output")
    try:
        since_date = date.fromisoformat(since) if since else None
    except ValueError:
        raise typer.BadParameter("write it as YYYY-MM-DD", param_hint="--since") from None

    async def work(services: Services) -> int:
        reference = services.reference
        if area is None or area == reference.province_code:
            codes = None if area is None else list(reference.communes)
        elif area in reference.communes:
            codes = [area]
        else:
            raise typer.BadParameter(f"no commune or province {area!r} here", param_hint="--area")
        rows = await services.contributions.export(codes, since_date)
        return write_contributions(rows, reference, format, output or sys.stdout)

    count = _with_services(work, quiet=True)
    if output is not None:
        err.print(f"Wrote {count} contributions to {output}.")


def _principal(value: str) -> str:
    channel, _, user_id = value.partition(":")
    if not channel or not user_id:
        raise typer.BadParameter("write it as channel:id, e.g. telegram:123456789")
    return f"{channel.lower()}:{user_id}"


@admin_app.command("grant")
def admin_grant(
    principal: Annotated[str, typer.Argument(help="channel:id, e.g. telegram:123456789")],
    role: Annotated[str, typer.Argument(help="commune_official | province_official | admin")],
    area: Annotated[str, typer.Argument(help="Commune or province code")],
    by: Annotated[str, typer.Option(help="Who grants it.")] = "cli",
) -> None:
    """Give someone a role for an area."""
    from bot.storage.officials import ROLES

    principal = _principal(principal)
    if role not in ROLES:
        raise typer.BadParameter(f"role must be one of {', '.join(ROLES)}", param_hint="ROLE")

    async def work(services: Services) -> bool:
        known = set(services.reference.communes) | {services.reference.province_code}
        if area not in known:
            raise typer.BadParameter(f"no commune or province {area!r} here", param_hint="AREA")
        return await services.officials.grant(principal, role, area, by)

    added = _with_services(work)
    out.print(f"Granted {role} for {area} to {principal}." if added else "Already granted.")


@admin_app.command("revoke")
def admin_revoke(principal: str, role: str, area: str) -> None:
    """Take a role away."""
    principal = _principal(principal)

    async def work(services: Services) -> bool:
        return await services.officials.revoke(principal, role, area)

    if not _with_services(work):
        err.print(f"{principal} has no {role} grant for {area}.")
        raise typer.Exit(1)
    out.print(f"Revoked {role} for {area} from {principal}.")


@admin_app.command("list")
def admin_list() -> None:
    """Everyone with a role."""

    async def work(services: Services) -> list[Any]:
        return await services.officials.grants()

    grants = _with_services(work)
    # Who holds what must never be cut to "telegram:12345…" in a narrow terminal or a pipe.
    table = Table(
        Column("principal", no_wrap=True),
        Column("role", no_wrap=True),
        Column("area", no_wrap=True),
        "granted by",
        Column("granted at", overflow="fold"),
    )
    for g in grants:
        table.add_row(g.principal, g.role, g.area_code, g.granted_by, g.granted_at.isoformat())
    out.print(table if grants else "No officials yet.")


register_channel_commands(app, run_app)
register_broadcast_commands(app)


def main() -> None:
    app()
