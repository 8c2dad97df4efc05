"""Dân bàn, villagers' side: the polls of their commune (and village), a vote with a button, its
number or its text — question by question when a poll asks several — changed until the poll
closes, and the results."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from bot.content.poll_texts import heading, province_scope, results_text, scope_text
from bot.core.conversation import Button, Context, Payload, Reply, Router, StalePayload, Unfit
from bot.domain.clock import TZ
from bot.domain.i18n import N_, _, fmt_datetime
from bot.domain.text import fold
from bot.storage.polls import MAX_TEXT, Choices, Outcome, Poll, Results
from handlers.common import ask_commune
from handlers.menu import with_menu

router = Router("polls")
ANSWER = "poll:answer"  # a poll of several questions (or of several answers), one at a time


@dataclass(frozen=True)
class OpenPoll(Payload, prefix="poll:show"):
    id: int


@dataclass(frozen=True)
class Vote(Payload, prefix="poll:vote"):
    """The one press that votes in a poll of one question of one answer."""

    poll: int
    option: int


@dataclass(frozen=True)
class Pick(Payload, prefix="poll:pick"):
    """An option of a question of a poll answered question by question (a toggle when the
    question takes several answers)."""

    poll: int
    question: int
    option: int


def scope_name(ctx: Context, commune_code: str, village: str | None) -> str:
    return scope_text(ctx.services.reference.communes[commune_code].name, village)


def poll_scope(ctx: Context, poll: Poll) -> str:
    """Whom the poll asks, in words: the province, the commune, or one village of it."""
    if poll.whole_province:
        return province_scope(ctx.services.reference.province_name)
    return scope_name(ctx, poll.commune_code, poll.village)


def _province_of(ctx: Context) -> str | None:
    """The province of the user's commune (a province poll asks every commune of it)."""
    commune = ctx.services.areas.get(ctx.user.commune_code or "")
    return commune.province_code if commune is not None else None


def _results(ctx: Context, poll: Poll, results: Results) -> str:
    """The results in words, a province poll's communes by name."""
    names = {code: c.name for code, c in ctx.services.reference.communes.items()}
    return results_text(poll, results, names if poll.whole_province else None)


def card(ctx: Context, scope: str, question: str, closes_at: datetime, results: str) -> str:
    """The poll as villagers see it above its options (and officials in the preview)."""
    now = ctx.services.now()
    closes = fmt_datetime(closes_at.astimezone(TZ))
    lines = ["🗳 " + question, _("Dành cho: {scope}").format(scope=scope)]
    if closes_at > now:
        lines.append(_("Hạn chót: {moment}").format(moment=closes))
    else:
        lines.append(_("Đã đóng lúc {moment}.").format(moment=closes))
    if results == "after_vote":
        lines.append(_("Kết quả: xem được ngay sau khi bạn bình chọn."))
    else:
        lines.append(_("Kết quả: công bố khi bình chọn đóng."))
    return "\n".join(lines)


def _menu() -> list[list[Button]]:
    return [[Button("menu:main", _("Menu"))]]  # translated when shown, in the user's language


def _vote_buttons(poll: Poll) -> list[list[Button]]:
    options = poll.questions[0].options
    rows = [[Button(Vote(poll.id, i).pack(), text)] for i, text in enumerate(options)]
    return [*rows, *_menu()]


def _chosen_text(poll: Poll, mine: Choices) -> str:
    """What someone chose, in words: the options, question after question (and their own
    words, to themselves)."""
    return "; ".join(
        (f"“{chosen}”" if chosen else _("không có ý kiến thêm"))
        if isinstance(chosen, str)
        else ", ".join(question.options[n] for n in chosen)
        for question, chosen in zip(poll.questions, mine, strict=True)
    )


async def _village(ctx: Context) -> str | None:
    code = ctx.user.commune_code or ""
    return await ctx.services.polls.village_of(ctx.event.channel, ctx.event.user_id, code)


# --- the list, one poll ----------------------------------------------------------------------


