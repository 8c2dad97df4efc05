"""Dân kiểm tra, the officials' side: the reports of their communes, new first and overdue marked,
taken through their states; closing needs a written answer. The reporter is told each time, in
their own language. Every route here is official (the dispatcher's guard runs first)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncConnection

from bot.content.reference import localized
from bot.core.conversation import (
    Button,
    Context,
    Payload,
    Reply,
    Router,
    StalePayload,
    Step,
    Unfit,
)
from bot.delivery.notify import Notice, enqueue
from bot.domain.i18n import N_, _, fmt_date, fmt_number, use_locale
from bot.storage.reports import (
    CLOSED,
    DUPLICATE,
    IN_PROGRESS,
    NEW,
    OPEN,
    RECEIVED,
    RESOLVED,
    SPAM,
    Report,
    ReportStore,
    parse_ref,
    ref_of,
)
from handlers.menu import not_allowed, with_menu
from handlers.my_reports import closed_buttons
from handlers.reports import category_name, state_name, tell_officials

router = Router("report_desk")
ANSWER, DUPLICATE_OF, COMMUNE = "report:answer", "report:dup", "report:commune"
SPAM_ASK = "report:spam"
PAGE = 5
NOTICES = {
    RECEIVED: N_("Phản ánh {ref} của bạn đã được cán bộ xã tiếp nhận."),
    IN_PROGRESS: N_("Phản ánh {ref} của bạn đang được xử lý."),
    RESOLVED: N_("Phản ánh {ref} của bạn đã được giải quyết. Xã trả lời: {answer}"),
    "out_of_scope": N_(
        "Phản ánh {ref} của bạn không thuộc thẩm quyền của xã. Bạn liên hệ: {answer}"
    ),
    DUPLICATE: N_("Phản ánh {ref} của bạn trùng với phản ánh {other}. Xã trả lời: {answer}"),
    "declined": N_("Phản ánh {ref} của bạn sẽ không được xử lý. Lý do: {answer}"),
    SPAM: N_("Phản ánh {ref} đã được đóng: cán bộ xã thấy nó không đúng mục đích phản ánh."),
}
FOLLOWED = N_("Phản ánh {ref} bạn theo dõi: {state}.")
ASK_ANSWER = {
    RESOLVED: N_("{ref}: việc đã giải quyết thế nào? Người phản ánh sẽ đọc câu trả lời này."),
    "out_of_scope": N_("{ref}: người dân nên liên hệ ở đâu? Ví dụ: Điện lực Chợ Đồn, số …"),
    DUPLICATE: N_("{ref}: trả lời người phản ánh (việc đang xử lý theo {other})."),
    "declined": N_("{ref}: lý do không xử lý? Người phản ánh sẽ đọc lý do này."),
}


@dataclass(frozen=True)
class Receive(Payload, prefix="report:recv"):
    id: int


@dataclass(frozen=True)
class Work(Payload, prefix="report:work"):
    id: int


@dataclass(frozen=True)
class Close(Payload, prefix="report:end"):
    id: int
    how: Literal["resolved", "out_of_scope", "duplicate", "declined"]


@dataclass(frozen=True)
class MarkSpam(Payload, prefix="report:spam"):
    id: int


@dataclass(frozen=True)
class ConfirmSpam(Payload, prefix="report:spamok"):
    """Spam confirmed: it closes the report and counts against its sender, so it is asked."""

    id: int


@dataclass(frozen=True)
class Reassign(Payload, prefix="report:move"):
    """A province official sends the report to the commune it belongs to."""

    id: int


@dataclass(frozen=True)
class NextPage(Payload, prefix="report:more"):
    """The queue after the last report shown: its state and id (ReportStore.queue)."""

    state: Literal["new", "received", "in_progress"]
    after: int


def card(ctx: Context, r: Report) -> Reply:
    """One report as its commune's officials see it, the reporter's identity included."""
    now = ctx.services.clock.utcnow()
    commune = ctx.services.reference.communes[r.commune_code].name
    head = f"{r.ref} · {commune}" + (f" · {r.village}" if r.village else "")
    if r.overdue(now, ctx.services.settings.report_due_days):
        head += " · " + _("⏰ quá hạn")
    lines = [
        head,
        f"{category_name(r.category)} — {state_name(r.state)} ({fmt_date(r.created_at)})",
        r.description,
        _("Người phản ánh: {name} ({who})").format(
            name=r.display_name or _("không rõ tên"), who=f"{r.channel}:{r.user_id}"
        ),
    ]
    if r.photo:
        lines.append(_("[kèm 1 ảnh]"))
    if r.latitude is not None and r.longitude is not None:
        lines.append(f"📍 {r.latitude:.5f}, {r.longitude:.5f}")
    if r.criterion is not None:
        lines.append(_criterion_line(ctx, r))
    if r.reopened:
        lines.append(_("Người dân đã mở lại phản ánh này."))
    rows = []
    if r.state == NEW:
        rows.append([Button(Receive(r.id).pack(), _("Tiếp nhận"))])
    if r.state in (NEW, RECEIVED):
        rows.append([Button(Work(r.id).pack(), _("Đang xử lý"))])
    rows += [
        [
            Button(Close(r.id, "resolved").pack(), _("Đã giải quyết")),
            Button(Close(r.id, "out_of_scope").pack(), _("Không thuộc thẩm quyền")),
        ],
        [
            Button(Close(r.id, "duplicate").pack(), _("Trùng")),
            Button(Close(r.id, "declined").pack(), _("Không xử lý")),
        ],
        [Button(MarkSpam(r.id).pack(), _("Tin rác"))],
    ]
    if ctx.official.whole_province:
        rows[-1].append(Button(Reassign(r.id).pack(), _("Chuyển xã khác")))
    return Reply("\n".join(lines), rows)


def _criterion_line(ctx: Context, r: Report) -> str:
    """The criterion a report disputes, by number and name where the set is known."""
    cset = ctx.services.reference.criteria_set(r.criteria_set or "")
    criterion = cset.criterion(r.criterion or 0) if cset is not None else None
    name = localized(criterion.name) if criterion is not None else ""
    return _("Dân kiểm tra: tiêu chí {number} ({name}) được ghi là đạt").format(
        number=r.criterion, name=name
    )


@router.command(
    "xulyphananh", "reports", description=N_("Cán bộ: xử lý phản ánh của dân"), official=True
)
@router.button("report:queue", official=True)
async def queue(ctx: Context) -> Reply | list[Reply]:
    """The open reports of the official's communes (all of them for the province): new first,
    overdue marked, PAGE at a time."""
    return await _page(ctx, None)


@router.button(NextPage, official=True)
async def next_page(ctx: Context) -> Reply | list[Reply]:
    """The page after the one shown."""
    return await _page(ctx, (ctx.payload.state, ctx.payload.after))


async def _page(ctx: Context, after: tuple[str, int] | None) -> Reply | list[Reply]:
    communes = list(ctx.official.communes)
    page = await ctx.services.reports.queue(communes, limit=PAGE, after=after)
    if not page.items:
        if after is not None:
            return with_menu(_("Hết phản ánh đang chờ xử lý."))
        return with_menu(_("Không có phản ánh nào đang chờ xử lý."))
    replies = [Reply(_("Phản ánh đang chờ xử lý:")), *(card(ctx, r) for r in page.items)]
    if page.more:
        last = page.items[-1]
        state: Literal["new", "received", "in_progress"] = last.state  # type: ignore[assignment]
        replies.append(
            Reply(
                _("Còn {count} phản ánh nữa.").format(count=fmt_number(page.more)),
                [[Button(NextPage(state, last.id).pack(), _("Trang sau"))]],
            )
        )
    return replies


async def _target(ctx: Context, report_id: int) -> Report | Reply:
    """The report, if it is this official's commune's; the refusal otherwise."""
    report = await ctx.services.reports.get(report_id)
    if report is None:
        raise StalePayload(f"no report {report_id}")
    if not ctx.official.covers(report.commune_code):
        return await not_allowed(ctx)
    return report


async def _move(
    ctx: Context,
    report_id: int,
    to: str,
    answer: str | None = None,
    photo: str | None = None,
    other: int | None = None,
) -> Reply:
    """Change the state, audit it and record the reporter's notice in one transaction, then
    send the notice right after this answer."""
    services, official = ctx.services, ctx.official
    notices: list[Notice] = []
    other_ref = ""
    if other is not None:
        found = await services.reports.get(other)
        other_ref = found.ref if found is not None else ""

    async def notify(conn: AsyncConnection, changed: Report) -> None:
        reporter = await services.users.load(
            changed.channel, changed.user_id, services.settings.default_locale
        )
        with use_locale(reporter.locale):
            text = _(NOTICES[to]).format(ref=changed.ref, answer=answer or "", other=other_ref)
            rows = closed_buttons(changed, True) if to in CLOSED else []
            rows.append([Button("report:mine", _("Phản ánh của tôi"))])
        await _tell(ctx, conn, changed.channel, changed.user_id, Reply(text, rows), notices)
        await _tell_followers(ctx, conn, changed, answer, notices)

    moved = await services.reports.move(
        report_id,
        to,
        official.principal,
        list(official.communes),
        notify,
        answer=answer,
        evidence_photo=photo,
        duplicate_of=other,
    )
    if moved is None:
        report = await services.reports.get(report_id)
        if report is None:
            raise StalePayload(f"no report {report_id}")
        if not official.covers(report.commune_code):
            return await not_allowed(ctx)
        return Reply(
            _("{ref} đang ở trạng thái “{state}”, không chuyển được.").format(
                ref=report.ref, state=state_name(report.state)
            ),
            [[Button("report:queue", _("Xử lý tiếp"))]],
        )
    services.notifier.kick(*notices)
    return Reply(
        _("{ref}: đã chuyển sang “{state}”; người phản ánh đã được báo.").format(
            ref=moved.ref, state=state_name(to)
        ),
        [[Button("report:queue", _("Xử lý tiếp"))]],
    )


async def _tell(
    ctx: Context,
    conn: AsyncConnection,
    channel: str,
    user_id: str,
    reply: Reply,
    notices: list[Notice],
) -> None:
    claim = ctx.services.notifier.claim_until(channel, user_id)
    notices.append(await enqueue(conn, channel, user_id, reply, claim_until=claim))


async def _tell_followers(
    ctx: Context, conn: AsyncConnection, changed: Report, answer: str | None, notices: list[Notice]
) -> None:
    """Those who said "Đúng việc này" to this report hear of each change, in their language."""
    services = ctx.services
    for channel, user_id in await ReportStore.followers(conn, changed.id):
        follower = await services.users.load(channel, user_id, services.settings.default_locale)
        with use_locale(follower.locale):
            text = _(FOLLOWED).format(ref=changed.ref, state=state_name(changed.state))
            if answer and changed.state in CLOSED:
                text += "\n" + _("Xã trả lời: {answer}").format(answer=answer)
            reply = Reply(text, [[Button("report:mine", _("Phản ánh của tôi"))]])
        await _tell(ctx, conn, channel, user_id, reply, notices)


@router.button(MarkSpam, official=True)
async def mark_spam(ctx: Context) -> Reply:
    """Spam asked first: it closes the report, hides it and counts against the sender."""
    found = await _target(ctx, ctx.payload.id)
    if isinstance(found, Reply):
        return found
    ctx.user.enter(SPAM_ASK, id=found.id, ref=found.ref)
    return await ask_spam(ctx)


async def ask_spam(ctx: Context) -> Reply:
    """Is it spam? (a typed "đúng" or "không" answers)."""
    data = ctx.user.state_data
    return Reply(
        _(
            "Đánh dấu {ref} là tin rác? Phản ánh sẽ đóng, không tính vào số liệu công khai, "
            "và tính vào người gửi."
        ).format(ref=data["ref"]),
        [
            [
                Button(ConfirmSpam(int(data["id"])).pack(), _("Đúng, tin rác")),
                Button("report:spamno", _("Không")),
            ]
        ],
    )


# Not bound: the confirmation's button means what it says even after the step was left.
router.add_step(
    Step(
        SPAM_ASK,
        ask=ask_spam,
        buttons=("report:spamok", "report:spamno"),
        yes="report:spamok",
        no="report:spamno",
        bound=False,
        official=True,
    )
)


@router.button(ConfirmSpam, official=True)
async def confirm_spam(ctx: Context) -> Reply:
    """Spam: closed and hidden from the public figures; it counts against the sender."""
    found = await _target(ctx, ctx.payload.id)
    if isinstance(found, Reply):
        return found
    if ctx.user.state == SPAM_ASK:
        ctx.user.leave()
    return await _move(ctx, found.id, SPAM)


@router.button("report:spamno", official=True)
async def not_spam(ctx: Context) -> Reply | list[Reply]:
    """Not spam after all: back to the queue."""
    if ctx.user.state == SPAM_ASK:
        ctx.user.leave()
    return await queue(ctx)


@router.button(Reassign, official=True)
async def reassign(ctx: Context) -> Reply:
    """A province official's correction: which commune the report belongs to."""
    found = await _target(ctx, ctx.payload.id)
    if isinstance(found, Reply):
        return found
    if not ctx.official.whole_province:
        return await not_allowed(ctx)
    ctx.user.enter(COMMUNE, id=found.id, ref=found.ref)
    return await ask_commune_of(ctx)


