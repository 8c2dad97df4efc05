"""Dân kiểm tra, the reporter's side after filing: their reports with state and the commune's
latest answer; a closed one rated (hài lòng / chưa hài lòng) and reopened once within
REOPEN_DAYS of its closing, on the one clock."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from bot.core.conversation import Button, Context, Payload, Reply, Router, StalePayload
from bot.domain.i18n import N_, _, fmt_date
from bot.domain.text import fold
from bot.storage.reports import CLOSED, REOPEN_DAYS, Report
from handlers.menu import with_menu
from handlers.reports import category_name, state_name

router = Router("my_reports")
_RECEIPT = re.compile(r"\bpa\s*-?\s*\d{2}\s*-?\s*\d{3,6}\b")  # "PA-26-00012", typed any way


@dataclass(frozen=True)
class Rate(Payload, prefix="report:rate"):
    id: int
    rating: Literal["good", "bad"]


@dataclass(frozen=True)
class Reopen(Payload, prefix="report:reopen"):
    id: int


def _names_a_report(ctx: Context) -> float | None:
    """A report's code typed ("PA-26-00012 sao rồi"): the reporter's own list."""
    return 95.0 if _RECEIPT.search(fold(ctx.text)) else None


def closed_buttons(report: Report, may_reopen: bool) -> list[list[Button]]:
    """Rate a closed report, and reopen it while that is allowed."""
    rows = []
    if report.rating is None:
        rows.append(
            [
                Button(Rate(report.id, "good").pack(), _("{ref}: Hài lòng").format(ref=report.ref)),
                Button(
                    Rate(report.id, "bad").pack(), _("{ref}: Chưa hài lòng").format(ref=report.ref)
                ),
            ]
        )
    if may_reopen:
        rows.append([Button(Reopen(report.id).pack(), _("{ref}: Mở lại").format(ref=report.ref))])
    return rows


@router.command("phananhcuatoi", "myreports", description=N_("Phản ánh của tôi"))
@router.button("report:mine")
@router.intent("my_reports", recognize=_names_a_report)
async def mine(ctx: Context) -> Reply:
    """The villager's reports with their state and the latest answer."""
    items = await ctx.services.reports.of_user(*ctx.event.key)
    if not items:
        return Reply(
            _("Bạn chưa gửi phản ánh nào."),
            [[Button("report:start", _("Phản ánh")), Button("menu:main", _("Menu"))]],
        )
    now = ctx.services.clock.utcnow()
    lines, rows = [_("Phản ánh của bạn:")], []
    for r in items:
        category, state = category_name(r.category), state_name(r.state)
        line = f"• {r.ref} · {category} — {state} ({fmt_date(r.created_at)})"
        lines.append(line)
        if r.answer:
            lines.append("  " + _("Xã trả lời: {answer}").format(answer=r.answer))
        if r.state in CLOSED:
            rows += closed_buttons(r, r.may_reopen(now))
    rows.append([Button("report:start", _("Phản ánh")), Button("menu:main", _("Menu"))])
    return Reply("\n".join(lines), rows)


async def _own(ctx: Context, report_id: int) -> Report:
    report = await ctx.services.reports.get(report_id)
    if report is None or (report.channel, report.user_id) != ctx.event.key:
        raise StalePayload(f"report {report_id} is not this person's")
    return report


@router.button(Rate)
async def rate(ctx: Context) -> Reply:
    """Satisfied or not with how a closed report was handled."""
    report = await _own(ctx, ctx.payload.id)
    rated = await ctx.services.reports.rate(report.id, *ctx.event.key, ctx.payload.rating)
    if rated is None:
        return with_menu(_("{ref} chưa đóng, chưa đánh giá được.").format(ref=report.ref))
    said = _("Cảm ơn bạn đã đánh giá {ref}.").format(ref=report.ref)
    if ctx.payload.rating == "bad" and rated.may_reopen(ctx.services.clock.utcnow()):
        said += " " + _("Nếu việc chưa xong, bạn có thể mở lại một lần trong {days} ngày.").format(
            days=REOPEN_DAYS
        )
        return Reply(said, [*closed_buttons(rated, True), [Button("menu:main", _("Menu"))]])
    return with_menu(said)


@router.button(Reopen)
async def reopen(ctx: Context) -> Reply:
    """Reopens a closed report: once, within REOPEN_DAYS of its closing."""
    report = await _own(ctx, ctx.payload.id)
    reopened = await ctx.services.reports.reopen(report, f"{ctx.event.channel}:{ctx.event.user_id}")
    if reopened is None:
        if report.reopened:
            why = _("{ref} đã được mở lại một lần rồi, không mở lại được nữa.")
        elif report.state in CLOSED:
            why = _("{ref} đã đóng quá {days} ngày, không mở lại được. Bạn gửi phản ánh mới nhé.")
        else:
            why = _("{ref} đang được xử lý, chưa cần mở lại.")
        return with_menu(why.format(ref=report.ref, days=REOPEN_DAYS))
    return with_menu(
        _("Đã mở lại {ref}. Cán bộ xã sẽ xem lại; mình sẽ báo bạn.").format(ref=report.ref)
    )
