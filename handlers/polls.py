"""Dân bàn: officials ask the commune (or one village) a question; villagers vote with a button,
its number or its text, change their vote until the poll closes, and see the results."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, Literal

from bot.content.poll_texts import results_text, scope_text
from bot.core.conversation import Button, Context, Payload, Reply, Router, StalePayload, Step, Unfit
from bot.delivery.poll_notices import announce_opened
from bot.domain.clock import TZ
from bot.domain.dates import parse_moment, parse_when
from bot.domain.i18n import N_, _, fmt_datetime
from bot.domain.text import fold
from bot.storage.polls import Choices, NewPoll, Poll, Question
from handlers.common import ask_commune, example_moment
from handlers.menu import not_allowed, with_menu

router = Router("polls")
MAX_OPTIONS, MAX_DAYS = 10, 90


@dataclass(frozen=True)
class OpenPoll(Payload, prefix="poll:show"):
    id: int


@dataclass(frozen=True)
class Vote(Payload, prefix="poll:vote"):
    poll: int
    option: int


def _scope_name(ctx: Context, commune_code: str, village: str | None) -> str:
    return scope_text(ctx.services.reference.communes[commune_code].name, village)


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


def _single(poll: Poll) -> bool:
    """A poll of one question of one answer: voted with one press, as before 0009."""
    return len(poll.questions) == 1 and poll.questions[0].kind == "one"


def _vote_buttons(poll: Poll) -> list[list[Button]]:
    options = poll.questions[0].options
    rows = [[Button(Vote(poll.id, i).pack(), text)] for i, text in enumerate(options)]
    return [*rows, [Button("menu:main", _("Menu"))]]


def _chosen_text(poll: Poll, mine: Choices) -> str:
    """What someone chose, in words: the options, question after question."""
    return "; ".join(
        ", ".join(question.options[n] for n in chosen)
        for question, chosen in zip(poll.questions, mine, strict=True)
    )


async def _village(ctx: Context) -> str | None:
    code = ctx.user.commune_code or ""
    return await ctx.services.polls.village_of(ctx.event.channel, ctx.event.user_id, code)


# --- villagers: the list, one poll, a vote ---------------------------------------------------


@router.command("binhchon", "polls", description=N_("Bình chọn, lấy ý kiến của xã"))
@router.button("poll:list")
@router.intent("polls")
async def list_polls(ctx: Context) -> Reply | list[Reply]:
    """The polls of the user's commune (and village), or the one there is."""
    commune = ctx.services.areas.get(ctx.user.commune_code or "")
    if commune is None:
        return ask_commune(ctx, then="poll:list")
    found = await ctx.services.polls.for_person(commune.code, ctx.event.channel, ctx.event.user_id)
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
    if poll is None or poll.commune_code != ctx.user.commune_code:
        raise StalePayload(f"poll {ctx.payload.id}")
    mine = await ctx.services.polls.choice_of(poll, ctx.event.channel, ctx.event.user_id)
    return await _show(ctx, poll, mine)


async def _show(ctx: Context, poll: Poll, mine: Choices | None) -> Reply:
    """The poll's card: its options to vote (and what the user chose), or its results."""
    polls, now = ctx.services.polls, ctx.services.now()
    text = card(
        ctx,
        _scope_name(ctx, poll.commune_code, poll.village),
        poll.question,
        poll.closes_at,
        poll.results,
    )
    if not poll.is_open(now):
        return with_menu(text + "\n" + results_text(poll, await polls.results(poll)))
    if mine is not None:
        text += "\n" + _("Bạn đã chọn: {option}. Chọn lại để đổi ý.").format(
            option=_chosen_text(poll, mine)
        )
        if poll.results == "after_vote":
            text += "\n" + results_text(poll, await polls.results(poll))
    return Reply(text, _vote_buttons(poll))


