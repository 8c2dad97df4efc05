"""The `chungsuc` command: chat, run, db, seed, import, admin."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Column, Table

from bot.app.services import Services, prepare_database
from bot.domain.i18n import _
from bot.interfaces.cli.broadcast import register as register_broadcast_commands
from bot.interfaces.cli.channels import register as register_channel_commands
from bot.interfaces.cli.common import CHAT_LOG, _settings, _with_services, err, out

app = typer.Typer(
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, help=__doc__
)
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
import_app = typer.Typer(no_args_is_help=True, help="Load data published by officials.")
admin_app = typer.Typer(no_args_is_help=True, help="Who may do what where.")
run_app = typer.Typer(no_args_is_help=True, help="Run the bot on a messenger.")
projects_app = typer.Typer(no_args_is_help=True, help="Projects (công trình) the gifts build.")
app.add_typer(db_app, name="db")
app.add_typer(import_app, name="import")
app.add_typer(admin_app, name="admin")
app.add_typer(run_app, name="run")
app.add_typer(projects_app, name="projects")


@app.command()
def chat(
    user: Annotated[str, typer.Option(help="Who you are in the conversation.")] = "local",
) -> None:
    """Talk to the bot in this terminal (buttons are numbered; piped stdin works too)."""
    from bot.app.runtime import Runtime

    async def work(services: Services) -> None:
        async with Runtime.start(services.settings, services, "chat", terminal_user=user) as rt:
            await rt.wait()  # the end of input (Ctrl+D)

    with contextlib.suppress(KeyboardInterrupt):
        _with_services(work, quiet=True, log_file=CHAT_LOG)  # not into the conversation


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
    from bot.content.sample import load_sample, load_sample_campaigns

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
    from bot.content.importer import ImportRejected, StatusImporter, file_digest, read_table

    async def work(services: Services) -> int:
        table = read_table(file, services.settings.import_max_mb)
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
        err.print(_("{file} chưa được nhập, không có gì thay đổi:").format(file=file.name))
        for problem in rejected.problems:
            err.print(f"  {problem}")
        raise typer.Exit(1) from None
    out.print(f"Imported {rows} status rows from {file.name}.")


@projects_app.command("load")
def projects_load(
    folder: Annotated[
        Path | None,
        typer.Argument(exists=True, file_okay=False, help="Default: content/projects."),
    ] = None,
) -> None:
    """Load the project files of a folder (all checked first: a wrong file changes nothing)."""
    from bot.content.project_files import PROJECTS_DIR, ProjectFileError, load_project_files

    async def work(services: Services) -> int:
        communes = set(services.reference.communes)
        return await load_project_files(services.projects, communes, folder or PROJECTS_DIR)

    try:
        changed = _with_services(work)
    except ProjectFileError as wrong:
        err.print(f"Nothing loaded: {wrong}")
        raise typer.Exit(1) from None
    out.print(f"Projects loaded: {changed} projects or updates new or changed.")


export_app = typer.Typer(no_args_is_help=True, help="Records for the commune's files.")
app.add_typer(export_app, name="export")


def _day(value: str | None, option: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        raise typer.BadParameter("write it as YYYY-MM-DD", param_hint=option) from None


def _check_export(format: str, output: Path | None) -> None:
    """Refused before any work: an unknown format, XLSX to a terminal, or a missing folder (a
    folder is not made from what may be a typo in the path)."""
    if format not in ("csv", "xlsx"):
        raise typer.BadParameter("csv or xlsx", param_hint="--format")
    if format == "xlsx" and output is None:
        raise typer.BadParameter("an .xlsx export needs --output FILE", param_hint="--output")
    if output is not None and not output.parent.is_dir():
        err.print(
            _("Không có thư mục {folder}: hãy tạo thư mục đó trước, hoặc ghi vào nơi khác.").format(
                folder=output.parent
            )
        )
        raise typer.Exit(2)


def _written(write: Callable[[], int], output: Path | None) -> int:
    """What `write` wrote; a file that cannot be written is one line and exit code 1."""
    try:
        return write()
    except OSError as error:
        err.print(
            _("Không ghi được {file}: {reason}").format(
                file=output or "stdout", reason=error.strerror or error
            )
        )
        raise typer.Exit(1) from None


@export_app.command("contributions")
def export_contributions(
    format: Annotated[str, typer.Option("--format", help="csv or xlsx")] = "csv",
    area: Annotated[str | None, typer.Option(help="Commune or province code")] = None,
    since: Annotated[
        str | None, typer.Option(help="Only from this day (YYYY-MM-DD, Vietnam time)")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Only up to this day, included (YYYY-MM-DD, Vietnam time)")
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write")] = None,
) -> None:
    """Write the contributions (every status) as CSV or XLSX, to a file or stdout (CSV)."""
    from bot.content.exports import day_end, day_start, write_contributions

    _check_export(format, output)
    since_day, until_day = _day(since, "--since"), _day(until, "--until")

    async def work(services: Services) -> int:
        reference = services.reference
        if area is None or area == reference.province_code:
            codes = None if area is None else list(reference.communes)
        elif area in reference.communes:
            codes = [area]
        else:
            raise typer.BadParameter(f"no commune or province {area!r} here", param_hint="--area")
        rows = await services.contributions.export(
            codes,
            day_start(since_day) if since_day else None,
            day_end(until_day) if until_day else None,
        )
        return _written(
            lambda: write_contributions(rows, reference, format, output or sys.stdout), output
        )

    count = _with_services(work, quiet=True)
    if output is not None:
        err.print(f"Wrote {count} contributions to {output}.")


@export_app.command("polls")
def export_polls(
    format: Annotated[str, typer.Option("--format", help="csv or xlsx")] = "csv",
    area: Annotated[str | None, typer.Option(help="Commune or province code")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write")] = None,
) -> None:
    """Write poll results (counts per option, whole and by village, villages under 5 voters
    merged; never who voted) as CSV or XLSX, to a file or stdout (CSV)."""
    from bot.content.exports import write_poll_results

    _check_export(format, output)

    async def work(services: Services) -> int:
        reference = services.reference
        if area is None or area == reference.province_code:
            codes = None
        elif area in reference.communes:
            codes = [area]
        else:
            raise typer.BadParameter(f"no commune or province {area!r} here", param_hint="--area")
        found = await services.polls.export(codes)
        return _written(
            lambda: write_poll_results(found, reference, format, output or sys.stdout), output
        )

    count = _with_services(work, quiet=True)
    if output is not None:
        err.print(f"Wrote the results of {count} polls to {output}.")


def _principal(value: str) -> str:
    """channel:id as given, the channel in lower case (revoke takes what grant once took)."""
    channel, _sep, user_id = value.strip().partition(":")
    if not channel or not user_id:
        raise typer.BadParameter(_("viết theo dạng kênh:mã, ví dụ telegram:123456789"))
    return f"{channel.lower()}:{user_id}"


def _valid_principal(value: str) -> str:
    """A principal that can match an official's messages: a known channel and a plausible id."""
    from bot.storage.officials import USER_ID_EXAMPLES, USER_IDS

    principal = _principal(value)
    channel, _sep, user_id = principal.partition(":")
    if channel not in USER_IDS:
        raise typer.BadParameter(
            _("không có kênh “{channel}”; các kênh: {channels}").format(
                channel=channel, channels=", ".join(USER_IDS)
            )
        )
    if not USER_IDS[channel].fullmatch(user_id):
        raise typer.BadParameter(
            _("“{user_id}” không giống mã người dùng {channel}, ví dụ {example}").format(
                user_id=user_id, channel=channel, example=USER_ID_EXAMPLES[channel]
            )
        )
    return principal