async def ask_commune_of(ctx: Context) -> Reply:
    """Which commune a report goes to, by its name (old names and no marks understood)."""
    return Reply(
        _("{ref} chuyển cho xã nào? Gõ tên xã, ví dụ: Nghĩa Tá.").format(
            ref=ctx.user.state_data["ref"]
        ),
        [[Button("menu:main", _("Hủy"))]],
    )


def _commune(text: str, ctx: Context) -> str | None:
    result = ctx.services.areas.search(text)
    if result.meant is not None:
        return result.meant.code
    names = ", ".join(c.name for c in result.communes[:5])
    if names:
        raise Unfit(_("Tên này có thể là: {names}. Gõ rõ hơn một chút.").format(names=names))
    raise Unfit(_("Mình không tìm thấy xã “{name}” trong tỉnh.").format(name=text.strip()[:50]))


@router.step(COMMUNE, ask=ask_commune_of, parse=_commune, official=True)
async def commune_typed(ctx: Context) -> Reply:
    """The report moved to that commune; the reporter is told."""
    report_id = int(ctx.user.state_data["id"])
    ctx.user.leave()
    services, official = ctx.services, ctx.official
    target = services.reference.communes[str(ctx.value)]
    notices: list[Notice] = []

    async def notify(conn: AsyncConnection, changed: Report) -> None:
        reporter = await services.users.load(
            changed.channel, changed.user_id, services.settings.default_locale
        )
        with use_locale(reporter.locale):
            text = _("Phản ánh {ref} của bạn đã được chuyển cho {commune} xử lý.").format(
                ref=changed.ref, commune=target.name
            )
            reply = Reply(text, [[Button("report:mine", _("Phản ánh của tôi"))]])
        await _tell(ctx, conn, changed.channel, changed.user_id, reply, notices)
        await tell_officials(ctx, conn, changed, notices)  # new to that commune's officials

    moved = await services.reports.reassign(
        report_id, target.code, official.principal, list(official.communes), notify
    )
    if moved is None:
        return Reply(
            _("Không chuyển được: phản ánh đã đóng, hoặc đã ở {commune}.").format(
                commune=target.name
            ),
            [[Button("report:queue", _("Xử lý tiếp"))]],
        )
    services.notifier.kick(*notices)
    return Reply(
        _("{ref}: đã chuyển cho {commune}; người phản ánh đã được báo.").format(
            ref=moved.ref, commune=target.name
        ),
        [[Button("report:queue", _("Xử lý tiếp"))]],
    )