@router.button(Vote)
async def vote(ctx: Context) -> Reply:
    """Records, changes or keeps the vote (a replay changes nothing); kindly refused outside
    the poll's scope or once it has closed."""
    polls = ctx.services.polls
    poll = await polls.get(ctx.payload.poll)
    if poll is None or not _single(poll):
        raise StalePayload(f"vote {ctx.payload}")
    options = poll.questions[0].options
    if not 0 <= ctx.payload.option < len(options):
        raise StalePayload(f"vote {ctx.payload}")
    # Only a village poll needs the voter's village to say yes (the vote stores it itself).
    village = await _village(ctx) if poll.village is not None else None
    if not poll.covers(ctx.user.commune_code, village):
        return with_menu(
            _("Bình chọn này chỉ dành cho người dân {scope}.").format(
                scope=_scope_name(ctx, poll.commune_code, poll.village)
            )
        )
    option = options[ctx.payload.option]
    outcome, results = await polls.vote(
        poll,
        ((ctx.payload.option,),),
        ctx.event.channel,
        ctx.event.user_id,
        counted=poll.results == "after_vote",
    )
    if outcome == "closed":
        assert results is not None
        closed = _("Bình chọn đã đóng, không nhận thêm ý kiến. Cảm ơn bạn đã quan tâm!")
        return with_menu(closed + "\n" + results_text(poll, results))
    said = {
        "recorded": _("Đã ghi nhận ý kiến của bạn: {option}. Cảm ơn bạn!"),
        "changed": _("Đã đổi ý kiến của bạn thành: {option}."),
        "same": _("Bạn đã chọn {option} rồi, ý kiến vẫn giữ nguyên."),
    }[outcome].format(option=option)
    if results is not None:
        said += "\n" + results_text(poll, results)
    else:
        said += "\n" + _("Kết quả sẽ công bố khi bình chọn đóng lúc {moment}.").format(
            moment=fmt_datetime(poll.closes_at.astimezone(TZ))
        )
    said += "\n" + _("Muốn đổi ý thì chọn lại trước khi đóng.")
    return Reply(said, _vote_buttons(poll))


# --- officials create a poll in chat ---------------------------------------------------------
# Question → options → scope → closing time → when results show → preview and confirm.
QUESTION, OPTIONS, SCOPE = "poll:question", "poll:options", "poll:scope"
CLOSES, RESULTS, CONFIRM = "poll:closes", "poll:results", "poll:confirm"


@dataclass(frozen=True)
class PickScope(Payload, prefix="poll:scope"):
    index: int  # 0: the whole commune; 1…: a village of the draft's list


@dataclass(frozen=True)
class PickResults(Payload, prefix="poll:res"):
    when: Literal["after_vote", "after_close"]


@router.command(
    "taobinhchon", "newpoll", description=N_("Cán bộ: tạo bình chọn, lấy ý kiến"), official=True
)
async def new_poll(ctx: Context) -> Reply | list[Reply]:
    """Asks an official for the question, then options, scope, closing time and results."""
    communes = ctx.official.communes
    code = ctx.user.commune_code if ctx.user.commune_code in communes else None
    if code is None and len(communes) == 1:
        code = communes[0]
    if code is None:  # officials of several communes ask in the commune they live in
        return await not_allowed(ctx)
    villages = sorted(
        {v for c in await ctx.services.campaigns.in_commune(code) for v in c.villages}
    )
    ctx.user.enter(
        QUESTION, commune=code, villages=villages, options=[], draft=uuid.uuid4().hex[:12]
    )
    return await ask(ctx)


def _draft_scope(ctx: Context) -> str:
    data = ctx.user.state_data
    return _scope_name(ctx, data["commune"], data.get("village"))