@router.command("binhchon", "polls", description=N_("Bình chọn, lấy ý kiến của xã"))
@router.button("poll:list")
@router.intent("polls")
async def list_polls(ctx: Context) -> Reply | list[Reply]:
    """The polls of the user's commune (and village), or the one there is."""
    commune = ctx.services.areas.get(ctx.user.commune_code or "")
    if commune is None:
        return ask_commune(ctx, then="poll:list")
    found = await ctx.services.polls.for_person(
        commune.code, ctx.event.channel, ctx.event.user_id, commune.province_code
    )
    if not found:
        return with_menu(_("{commune} chưa có bình chọn nào.").format(commune=commune.name))
    if len(found) == 1:
        return await _show(ctx, *found[0])
    now = ctx.services.now()
    rows = [
        [Button(OpenPoll(p.id).pack(), p.question[:60] + ("" if p.is_open(now) else " 🔒"))]
        for p, _mine in found
    ]
    return Reply(
        _("Bình chọn của {commune}: chọn một.").format(commune=commune.name),
        [*rows, [Button("menu:main", _("Menu"))]],
    )


@router.button(OpenPoll)
async def show_poll(ctx: Context) -> Reply:
    """One poll: its options to vote, or its results."""
    poll = await ctx.services.polls.get(ctx.payload.id)
    if poll is None:
        raise StalePayload(f"poll {ctx.payload.id}")
    mine_too = poll.whole_province and poll.province_code == _province_of(ctx)
    if poll.commune_code != ctx.user.commune_code and not mine_too:
        raise StalePayload(f"poll {ctx.payload.id}")
    mine = await ctx.services.polls.choice_of(poll, ctx.event.channel, ctx.event.user_id)
    return await _show(ctx, poll, mine)


async def _show(ctx: Context, poll: Poll, mine: Choices | None) -> Reply:
    """The poll's card: its options to vote (and what the user chose), or its results; a poll
    of several questions is answered from its first one."""
    polls, now = ctx.services.polls, ctx.services.now()
    text = card(ctx, poll_scope(ctx, poll), poll.question, poll.closes_at, poll.results)
    if not poll.is_open(now):
        return with_menu(text + "\n" + _results(ctx, poll, await polls.results(poll)))
    if mine is not None:
        text += "\n" + _("Bạn đã chọn: {option}. Chọn lại để đổi ý.").format(
            option=_chosen_text(poll, mine)
        )
        if poll.results == "after_vote":
            text += "\n" + _results(ctx, poll, await polls.results(poll))
    if poll.single:
        return Reply(text, _vote_buttons(poll))
    if (refused := await _in_scope(ctx, poll)) is not None:  # said before, not after, answering
        return refused
    ctx.user.enter(ANSWER, poll=poll.id, chosen=[], picking=[])
    return _question(ctx, poll, text)


# --- a vote: one press, or question by question ----------------------------------------------


async def _in_scope(ctx: Context, poll: Poll) -> Reply | None:
    """A kind no for someone outside the poll's scope; None for someone of it."""
    # Only a village poll needs the voter's village to say yes (the vote stores it itself).
    village = await _village(ctx) if poll.village is not None else None
    if poll.covers(ctx.user.commune_code, village, _province_of(ctx)):
        return None
    return with_menu(
        _("Bình chọn này chỉ dành cho người dân {scope}.").format(scope=poll_scope(ctx, poll))
    )


async def _cast(ctx: Context, poll: Poll, choices: Choices) -> Reply:
    """Records, changes or keeps the ballot (a replay changes nothing) and says so; kindly
    refused once the poll has closed."""
    polls = ctx.services.polls
    outcome, results = await polls.vote(
        poll,
        choices,
        ctx.event.channel,
        ctx.event.user_id,
        counted=poll.results == "after_vote",
        commune=ctx.user.commune_code,
    )
    return _said(ctx, poll, outcome, results, _chosen_text(poll, choices))