@router.button(Receive, official=True)
async def receive(ctx: Context) -> Reply:
    """Received: the commune has seen it."""
    return await _move(ctx, ctx.payload.id, RECEIVED)


@router.button(Work, official=True)
async def work(ctx: Context) -> Reply:
    """In progress."""
    return await _move(ctx, ctx.payload.id, IN_PROGRESS)


@router.button(Close, official=True)
async def close(ctx: Context) -> Reply:
    """Closing: asks for the written answer (and, for a duplicate, the other report's code)."""
    found = await _target(ctx, ctx.payload.id)
    if isinstance(found, Reply):
        return found
    if found.state not in OPEN:
        return Reply(
            _("{ref} đã đóng rồi.").format(ref=found.ref),
            [[Button("report:queue", _("Xử lý tiếp"))]],
        )
    step = DUPLICATE_OF if ctx.payload.how == DUPLICATE else ANSWER
    ctx.user.enter(
        step, id=found.id, ref=found.ref, how=ctx.payload.how, commune=found.commune_code
    )
    return await ask(ctx)


async def ask(ctx: Context) -> Reply:
    """The question of the closing step the official is at."""
    data = ctx.user.state_data
    cancel = [[Button("menu:main", _("Hủy"))]]
    if ctx.user.state == DUPLICATE_OF:
        return Reply(
            _("{ref} trùng với phản ánh nào? Gõ mã, ví dụ PA-26-00012.").format(ref=data["ref"]),
            cancel,
        )
    text = _(ASK_ANSWER[data["how"]]).format(ref=data["ref"], other=data.get("other_ref", ""))
    if data["how"] == RESOLVED:
        text += " " + _("Gửi kèm ảnh kết quả nếu có (chú thích là câu trả lời).")
    return Reply(text, cancel)