async def ask(ctx: Context) -> Reply | list[Reply]:
    """The question of the step the official is at (asked again after an unusable answer)."""
    state, data = ctx.user.state, ctx.user.state_data
    cancel = Button("menu:main", _("Hủy"))
    if state == QUESTION:
        return Reply(_("Câu hỏi cần lấy ý kiến? Ví dụ: Làm đường thôn nào trước?"))
    if state == OPTIONS:
        options: list[str] = data["options"]
        if not options:
            return Reply(
                _(
                    "Gõ các lựa chọn, mỗi dòng một lựa chọn (2 đến 10). "
                    "Gõ từng lựa chọn một cũng được."
                ),
                [[cancel]],
            )
        listed = "\n".join(f"{i}. {o}" for i, o in enumerate(options, 1))
        more = (
            _("Gõ thêm lựa chọn, hoặc bấm Xong.")
            if len(options) >= 2
            else _("Cần ít nhất 2 lựa chọn: gõ thêm.")
        )
        rows = [[Button("poll:opts", _("Xong"))]] if len(options) >= 2 else []
        return Reply(_("Các lựa chọn:") + "\n" + listed + "\n" + more, [*rows, [cancel]])
    if state == SCOPE:
        rows = [[Button(PickScope(0).pack(), _scope_name(ctx, data["commune"], None))]]
        rows += [
            [Button(PickScope(i).pack(), _("Thôn {village}").format(village=v))]
            for i, v in enumerate(data["villages"], 1)
        ]
        return Reply(_("Hỏi ý kiến ai?"), [*rows, [cancel]])
    if state == CLOSES:
        return Reply(
            _("Đóng bình chọn lúc nào? Gõ giờ và ngày, ví dụ {example}, hoặc chỉ ngày.").format(
                example=example_moment(ctx)
            ),
            [[cancel]],
        )
    if state == RESULTS:
        return Reply(
            _("Khi nào bà con xem được kết quả?"),
            [
                [Button(PickResults("after_vote").pack(), _("Ngay sau khi bình chọn"))],
                [Button(PickResults("after_close").pack(), _("Chỉ khi đã đóng"))],
                [cancel],
            ],
        )
    closes_at = datetime.fromisoformat(data["closes_at"])
    preview = card(ctx, _draft_scope(ctx), data["question"], closes_at, data["results"])
    listed = "\n".join(f"{i}. {o}" for i, o in enumerate(data["options"], 1))
    return [
        Reply(_("Xem trước — bà con sẽ thấy:")),
        Reply(preview + "\n" + listed),
        Reply(
            _("Mở bình chọn này?"),
            [[Button("poll:ok", _("Đúng, mở")), cancel]],
        ),
    ]


OPTIONS_OF_STEP: dict[str, Any] = {"ask": ask, "keeps": True, "official": True}
_BULLET = re.compile(r"^\s*(?:[0-9]{1,2}\s*[.)/:-]|[-•*+–])\s*")


def _question(text: str, ctx: Context) -> str | None:
    question = text.strip()[:500]
    if not question:
        return None
    if not any(ch.isalnum() for ch in question):
        raise Unfit(_("Câu hỏi cần có chữ, ví dụ: Làm đường thôn nào trước?"))
    return question


def _options(text: str, ctx: Context) -> list[str] | None:
    """One option per line (a "1." or "-" in front is dropped); several lines add several."""
    typed = [_BULLET.sub("", line).strip()[:200] for line in text.splitlines()]
    typed = [t for t in typed if any(ch.isalnum() for ch in t)]
    if not typed:
        return None
    have: list[str] = ctx.user.state_data["options"]
    seen = {fold(o) for o in have}
    for option in typed:
        if fold(option) in seen:
            raise Unfit(_("“{option}” đã có rồi.").format(option=option))
        seen.add(fold(option))
    if len(have) + len(typed) > MAX_OPTIONS:
        raise Unfit(_("Tối đa {n} lựa chọn; đã có {have}.").format(n=MAX_OPTIONS, have=len(have)))
    return typed


def _closing(text: str, ctx: Context) -> str | None:
    now = ctx.services.now()
    moment = parse_moment(text, now)
    if moment is None:
        day = parse_when(text, now.date())
        if day is not None:
            moment = datetime.combine(day, time(23, 59), now.tzinfo)
    if moment is None:
        raise Unfit(
            _("Mình chưa hiểu thời gian. Ví dụ: {example}.").format(example=example_moment(ctx)),
            weak=True,
        )
    if moment <= now:
        raise Unfit(
            _("Thời gian này đã qua. Ví dụ: {example}.").format(example=example_moment(ctx))
        )
    if moment > now + timedelta(days=MAX_DAYS):
        raise Unfit(_("Bình chọn mở tối đa {n} ngày.").format(n=MAX_DAYS))
    return moment.isoformat()


@router.step(QUESTION, parse=_question, **OPTIONS_OF_STEP)
async def question_typed(ctx: Context) -> Reply | list[Reply]:
    """The question; then the options."""
    ctx.user.state_data["question"] = ctx.value
    ctx.user.state = OPTIONS
    return await ask(ctx)


