"""Dân bàn, officials' side: a poll created in chat — up to five questions, each of one answer
or several, their options, whom to ask, the closing time and when results show — previewed as
villagers will see it, then confirmed (audited) and announced through the outbox."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, Literal

from bot.content.poll_texts import province_scope, questions_text
from bot.core.conversation import Button, Context, Payload, Reply, Router, StalePayload, Step, Unfit
from bot.delivery.poll_notices import announce_opened
from bot.domain.dates import parse_moment, parse_when
from bot.domain.i18n import N_, _, fmt_number
from bot.domain.text import fold
from bot.storage.polls import MAX_QUESTIONS, NewPoll, Poll, Question
from handlers.common import commune_of_official, example_moment, says_whole_commune
from handlers.menu import not_allowed, with_menu
from handlers.polls import OpenPoll, Vote, card, scope_name

router = Router("poll_create")
MAX_OPTIONS, MAX_DAYS = 10, 90

# Question → options → one answer or several, another question? (up to five) → scope →
# closing time → when results show → preview and confirm.
QUESTION, OPTIONS, MORE, SCOPE = "poll:question", "poll:options", "poll:more", "poll:scope"
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
    code = commune_of_official(ctx)
    # A province official may ask the whole province, even without a commune of their own.
    province = ctx.official.province if ctx.official.whole_province else None
    if code is None and province is None:
        return await not_allowed(ctx)
    villages = []
    if code is not None:
        in_commune = await ctx.services.campaigns.in_commune(code)
        villages = sorted({v for c in in_commune for v in c.villages})
    ctx.user.enter(
        QUESTION,
        commune=code,
        province=province,  # None: the "Toàn tỉnh" choice is not offered
        whole_province=False,
        villages=villages,
        asked=[],  # the questions done: {"text", "kind", "options"}
        options=[],
        kind="one",
        draft=uuid.uuid4().hex[:12],
    )
    return await ask(ctx)


def _questions(data: dict[str, Any]) -> tuple[Question, ...]:
    return tuple(Question(q["text"], q["kind"], tuple(q["options"])) for q in data["asked"])


def _draft_scope(ctx: Context) -> str:
    data = ctx.user.state_data
    if data.get("whole_province"):
        return province_scope(ctx.services.reference.province_name)
    return scope_name(ctx, data["commune"], data.get("village"))


async def ask(ctx: Context) -> Reply | list[Reply]:
    """The question of the step the official is at (asked again after an unusable answer)."""
    state, data = ctx.user.state, ctx.user.state_data
    cancel = Button("menu:main", _("Hủy"))
    if state == QUESTION and data["asked"]:
        return Reply(
            _("Câu hỏi thứ {n}? Ví dụ: Góp bao nhiêu ngày công?").format(n=len(data["asked"]) + 1),
            [[cancel]],
        )
    if state == QUESTION:
        return Reply(_("Câu hỏi cần lấy ý kiến? Ví dụ: Làm đường thôn nào trước?"))
    if state == MORE:
        many = data["kind"] == "many"
        said = (
            _("Câu này: mỗi người chọn được nhiều ý.")
            if many
            else _("Câu này: mỗi người chọn một ý.")
        )
        rows = [
            [Button("poll:kind", _("Chỉ cho chọn một ý") if many else _("Cho chọn nhiều ý"))],
            [Button("poll:next", _("Không, tiếp tục"))],
        ]
        if data["kind"] == "text":
            said = _("Câu này: mỗi người gõ ý kiến của mình; chỉ cán bộ đọc, không kèm tên.")
            rows = rows[1:]
        if len(data["asked"]) + 1 < MAX_QUESTIONS:
            rows.insert(1, [Button("poll:more", _("Thêm câu hỏi"))])
            said += "\n" + _("Thêm câu hỏi? (tối đa {n} câu)").format(n=MAX_QUESTIONS)
        return Reply(said, [*rows, [cancel]])
    if state == OPTIONS:
        options: list[str] = data["options"]
        if not options:
            # One question of a poll may take typed words instead, once another has options.
            free = [[Button("poll:free", _("Câu này trả lời bằng chữ"))]]
            return Reply(
                _(
                    "Gõ các lựa chọn, mỗi dòng một lựa chọn (2 đến 10). "
                    "Gõ từng lựa chọn một cũng được."
                ),
                [*(free if _may_ask_text(data) else []), [cancel]],
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
        rows = []
        if data["commune"] is not None:
            rows.append([Button(PickScope(0).pack(), scope_name(ctx, data["commune"], None))])
        rows += [
            [Button(PickScope(i).pack(), _("Thôn {village}").format(village=v))]
            for i, v in enumerate(data["villages"], 1)
        ]
        if data.get("province"):  # province officials only
            rows.append([Button("poll:province", _("Toàn tỉnh"))])
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
    questions = _questions(data)
    preview = card(ctx, _draft_scope(ctx), questions[0].text, closes_at, data["results"])
    listed = "\n".join(questions_text(questions))
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


@router.step(QUESTION, parse=_question, free=True, **OPTIONS_OF_STEP)
async def question_typed(ctx: Context) -> Reply | list[Reply]:
    """The question; then the options."""
    data = ctx.user.state_data
    data.update(question=ctx.value, options=[], kind="one")
    ctx.user.state = OPTIONS
    return await ask(ctx)


def _may_ask_text(data: dict[str, Any]) -> bool:
    kinds = [q["kind"] for q in data["asked"]]
    return bool(kinds) and "text" not in kinds


@router.button("poll:free", official=True)
async def free_text(ctx: Context) -> Reply | list[Reply]:
    """The question just typed is answered in words (one such question, after one of options)."""
    data = ctx.user.state_data
    if ctx.user.state != OPTIONS or data["options"] or not _may_ask_text(data):
        raise StalePayload("poll free text outside the flow")
    data["kind"] = "text"
    ctx.user.state = MORE
    return await ask(ctx)


@router.step(
    OPTIONS, parse=_options, buttons=("poll:opts", "poll:free"), free=True, **OPTIONS_OF_STEP
)
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
    ctx.user.state = MORE
    return await ask(ctx)


router.add_step(
    Step(
        MORE,
        buttons=("poll:kind", "poll:more", "poll:next"),
        yes="poll:more",
        no="poll:next",
        **OPTIONS_OF_STEP,
    )
)


def _keep_question(ctx: Context) -> None:
    data = ctx.user.state_data
    data["asked"].append(
        {"text": data["question"], "kind": data["kind"], "options": data["options"]}
    )


@router.button("poll:kind", official=True)
async def kind_toggled(ctx: Context) -> Reply | list[Reply]:
    """One answer per person, or several ("chọn nhiều"), for the question just typed."""
    if ctx.user.state != MORE or ctx.user.state_data["kind"] == "text":
        raise StalePayload("poll kind outside the flow")
    data = ctx.user.state_data
    data["kind"] = "one" if data["kind"] == "many" else "many"
    return await ask(ctx)


@router.button("poll:more", official=True)
async def more_questions(ctx: Context) -> Reply | list[Reply]:
    """Another question (up to five): asks for it."""
    data = ctx.user.state_data
    if ctx.user.state != MORE or len(data["asked"]) + 1 >= MAX_QUESTIONS:
        raise StalePayload("poll question outside the flow")
    _keep_question(ctx)
    ctx.user.state = QUESTION
    return await ask(ctx)


@router.button("poll:next", official=True)
async def questions_done(ctx: Context) -> Reply | list[Reply]:
    """The questions are all there; asks whom to ask."""
    if ctx.user.state != MORE:
        raise StalePayload("poll questions outside the flow")
    _keep_question(ctx)
    # A commune whose villages the bot does not know is asked as a whole (by a commune
    # official: a province official also has "Toàn tỉnh" to choose).
    data = ctx.user.state_data
    ctx.user.state = SCOPE if data["villages"] or data.get("province") else CLOSES
    return await ask(ctx)


def _scope(text: str, ctx: Context) -> int | None:
    """ "toàn xã", "cả xã", "tất cả": the whole commune, where the draft has one."""
    if says_whole_commune(ctx, text) and ctx.user.state_data["commune"] is not None:
        return 0
    return None


@router.step(SCOPE, parse=_scope, buttons=("poll:scope", "poll:province"), **OPTIONS_OF_STEP)
async def scope_typed(ctx: Context) -> Reply | list[Reply]:
    """The whole commune in words; as its button."""
    ctx.payload = PickScope(ctx.value)
    return await scoped(ctx)


@router.button(PickScope, official=True)
async def scoped(ctx: Context) -> Reply | list[Reply]:
    """The whole commune or one village; asks when it closes."""
    data = ctx.user.state_data
    if ctx.user.state != SCOPE or ctx.payload.index > len(data["villages"]):
        raise StalePayload(f"poll scope {ctx.payload}")
    if data["commune"] is None:  # a province official of no commune: the province only
        raise StalePayload(f"poll scope {ctx.payload} without a commune")
    data["village"] = data["villages"][ctx.payload.index - 1] if ctx.payload.index else None
    data["whole_province"] = False
    ctx.user.state = CLOSES
    return await ask(ctx)


@router.button("poll:province", official=True)
async def whole_province(ctx: Context) -> Reply | list[Reply]:
    """Every commune of the province (province officials only); asks when it closes."""
    data = ctx.user.state_data
    if ctx.user.state != SCOPE:
        raise StalePayload("poll province outside the flow")
    if not ctx.official.whole_province or data.get("province") != ctx.official.province:
        return await not_allowed(ctx)  # a commune official's forged press
    data.update(whole_province=True, village=None)
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
    province = bool(data.get("whole_province"))
    if province:
        allowed = ctx.official.whole_province and data["province"] == ctx.official.province
    else:
        allowed = data["commune"] is not None and ctx.official.covers(data["commune"])
    if not allowed:
        ctx.user.leave()
        return await not_allowed(ctx)
    code = data["province"] if province else data["commune"]
    commune = ctx.services.areas.get(data["commune"] or "")
    poll, created = await ctx.services.polls.create(
        NewPoll(
            commune_code=code,
            village=data.get("village"),
            questions=_questions(data),
            results=data["results"],
            closes_at=datetime.fromisoformat(data["closes_at"]),
            source_key=f"chat-{code}-{data['draft']}",
            province_code=commune.province_code if commune is not None else data["province"],
            whole_province=province,
        ),
        actor=ctx.official.principal,
    )
    ctx.user.leave()
    said = _("Đã mở bình chọn số {id}. Bà con xem và bình chọn bằng /binhchon.").format(id=poll.id)
    if created:  # a replayed confirmation announces nothing twice
        options = poll.questions[0].options
        votes = [[(Vote(poll.id, i).pack(), text)] for i, text in enumerate(options)]
        if not poll.single:  # answered question by question, from the poll's card
            votes = [[(OpenPoll(poll.id).pack(), _("Trả lời"))]]
        await announce_opened(ctx.services, poll, ctx.official.principal, votes)
        said += "\n" + _("Đã gửi thông báo tới bà con nhận tin bình chọn; xem /tiendogui.")
    return with_menu(said)


# --- officials read the words typed at a free-text question ----------------------------------


@dataclass(frozen=True)
class ReadWords(Payload, prefix="poll:words"):
    poll: int
    page: int


WORDS_PAGE = 10


@router.command(
    "ykienbinhchon",
    "pollanswers",
    description=N_("Cán bộ: đọc ý kiến bằng chữ của bình chọn"),
    official=True,
)
async def written_answers(ctx: Context) -> Reply:
    """The commune's polls that ask for words (and the province's, for its officials): one to
    read."""
    code = commune_of_official(ctx)
    province = ctx.official.province if ctx.official.whole_province else None
    if code is None and province is None:
        return await not_allowed(ctx)
    polls = ctx.services.polls
    found = await polls.of_commune(code) if code is not None else []
    if province is not None:
        found = sorted([*found, *await polls.of_commune(province)], key=lambda p: -p.id)
    found = [p for p in found if p.asks_text]
    if not found:
        return with_menu(_("Chưa có bình chọn nào hỏi ý kiến bằng chữ."))
    rows = [[Button(ReadWords(p.id, 0).pack(), p.question[:60])] for p in found]
    return Reply(
        _("Đọc ý kiến bằng chữ của bình chọn nào?"), [*rows, [Button("menu:main", _("Menu"))]]
    )


def _reads(ctx: Context, poll: Poll) -> bool:
    """Officials of the poll's commune read its words; the province's officials a province
    poll's."""
    if poll.whole_province:
        return ctx.official.whole_province and ctx.official.province == poll.province_code
    return ctx.official.covers(poll.commune_code)


@router.button(ReadWords, official=True)
async def read_words(ctx: Context) -> Reply:
    """A page of a poll's free-text answers, with no name: for the officials of its commune."""
    poll = await ctx.services.polls.get(ctx.payload.poll)
    if poll is None or not poll.asks_text or ctx.payload.page < 0:
        raise StalePayload(f"poll words {ctx.payload}")
    if not _reads(ctx, poll):
        return await not_allowed(ctx)
    start = ctx.payload.page * WORDS_PAGE
    words, total = await ctx.services.polls.texts(poll, start, WORDS_PAGE)
    question = next(q for q in poll.questions if q.kind == "text")
    if not total:
        return with_menu(_("“{question}”: chưa có ai gõ ý kiến.").format(question=question.text))
    lines = [
        _("Ý kiến bằng chữ — {question} ({n} ý kiến, không kèm tên):").format(
            question=question.text, n=fmt_number(total)
        ),
        *(f"{start + n}. {w}" for n, w in enumerate(words, 1)),
    ]
    rows = []
    if start + len(words) < total:
        rows.append([Button(ReadWords(poll.id, ctx.payload.page + 1).pack(), _("Xem tiếp"))])
    return Reply("\n".join(lines), [*rows, [Button("menu:main", _("Menu"))]])
