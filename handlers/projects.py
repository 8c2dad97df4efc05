"""Công trình: villagers see what the commune builds with their gifts — progress, what they
gave, the budget, the latest update and its photo. Officials: new_project, project_updates."""

from __future__ import annotations

from dataclasses import dataclass

from bot.content.project_texts import (
    bar,
    budget_lines,
    gave_lines,
    period,
    place,
    status_name,
    update_line,
)
from bot.core.conversation import Button, Context, Payload, Reply, Router, StalePayload
from bot.delivery.project_notices import PHOTO_CHANNEL
from bot.domain.i18n import N_, _
from bot.domain.text import fold
from bot.storage.projects import Project
from handlers.common import ask_commune
from handlers.menu import with_menu

router = Router("projects")
MAX_LISTED = 10
# Words every project name has: they tell no project from another.
_COMMON = {"duong", "thon", "xa", "ban", "cong", "trinh", "mau", "nha", "be", "tong", "hoa"}


@dataclass(frozen=True)
class ShowProject(Payload, prefix="proj:show"):
    id: int


def _list_button() -> Button:
    return Button("proj:list", _("Công trình của xã"))


async def card(ctx: Context, project: Project) -> Reply:
    """One project as villagers see it: status and a progress bar, where, when, what the
    people gave (confirmed), the budget by source, the latest update and its photo."""
    services = ctx.services
    commune = services.reference.communes[project.commune_code].name
    lines = ["🏗 " + project.name, place(project, commune)]
    if project.is_sample:
        lines.append("⚠️ " + _("Dữ liệu mẫu — không phải số liệu chính thức."))
    lines.append(f"{status_name(project.status)} · {bar(project.progress)}")
    when = period(project)
    if when:
        lines.append(when)
    lines += gave_lines(await services.projects.people_gave(project))
    lines += budget_lines(project)
    photo = None
    latest = await services.projects.updates(project.id, limit=1)
    if latest:
        lines.append(update_line(latest[0]))
        if latest[0].photo:
            if ctx.event.channel == latest[0].photo_channel == PHOTO_CHANNEL:
                photo = latest[0].photo
            elif latest[0].photo_channel == PHOTO_CHANNEL:
                lines.append(_("[kèm 1 ảnh — xem trên Telegram]"))
            else:  # a photo only its own messenger can show
                lines.append(_("[kèm 1 ảnh]"))
    rows = [[_list_button(), Button("menu:main", _("Menu"))]]
    return Reply("\n".join(lines), rows, photo=photo)


def named(projects: list[Project], text: str, home: str | None = None) -> Project | None:
    """The project a message names ("đường thôn Nà Làng làm đến đâu rồi"): the one sharing
    most words that tell projects apart, ahead of any other — on a tie, the one of the `home`
    commune if it is alone there."""
    typed = set(fold(text).split())
    scores = [(len((set(fold(p.name).split()) - _COMMON) & typed), p) for p in projects]
    best = max((n for n, _p in scores), default=0)
    if best < 1:
        return None
    top = [p for n, p in scores if n == best]
    if len(top) > 1:
        top = [p for p in top if p.commune_code == home]
    return top[0] if len(top) == 1 else None


@router.command("congtrinh", "projects", description=N_("Công trình của xã và tiến độ"))
@router.button("proj:list")
@router.intent("projects")
async def list_projects(ctx: Context) -> Reply:
    """The commune's projects, or the one there is, or the one the message names."""
    commune = ctx.services.areas.get(ctx.user.commune_code or "")
    if commune is None:
        return ask_commune(ctx, then="proj:list")
    found = await ctx.services.projects.of_commune(commune.code)
    if not found:
        return with_menu(_("{commune} chưa có công trình nào.").format(commune=commune.name))
    one = None
    if ctx.event.button is None and not ctx.text.startswith("/"):
        # "nha van hoa na ri lam den dau roi": the project named, in this commune first, else
        # anywhere (its card says whose it is) — never another project shown in its place.
        one = named(await ctx.services.projects.every(), ctx.text, commune.code)
    if one is None and len(found) == 1:
        one = found[0]
    if one is not None:
        return await card(ctx, one)
    rows = [
        [Button(ShowProject(p.id).pack(), f"{p.name[:50]} · {p.progress}%")]
        for p in found[:MAX_LISTED]
    ]
    return Reply(
        _("Công trình của {commune}: chọn một để xem tiến độ.").format(commune=commune.name),
        [*rows, [Button("menu:main", _("Menu"))]],
    )


@router.button(ShowProject)
async def show_project(ctx: Context) -> Reply:
    """One project's card."""
    project = await ctx.services.projects.get(ctx.payload.id)
    if project is None:
        raise StalePayload(f"no project {ctx.payload.id}")
    return await card(ctx, project)
