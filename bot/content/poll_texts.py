"""Dân bàn in words: a poll's results (counts, percentages, turnout, by village) and the notices
that announce a poll and its result — shared by the chat (handlers/polls.py) and the scheduler."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from bot.domain.clock import TZ
from bot.domain.i18n import _, fmt_datetime, fmt_number
from bot.storage.polls import Poll, Question, Results


def percent(part: int, whole: int) -> str:
    """A share as a whole percentage in the current locale; 0% of nothing."""
    return fmt_number(round(100 * part / whole) if whole else 0) + "%"  # half to even, as Babel


def turnout_line(results: Results) -> str | None:
    """Votes against the scope's subscribers, or None when the scope has no subscriber."""
    if not results.subscribers:
        return None
    return _("Tham gia: {votes}/{subscribers} người nhận tin ({percent})").format(
        votes=fmt_number(results.voters),
        subscribers=fmt_number(results.subscribers),
        percent=percent(results.voters, results.subscribers),
    )


def heading(questions: Sequence[Question], position: int) -> str | None:
    """ "Câu 2: …" above a question of a poll of several; None for a poll of one."""
    if len(questions) == 1:
        return None
    question = questions[position]
    said = _("Câu {n}: {question}").format(n=position + 1, question=question.text)
    if question.kind == "many":
        said += " " + _("(chọn nhiều)")
    if question.kind == "text":
        said += " " + _("(trả lời bằng chữ, chỉ cán bộ đọc)")
    return said


def results_text(poll: Poll, results: Results, communes: Mapping[str, str] | None = None) -> str:
    """Counts and percentages of the voters, question by question, the turnout; by village
    (by commune for a province poll, named from `communes`: code → name) with groups under
    five merged into "khác"."""
    lines = [_("Kết quả ({count} người bình chọn):").format(count=fmt_number(results.voters))]
    for position, counts in enumerate(results.of(poll)):
        if poll.questions[position].kind == "text":  # the officials' to read, never shown
            continue
        if (head := heading(poll.questions, position)) is not None:
            lines.append(head)
        for option, n in zip(poll.questions[position].options, counts, strict=True):
            lines.append(f"• {option}: {fmt_number(n)} ({percent(n, results.voters)})")
    if (turnout := turnout_line(results)) is not None:
        lines.append(turnout)
    if results.groups:
        if poll.whole_province:
            lines.append(_("Theo xã, phường (nơi dưới 5 người gộp vào “khác”):"))
        else:
            lines.append(_("Theo thôn (thôn dưới 5 người gộp vào “khác”):"))
        for group in results.groups:
            name = _("khác") if group.village is None else group.village
            if poll.whole_province and group.village is not None:
                name = (communes or {}).get(group.village, group.village)
            shares = "; ".join(
                ", ".join(
                    f"{option} {fmt_number(n)}"
                    for option, n in zip(question.options, counts, strict=True)
                )
                for question, counts in zip(
                    poll.questions, results.of(poll, group.counts), strict=True
                )
                if question.kind != "text"
            )
            lines.append(f"– {name}: {shares}")
    return "\n".join(lines)


def questions_text(questions: Sequence[Question]) -> list[str]:
    """The questions and their options by number, as a notice and the preview list them."""
    lines: list[str] = []
    for position, question in enumerate(questions):
        if (head := heading(questions, position)) is not None:
            lines += ["", head] if lines else [head]
        lines += [f"{n}. {option}" for n, option in enumerate(question.options, 1)]
    return lines


def province_scope(province: str) -> str:
    """Who a province poll asks: every commune of the province."""
    return _("{province} (mọi xã, phường)").format(province=province)


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
        *questions_text(poll.questions),
        "",
        _("Để bình chọn: gõ /binhchon rồi chọn số của ý kiến bạn chọn."),
    ]
    return "\n".join(lines)


def closed_notice(
    poll: Poll, scope: str, results: Results, communes: Mapping[str, str] | None = None
) -> str:
    """The broadcast of a poll's result once it has closed."""
    lines = [
        _("🗳 Kết quả bình chọn: {question}").format(question=poll.question),
        _("Dành cho: {scope}").format(scope=scope),
        _("Đã đóng lúc {moment}.").format(moment=_moment(poll.closes_at)),
        results_text(poll, results, communes),
    ]
    return "\n".join(lines)
