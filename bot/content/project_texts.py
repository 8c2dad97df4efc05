"""A project's words, the same in the chat, its notices and the digest: status names, the
progress bar, the budget by source and what the people gave (confirmed only)."""

from __future__ import annotations

from bot.domain.i18n import N_, _, fmt_date
from bot.domain.quantities import households, spell
from bot.domain.text import fold
from bot.storage.contributions import Tally
from bot.storage.projects import BUILDING, DONE, HANDED_OVER, PREPARING, Project, ProjectUpdate

STATUS_NAMES = {
    PREPARING: N_("chuẩn bị"),
    BUILDING: N_("đang thi công"),
    DONE: N_("hoàn thành"),
    HANDED_OVER: N_("đã bàn giao"),
}
SOURCE_NAMES = {
    "state": N_("Ngân sách nhà nước"),
    "people": N_("Nhân dân đóng góp"),
    "enterprises": N_("Doanh nghiệp"),
}
# How offices and officials write a status, folded (files accept these as well as the ids).
STATUS_WORDS = {
    "chuan bi": PREPARING,
    "dang chuan bi": PREPARING,
    "thi cong": BUILDING,
    "dang thi cong": BUILDING,
    "dang lam": BUILDING,
    "hoan thanh": DONE,
    "xong": DONE,
    "da xong": DONE,
    "ban giao": HANDED_OVER,
    "da ban giao": HANDED_OVER,
}
BAR_CELLS = 10


def status_name(status: str) -> str:
    return _(STATUS_NAMES[status])


def status_of(written: str) -> str | None:
    """A status as written: its id ("building") or its words ("đang thi công", "dang thi cong")."""
    key = fold(written)
    if key.replace(" ", "_") in STATUS_NAMES:
        return key.replace(" ", "_")
    return STATUS_WORDS.get(key)


def bar(progress: int) -> str:
    """ "▓▓▓▓░░░░░░ 40%": a bar any phone font shows."""
    full = round(progress * BAR_CELLS / 100)
    return "▓" * full + "░" * (BAR_CELLS - full) + f" {progress}%"


def place(project: Project, commune_name: str) -> str:
    if project.village:
        return _("thôn {village}, {commune}").format(village=project.village, commune=commune_name)
    return commune_name


def budget_lines(project: Project) -> list[str]:
    """The budget by source, and its total, in đồng."""
    shown = [(s, n) for s, n in project.budget.items() if n]
    if not shown:
        return []
    lines = [_("Kinh phí: {total}").format(total=spell("money", project.total_budget))]
    lines += [f"• {_(SOURCE_NAMES[s])}: {spell('money', n, compact=True)}" for s, n in shown]
    return lines


def gave_lines(tally: Tally) -> list[str]:
    """What the people gave through the project's campaigns: confirmed totals only."""
    given = [spell(k, n, compact=True) for k, n in tally.totals.items() if k != "materials"]
    given += [
        spell("materials", n, unit, what) for (unit, what), n in sorted(tally.materials.items())
    ]
    if not given:
        return [_("Bà con đã góp: chưa có đóng góp nào được xác nhận.")]
    head = _("Bà con đã góp ({households}, đã xác nhận):").format(
        households=households(tally.households)
    )
    return [head, *("• " + g for g in given)]


def period(project: Project) -> str | None:
    if project.starts_on and project.ends_on:
        return _("Khởi công {start}, dự kiến xong {end}").format(
            start=fmt_date(project.starts_on), end=fmt_date(project.ends_on)
        )
    if project.ends_on:
        return _("Dự kiến xong {end}").format(end=fmt_date(project.ends_on))
    if project.starts_on:
        return _("Khởi công {start}").format(start=fmt_date(project.starts_on))
    return None


def update_line(update: ProjectUpdate) -> str:
    return _("Cập nhật {date}: {note}").format(date=fmt_date(update.created_at), note=update.note)


def notice_text(project: Project, update: ProjectUpdate, commune_name: str) -> str:
    """The message subscribers get for one update (a completion says so first)."""
    where = place(project, commune_name)
    if update.status == DONE:
        head = _("✅ Công trình {name} ({place}) đã hoàn thành!")
    elif update.status == HANDED_OVER:
        head = _("✅ Công trình {name} ({place}) đã bàn giao đưa vào sử dụng.")
    else:
        head = _("🏗 Tiến độ công trình {name} ({place})")
    lines = [
        head.format(name=project.name, place=where),
        f"{status_name(update.status)} · {bar(update.progress)}",
        update.note,
        _("Xem chi tiết: /congtrinh"),
    ]
    return "\n".join(lines)