def _area_for(role: str, area: str) -> str:
    """The area code as stored: zero-padded like imports (2020 → 02020), province codes to 2."""
    width = 5 if role == "commune_official" else 2
    return area.zfill(width) if area.isdigit() else area


@admin_app.command("grant")
def admin_grant(
    principal: Annotated[str, typer.Argument(help="channel:id, e.g. telegram:123456789")],
    role: Annotated[str, typer.Argument(help="commune_official | province_official | admin")],
    area: Annotated[
        str, typer.Argument(help="A commune code (commune_official) or the province code")
    ],
    by: Annotated[str, typer.Option(help="Who grants it.")] = "cli",
) -> None:
    """Give someone a role for an area."""
    from bot.storage.officials import ROLES

    principal = _valid_principal(principal)
    if role not in ROLES:
        raise typer.BadParameter(f"role must be one of {', '.join(ROLES)}", param_hint="ROLE")
    code = _area_for(role, area)

    async def work(services: Services) -> bool:
        reference = services.reference
        if role == "commune_official" and code not in reference.communes:
            raise typer.BadParameter(
                _("{role} cần mã một xã của tỉnh {province}; không có xã nào mã “{area}”").format(
                    role=role, province=reference.province_code, area=area
                ),
                param_hint="AREA",
            )
        if role != "commune_official" and code != reference.province_code:
            raise typer.BadParameter(
                _("{role} cần mã tỉnh {province}, không phải “{area}”").format(
                    role=role, province=reference.province_code, area=area
                ),
                param_hint="AREA",
            )
        return await services.officials.grant(principal, role, code, by)

    added = _with_services(work)
    out.print(f"Granted {role} for {code} to {principal}." if added else "Already granted.")


@admin_app.command("revoke")
def admin_revoke(principal: str, role: str, area: str) -> None:
    """Take a role away."""
    principal = _principal(principal)
    area = _area_for(role, area)

    async def work(services: Services) -> bool:
        return await services.officials.revoke(principal, role, area)

    if not _with_services(work):
        err.print(f"{principal} has no {role} grant for {area}.")
        raise typer.Exit(1)
    out.print(f"Revoked {role} for {area} from {principal}.")


@admin_app.command("list")
def admin_list() -> None:
    """Everyone with a role."""
    from bot.domain.clock import TZ
    from bot.storage.db import as_utc

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
        granted = as_utc(g.granted_at).astimezone(TZ).isoformat(timespec="seconds")  # Vietnam's
        table.add_row(g.principal, g.role, g.area_code, g.granted_by, granted)
    out.print(table if grants else "No officials yet.")


register_channel_commands(app, run_app)
register_broadcast_commands(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
