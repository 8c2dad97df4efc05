"""Dân bàn in words: a poll's results (counts, percentages, turnout, by village) and the notices
that announce a poll and its result — shared by the chat (handlers/polls.py) and the scheduler."""

from __future__ import annotations

from datetime import datetime

from bot.domain.clock import TZ
from bot.domain.i18n import _, fmt_datetime, fmt_number
from bot.storage.polls import Poll, Results


def percent(part: int, whole: int) -> str:
    """A share as a whole percentage in the current locale; 0% of nothing."""
    return fmt_number(round(100 * part / whole) if whole else 0) + "%"  # half to even, as Babel


def turnout_line(results: Results) -> str | None:
    """Votes against the scope's subscribers, or None when the scope has no subscriber."""
    if not results.subscribers:
        return None
    return _("Tham gia: {votes}/{subscribers} người nhận tin ({percent})").format(
        votes=fmt_number(results.total),
        subscribers=fmt_number(results.subscribers),
        percent=percent(results.total, results.subscribers),
    )


def results_text(poll: Poll, results: Results) -> str:
    """Counts and percentages, the turnout; by village with groups under five merged into
    "khác"."""
    lines = [_("Kết quả ({count} người bình chọn):").format(count=fmt_number(results.total))]
    for option, n in zip(poll.options, results.counts, strict=True):
        lines.append(f"• {option}: {fmt_number(n)} ({percent(n, results.total)})")
    if (turnout := turnout_line(results)) is not None:
        lines.append(turnout)
    if results.groups:
        lines.append(_("Theo thôn (thôn dưới 5 người gộp vào “khác”):"))
        for group in results.groups:
            name = group.village or _("khác")
            shares = ", ".join(
                f"{option} {fmt_number(n)}"
                for option, n in zip(poll.options, group.counts, strict=True)
            )
            lines.append(f"– {name}: {shares}")
    return "\n".join(lines)


def scope_text(commune: str, village: str | None) -> str:
    """Who a poll asks: the commune, or one village of it."""
    if village is None:
        return commune
    return _("thôn {village}, {commune}").format(village=village, commune=commune)


def _moment(moment: datetime) -> str:
    return fmt_datetime(moment.astimezone(TZ))


def opened_notice(poll: Poll, scope: str) -> str:
    """The broadcast of a new poll: question, options by number, closing time, how to vote
    (buttons where the channel has them, the command and numbers everywhere)."""
    lines = [
        _("🗳 Bình chọn mới: {question}").format(question=poll.question),
        _("Dành cho: {scope}").format(scope=scope),
        _("Hạn chót: {moment}").format(moment=_moment(poll.closes_at)),
        "",
        *(f"{n}. {option}" for n, option in enumerate(poll.options, 1)),
        "",
        _("Để bình chọn: gõ /binhchon rồi chọn số của ý kiến bạn chọn."),
    ]
    return "\n".join(lines)


def closed_notice(poll: Poll, scope: str, results: Results) -> str:
    """The broadcast of a poll's result once it has closed."""
    lines = [
        _("🗳 Kết quả bình chọn: {question}").format(question=poll.question),
        _("Dành cho: {scope}").format(scope=scope),
        _("Đã đóng lúc {moment}.").format(moment=_moment(poll.closes_at)),
        results_text(poll, results),
    ]
    return "\n".join(lines)