def _other(text: str, ctx: Context) -> int | None:
    report_id = parse_ref(text)
    if report_id is None:
        raise Unfit(_("Mã phản ánh có dạng PA-26-00012."), weak=True)
    if report_id == ctx.user.state_data["id"]:
        raise Unfit(_("Đây là chính phản ánh này; gõ mã của phản ánh kia."))
    return report_id


@router.step(DUPLICATE_OF, ask=ask, parse=_other, keeps=True, official=True)
async def other_typed(ctx: Context) -> Reply:
    """The report this one repeats: one of the same commune."""
    other = await ctx.services.reports.get(ctx.value)
    if other is None or other.commune_code != ctx.user.state_data["commune"]:
        return Reply(
            _("Không tìm thấy phản ánh {ref} của xã này.").format(
                ref=ref_of(ctx.value, ctx.services.clock.utcnow())
            ),
            [[Button("menu:main", _("Hủy"))]],
        )
    ctx.user.state_data |= {"other": other.id, "other_ref": other.ref}
    ctx.user.state = ANSWER
    return await ask(ctx)


def _answer(text: str, ctx: Context) -> str | None:
    """A written answer: a few words at least (a lone "ok" tells the villager nothing)."""
    answer = text.strip()
    if len(answer) < 5 or len(answer.split()) < 2 or not any(ch.isalpha() for ch in answer):
        raise Unfit(_("Cần một câu trả lời viết rõ cho người dân, ít nhất vài chữ."))
    return answer[:1000]


@router.step(ANSWER, ask=ask, parse=_answer, photos=True, keeps=True, official=True, free=True)
async def answer_typed(ctx: Context) -> Reply:
    """The answer (with a photo of the result, for a resolved report); then the change."""
    data = ctx.user.state_data
    if ctx.event.photo:
        if data["how"] != RESOLVED:
            return await ask(ctx)
        data["photo"] = ctx.event.photo
        if not ctx.text.strip():
            return await ask(ctx)  # the photo is kept; the answer is still to be written
        try:
            ctx.value = _answer(ctx.text, ctx)
        except Unfit as unfit:
            return Reply(unfit.message + "\n" + (await ask(ctx)).text)
    report_id, how = int(data["id"]), str(data["how"])
    photo, other = data.get("photo"), data.get("other")
    ctx.user.leave()
    return await _move(ctx, report_id, how, answer=str(ctx.value), photo=photo, other=other)