@router.step(OPTIONS, parse=_options, buttons=("poll:opts",), **OPTIONS_OF_STEP)
async def options_typed(ctx: Context) -> Reply | list[Reply]:
    """Options typed, one per line or one at a time; at ten the flow goes on by itself."""
    options: list[str] = ctx.user.state_data["options"]
    options.extend(ctx.value)
    if len(options) >= MAX_OPTIONS:
        return await _after_options(ctx)
    return await ask(ctx)


@router.button("poll:opts", official=True)
async def options_done(ctx: Context) -> Reply | list[Reply]:
    """The options are all there; asks whom to ask."""
    if ctx.user.state != OPTIONS or len(ctx.user.state_data["options"]) < 2:
        raise StalePayload("poll options outside the flow")
    return await _after_options(ctx)


async def _after_options(ctx: Context) -> Reply | list[Reply]:
    # A commune whose villages the bot does not know is asked as a whole.
    ctx.user.state = SCOPE if ctx.user.state_data["villages"] else CLOSES
    return await ask(ctx)


router.add_step(Step(SCOPE, buttons=("poll:scope",), **OPTIONS_OF_STEP))


@router.button(PickScope, official=True)
async def scoped(ctx: Context) -> Reply | list[Reply]:
    """The whole commune or one village; asks when it closes."""
    data = ctx.user.state_data
    if ctx.user.state != SCOPE or ctx.payload.index > len(data["villages"]):
        raise StalePayload(f"poll scope {ctx.payload}")
    data["village"] = data["villages"][ctx.payload.index - 1] if ctx.payload.index else None
    ctx.user.state = CLOSES
    return await ask(ctx)


@router.step(CLOSES, parse=_closing, **OPTIONS_OF_STEP)
async def closes_typed(ctx: Context) -> Reply | list[Reply]:
    """The closing time ("18:00 15/12", "15/12", "thứ bảy"); asks when results show."""
    ctx.user.state_data["closes_at"] = ctx.value
    ctx.user.state = RESULTS
    return await ask(ctx)


router.add_step(Step(RESULTS, buttons=("poll:res",), **OPTIONS_OF_STEP))


@router.button(PickResults, official=True)
async def results_chosen(ctx: Context) -> Reply | list[Reply]:
    """When villagers see the results; shows the preview to confirm."""
    if ctx.user.state != RESULTS:
        raise StalePayload("poll results outside the flow")
    ctx.user.state_data["results"] = ctx.payload.when
    ctx.user.state = CONFIRM
    return await ask(ctx)


router.add_step(
    Step(CONFIRM, buttons=("poll:ok",), yes="poll:ok", no="menu:main", **OPTIONS_OF_STEP)
)


@router.button("poll:ok", official=True)
async def open_poll(ctx: Context) -> Reply:
    """Stores the poll (audited), if the official still acts for the draft's commune, and
    announces it to the scope's subscribers of the "polls" topic through the outbox."""
    data = ctx.user.state_data
    if ctx.user.state != CONFIRM:
        raise StalePayload("poll confirmation outside the flow")
    if not ctx.official.covers(data["commune"]):
        ctx.user.leave()
        return await not_allowed(ctx)
    poll, created = await ctx.services.polls.create(
        NewPoll(
            commune_code=data["commune"],
            village=data.get("village"),
            questions=(Question(data["question"], "one", tuple(data["options"])),),
            results=data["results"],
            closes_at=datetime.fromisoformat(data["closes_at"]),
            source_key=f"chat-{data['commune']}-{data['draft']}",
        ),
        actor=ctx.official.principal,
    )
    ctx.user.leave()
    said = _("Đã mở bình chọn số {id}. Bà con xem và bình chọn bằng /binhchon.").format(id=poll.id)
    if created:  # a replayed confirmation announces nothing twice
        options = poll.questions[0].options
        votes = [[(Vote(poll.id, i).pack(), text)] for i, text in enumerate(options)]
        await announce_opened(ctx.services, poll, ctx.official.principal, votes)
        said += "\n" + _("Đã gửi thông báo tới bà con nhận tin bình chọn; xem /tiendogui.")
    return with_menu(said)