def _said(
    ctx: Context, poll: Poll, outcome: Outcome, results: Results | None, chosen: str
) -> Reply:
    if outcome == "closed":
        assert results is not None
        closed = _("Bình chọn đã đóng, không nhận thêm ý kiến. Cảm ơn bạn đã quan tâm!")
        return with_menu(closed + "\n" + _results(ctx, poll, results))
    said = {
        "recorded": _("Đã ghi nhận ý kiến của bạn: {option}. Cảm ơn bạn!"),
        "changed": _("Đã đổi ý kiến của bạn thành: {option}."),
        "same": _("Bạn đã chọn {option} rồi, ý kiến vẫn giữ nguyên."),
    }[outcome].format(option=chosen)
    if results is not None:
        said += "\n" + _results(ctx, poll, results)
    else:
        said += "\n" + _("Kết quả sẽ công bố khi bình chọn đóng lúc {moment}.").format(
            moment=fmt_datetime(poll.closes_at.astimezone(TZ))
        )
    if poll.single:
        said += "\n" + _("Muốn đổi ý thì chọn lại trước khi đóng.")
        return Reply(said, _vote_buttons(poll))
    said += "\n" + _("Muốn đổi ý thì trả lời lại từ đầu trước khi đóng.")
    return Reply(said, [[Button(OpenPoll(poll.id).pack(), _("Trả lời lại"))], *_menu()])


@router.button(Vote)
async def vote(ctx: Context) -> Reply:
    """Records, changes or keeps the vote of a poll of one question; kindly refused outside
    the poll's scope or once it has closed."""
    poll = await ctx.services.polls.get(ctx.payload.poll)
    if poll is None or not poll.single:
        raise StalePayload(f"vote {ctx.payload}")
    if not 0 <= ctx.payload.option < len(poll.questions[0].options):
        raise StalePayload(f"vote {ctx.payload}")
    if (refused := await _in_scope(ctx, poll)) is not None:
        return refused
    return await _cast(ctx, poll, ((ctx.payload.option,),))


def _question(ctx: Context, poll: Poll, before: str = "") -> Reply:
    """The question the user is at, its options as buttons (ticked when chosen already)."""
    data = ctx.user.state_data
    at = len(data["chosen"])
    question = poll.questions[at]
    data["width"], data["kind"] = len(question.options), question.kind  # for typed numbers
    lines = [before] if before else []
    lines.append(heading(poll.questions, at) or question.text)
    if question.kind == "text":
        lines.append(_("Gõ ý kiến của bạn. Chỉ cán bộ xã đọc, không kèm tên, không công bố."))
        return Reply("\n".join(lines), [[Button("poll:skip", _("Không có ý kiến thêm"))], *_menu()])
    if question.kind == "many":
        lines.append(_("Chọn một hay nhiều ý rồi bấm Xong; gõ số cũng được, ví dụ: 1 3."))
    picking: list[int] = data["picking"]
    rows = [
        [Button(Pick(poll.id, at, n).pack(), ("✅ " if n in picking else "") + option)]
        for n, option in enumerate(question.options)
    ]
    if question.kind == "many":
        rows.append([Button("poll:done", _("Xong"))])
    return Reply("\n".join(lines), [*rows, *_menu()])


async def ask_answer(ctx: Context) -> Reply:
    """Asks the question the user is at again."""
    poll = await ctx.services.polls.get(ctx.user.state_data["poll"])
    if poll is None:  # never deleted; a draft of an unknown poll ends here
        ctx.user.leave()
        return with_menu(_("Bình chọn này không còn nữa."))
    return _question(ctx, poll)


_WORDS = {"mot": 1, "hai": 2, "ba": 3, "bon": 4, "tu": 4, "nam": 5, "sau": 6, "bay": 7}
_WORDS |= {"tam": 8, "chin": 9, "muoi": 10, "one": 1, "two": 2, "three": 3, "four": 4}
_WORDS |= {"five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10}
_JOINS = {"va", "voi", "and", "cau", "so", "y", "chon", "lua", "toi", "em"}  # "chọn số 1 và 3"
_SPLIT = re.compile(r"[\s,;.&+/]+")


def _numbers(text: str, ctx: Context) -> tuple[int, ...] | str | None:
    """Options typed by number — "2", "1 3", "1, 3", "1 va 3", "mot" — as positions; None
    for words that are not numbers (they go on to the intents). At the free-text question,
    whatever is typed is the answer."""
    if ctx.user.state_data["kind"] == "text":
        return text.strip()[:MAX_TEXT] or None
    words = [w for w in _SPLIT.split(fold(text)) if w]
    picked: list[int] = []
    for word in words:
        if word.isdigit():
            picked.append(int(word))
        elif word in _WORDS:
            picked.append(_WORDS[word])
        elif word not in _JOINS:
            return None
    if not picked:
        return None
    width, kind = ctx.user.state_data["width"], ctx.user.state_data["kind"]
    if not all(1 <= n <= width for n in picked):
        raise Unfit(_("Chọn số từ 1 đến {n}.").format(n=width))
    if kind == "one" and len(set(picked)) > 1:
        raise Unfit(_("Câu này chỉ chọn một ý: gõ một số từ 1 đến {n}.").format(n=width))
    return tuple(sorted({n - 1 for n in picked}))


@router.step(
    ANSWER,
    ask=ask_answer,
    parse=_numbers,
    buttons=("poll:pick", "poll:done", "poll:skip"),
    free=True,
)
async def answer_typed(ctx: Context) -> Reply:
    """Options typed by number: the question's answer (several at once for "chọn nhiều"); at
    the free-text question, the words."""
    poll = await _answering(ctx)
    return await _answered(ctx, poll, ctx.value)


async def _answering(ctx: Context) -> Poll:
    poll = await ctx.services.polls.get(ctx.user.state_data["poll"])
    if poll is None:
        raise StalePayload("answer to an unknown poll")
    return poll


@router.button(Pick)
async def picked(ctx: Context) -> Reply:
    """An option pressed (or its label typed): the answer of a one-answer question, a toggle
    of a several-answers one."""
    data = ctx.user.state_data
    if ctx.user.state != ANSWER or data.get("poll") != ctx.payload.poll:
        raise StalePayload(f"pick {ctx.payload}")
    if ctx.payload.question != len(data["chosen"]):  # a question answered already
        raise StalePayload(f"pick {ctx.payload}")
    poll = await _answering(ctx)
    question = poll.questions[ctx.payload.question]
    if not 0 <= ctx.payload.option < len(question.options):
        raise StalePayload(f"pick {ctx.payload}")
    if question.kind == "one":
        return await _answered(ctx, poll, (ctx.payload.option,))
    picking: list[int] = data["picking"]
    if ctx.payload.option in picking:
        picking.remove(ctx.payload.option)
    else:
        picking.append(ctx.payload.option)
    return _question(ctx, poll)


@router.button("poll:done")
async def done_picking(ctx: Context) -> Reply:
    """The options of a several-answers question are all ticked: the next question."""
    if ctx.user.state != ANSWER:
        raise StalePayload("poll:done outside a poll")
    poll = await _answering(ctx)
    picking: list[int] = ctx.user.state_data["picking"]
    if not picking:
        return _question(ctx, poll, _("Chọn ít nhất một ý rồi bấm Xong."))
    return await _answered(ctx, poll, tuple(sorted(picking)))


@router.button("poll:skip")
async def no_words(ctx: Context) -> Reply:
    """Nothing to add at the free-text question: the next question, or the ballot cast."""
    if ctx.user.state != ANSWER or ctx.user.state_data.get("kind") != "text":
        raise StalePayload("poll:skip outside a free-text question")
    return await _answered(ctx, await _answering(ctx), "")


async def _answered(ctx: Context, poll: Poll, chosen: tuple[int, ...] | str) -> Reply:
    """One more question answered; after the last one, the ballot is cast (one transaction)."""
    data = ctx.user.state_data
    data["chosen"].append(chosen if isinstance(chosen, str) else list(chosen))
    data["picking"] = []
    if len(data["chosen"]) < len(poll.questions):
        return _question(ctx, poll)
    ctx.user.leave()
    if (refused := await _in_scope(ctx, poll)) is not None:
        return refused
    return await _cast(
        ctx, poll, tuple(c if isinstance(c, str) else tuple(c) for c in data["chosen"])
    )
