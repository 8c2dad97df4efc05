"""Dân kiểm tra: a villager reports a problem (category, description, a photo and a location if
they have one, the village) and gets a receipt code (PA-26-00012); the commune's figures. The
reporter follows, rates and reopens reports in handlers/my_reports.py; officials handle them in
handlers/report_desk.py."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

from rapidfuzz import fuzz, process
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.content.reference import Criterion, localized
from bot.core.conversation import Button, Context, Payload, Reply, Router, StalePayload, Step, Unfit
from bot.delivery.notify import Notice, enqueue
from bot.domain.i18n import N_, _, fmt_number, use_locale
from bot.domain.text import fold
from bot.storage.reports import CATEGORIES, NewReport, Report
from handlers.common import ask_commune
from handlers.menu import with_menu
from handlers.status import Dispute, current_set, find_criterion, pressed_criterion

router = Router("reports")
CATEGORY, TEXT, ATTACH = "report:category", "report:text", "report:attach"
VILLAGE, SAME, CONFIRM = "report:village", "report:same", "report:confirm"
SIMILAR = 78  # rapidfuzz token_set_ratio of two folded descriptions: "the same problem"
CATEGORY_NAMES = {
    "roads": N_("Đường giao thông"),
    "power": N_("Điện, chiếu sáng"),
    "water": N_("Nước, thủy lợi"),
    "environment": N_("Môi trường, rác thải"),
    "security": N_("An ninh, trật tự"),
    "services": N_("Trường học, trạm y tế"),
    "money": N_("Đóng góp, tiền công"),
    "criterion": N_("Tiêu chí nông thôn mới"),
    "other": N_("Việc khác"),
}
# Folded words that name a category when typed (or said in the first sentence).
CATEGORY_WORDS = {
    "roads": ("duong", "giao thong", "cau", "sat", "sat lo", "o ga", "ngap duong", "road"),
    "power": ("dien", "den", "den duong", "chieu sang", "bong den", "light", "power"),
    "water": ("nuoc", "thuy loi", "kenh", "muong", "gieng", "water", "irrigation"),
    "environment": ("rac", "moi truong", "o nhiem", "bai rac", "mui hoi", "waste", "garbage"),
    "security": ("an ninh", "trat tu", "trom", "danh nhau", "security", "theft"),
    "services": ("truong", "truong hoc", "tram y te", "y te", "school", "clinic"),
    "money": ("tien", "dong gop", "quy", "thu tien", "money", "fund"),
    "criterion": ("tieu chi", "nong thon moi", "ntm", "criterion"),
    "other": ("khac", "viec khac", "other"),
}
STATE_NAMES = {
    "new": N_("mới"),
    "received": N_("đã tiếp nhận"),
    "in_progress": N_("đang xử lý"),
    "resolved": N_("đã giải quyết"),
    "out_of_scope": N_("không thuộc thẩm quyền"),
    "duplicate": N_("trùng"),
    "declined": N_("không xử lý"),
    "spam": N_("tin rác"),
}


@dataclass(frozen=True)
class PickCategory(Payload, prefix="report:cat"):
    category: Literal[
        "roads",
        "power",
        "water",
        "environment",
        "security",
        "services",
        "money",
        "criterion",
        "other",
    ]


@dataclass(frozen=True)
class PickVillage(Payload, prefix="report:vil"):
    index: int


@dataclass(frozen=True)
class ConfirmReport(Payload, prefix="report:ok"):
    draft: str


@dataclass(frozen=True)
class SameReport(Payload, prefix="report:same"):
    """ "Đúng việc này": the near-duplicate shown is what the villager meant to report."""

    id: int


def category_name(category: str) -> str:
    return _(CATEGORY_NAMES.get(category, CATEGORY_NAMES["other"]))


def state_name(state: str) -> str:
    return _(STATE_NAMES[state])


def guess_category(text: str) -> str | None:
    """The category a sentence names ("đường thôn tôi bị sạt" → roads): the one whose longest
    word found is longest ("đèn đường" is lighting, not a road), then the one named by more
    words ("đường … ra trường bị sạt lở" is a road's, not the school's); None if still tied."""
    words = f" {fold(text)} "
    scores: dict[str, tuple[int, int]] = {}
    for category, keys in CATEGORY_WORDS.items():
        found = [len(key) for key in keys if f" {key} " in words]
        if found:
            scores[category] = (max(found), len(found))
    if not scores:
        return None
    best = max(scores.values())
    winners = [c for c, n in scores.items() if n == best]
    return winners[0] if len(winners) == 1 else None


def _draft(ctx: Context) -> dict[str, Any]:
    draft: dict[str, Any] = ctx.user.state_data.setdefault("draft", {})
    return draft


async def _full(ctx: Context) -> Reply | None:
    """The per-person caps (settings) on open reports and on recent spam marks, kindly said;
    None when under both."""
    settings = ctx.services.settings
    cap = settings.report_max_open
    standing = await ctx.services.reports.standing(*ctx.event.key)
    if standing.open < cap and standing.spam < settings.report_max_spam:
        return None
    ctx.user.leave()
    if standing.spam >= settings.report_max_spam:
        return with_menu(
            _(
                "Một số phản ánh gần đây của bạn bị cán bộ xã đánh dấu là không đúng mục đích, "
                "nên tạm thời bạn chưa gửi được phản ánh mới. Việc gấp, bạn gọi trực tiếp "
                "UBND xã nhé."
            )
        )
    return Reply(
        _(
            "Bạn đang có {n} phản ánh chưa xử lý xong, tối đa là {n}. "
            "Khi xã trả lời, bạn gửi tiếp nhé."
        ).format(n=fmt_number(cap)),
        [[Button("report:mine", _("Phản ánh của tôi")), Button("menu:main", _("Menu"))]],
    )


@router.command("phananh", "report", description=N_("Phản ánh một việc cần xã giải quyết"))
@router.button("report:start")
@router.intent("report")
async def start(ctx: Context) -> Reply | list[Reply]:
    """Starts a report; a sentence may already name its category. `/phananh thongke`: figures."""
    if ctx.args and fold(" ".join(ctx.args)) in ("thongke", "thong ke", "stats"):
        return await figures(ctx)
    if ctx.services.areas.get(ctx.user.commune_code or "") is None:
        return ask_commune(ctx, then="report:start")
    full = await _begin(ctx, {})
    if full is not None:
        return full
    if ctx.event.button is None and not ctx.text.startswith("/"):
        guessed = guess_category(ctx.text)
        if guessed is not None:
            _draft(ctx)["category"] = guessed
            _keep_as_description(ctx)
    return await next_step(ctx)


DESCRIBES = 6  # words: a sentence this long that names its category describes it too


def _keep_as_description(ctx: Context) -> None:
    """ "duong tu ban cuon ra truong bi sat lo mot doan dai": the category and the
    description in one message, so the villager is not asked to type it again."""
    text = ctx.text.strip()
    if len(text.split()) >= DESCRIBES and not ctx.services.understanding.is_question(text):
        _draft(ctx)["description"] = text[:1000]


async def _begin(ctx: Context, draft: dict[str, Any]) -> Reply | None:
    """A new draft (with what is known already), unless a cap says no (that answer, then)."""
    full = await _full(ctx)
    if full is not None:
        return full
    villages = sorted(
        {
            v
            for c in await ctx.services.campaigns.in_commune(ctx.user.commune_code or "")
            for v in c.villages
        }
    )
    ctx.user.enter(CATEGORY, draft={"id": uuid.uuid4().hex[:16], **draft}, villages=villages)
    return None


# --- "Dân kiểm tra" of the numbers: a criterion shown as met, disputed ------------------------

_NOT_MET = (" chua dat", " khong dat", " chua du", " not met", " isn t met", " is not met")


def _disputed(ctx: Context) -> Criterion | None:
    """The criterion named, as typed ("ha tang") or as the matcher reads it ("tc 2")."""
    cset = current_set(ctx)
    as_read = " ".join(ctx.services.understanding.words(ctx.text))
    return find_criterion(fold(ctx.text), cset) or find_criterion(as_read, cset, in_words=False)


def _disputes_a_criterion(ctx: Context) -> float | None:
    """ "toi thay tieu chi so 2 chua dat", "tieu chi giao thong chua dat dau": one criterion
    named, and said not to be met (a question about which ones are not met is not this)."""
    folded = f" {fold(ctx.text)} {' '.join(ctx.services.understanding.words(ctx.text))} "
    if not any(w in folded for w in _NOT_MET) or " nao " in folded or " which " in folded:
        return None
    return 98.0 if _disputed(ctx) is not None else None


@router.button(Dispute)
@router.intent("dispute_criterion", recognize=_disputes_a_criterion)
async def dispute(ctx: Context) -> Reply | list[Reply]:
    """ "Tôi thấy tiêu chí này chưa đạt": a report of the category "an NTM criterion", linked
    to a criterion the commune is shown to have met."""
    commune = ctx.services.areas.get(ctx.user.commune_code or "")
    if commune is None:
        return ask_commune(ctx, then="status:list")
    cset = current_set(ctx)
    criterion: Criterion | None
    if ctx.payload is not None:
        criterion = pressed_criterion(ctx, cset)
    else:
        criterion = _disputed(ctx)
        if criterion is None:
            return with_menu(_("Bạn gõ số tiêu chí, ví dụ: tiêu chí 2 chưa đạt."))
    status = await ctx.services.statuses.commune(cset.id, commune.code)
    entry = status.criteria.get(criterion.number)
    name = _("Tiêu chí {number}: {name}").format(
        number=criterion.number, name=localized(criterion.name)
    )
    if entry is None or not entry.met:
        return Reply(
            _("{criterion} của {commune} đang được ghi là chưa đạt.").format(
                criterion=name, commune=commune.name
            ),
            [
                [Button(PickCategory("criterion").pack(), _("Vẫn phản ánh"))],
                [Button("status:list", _("Tất cả tiêu chí")), Button("menu:main", _("Menu"))],
            ],
        )
    full = await _begin(
        ctx,
        {
            "category": "criterion",
            "criteria_set": cset.id,
            "criterion": criterion.number,
            "criterion_name": name,
        },
    )
    return full or await next_step(ctx)


async def next_step(ctx: Context) -> Reply | list[Reply]:
    """Asks for the first thing the draft lacks, or shows the preview to confirm."""
    draft, data = _draft(ctx), ctx.user.state_data
    cancel = Button("menu:main", _("Hủy"))
    if "category" not in draft:
        ctx.user.state = CATEGORY
        rows = [[Button(PickCategory(c).pack(), category_name(c))] for c in CATEGORIES]  # type: ignore[arg-type]
        return Reply(_("Bạn muốn phản ánh về việc gì?"), [*rows, [cancel]])
    if "description" not in draft and draft.get("criterion_name"):
        ctx.user.state = TEXT
        return Reply(
            _(
                "{criterion} — bạn thấy chưa đạt ở đâu? Mô tả ngắn điều bạn thấy. Ví dụ: Đường "
                "thôn Nà Làng chưa được cứng hóa, mưa là lầy."
            ).format(criterion=draft["criterion_name"]),
            [[cancel]],
        )
    if "description" not in draft:
        ctx.user.state = TEXT
        return Reply(
            _(
                "{category}: bạn mô tả ngắn sự việc, ở đâu, từ bao giờ. Ví dụ: Đường từ thôn "
                "Nà Làng ra trường bị sạt, xe máy không đi được."
            ).format(category=category_name(draft["category"])),
            [[cancel]],
        )
    if not draft.get("attached"):
        ctx.user.state = ATTACH
        ask = _("Bạn có ảnh không? Gửi một ảnh, hoặc bấm Bỏ qua.")
        if ctx.event.channel == "telegram":
            ask = _("Bạn có ảnh không? Gửi một ảnh, và vị trí (📎 → Vị trí) nếu được.")
        got = []
        if draft.get("photo"):
            got.append(_("Đã nhận ảnh."))
        if draft.get("location"):
            got.append(_("Đã nhận vị trí."))
        label = _("Tiếp tục") if got else _("Bỏ qua")
        return Reply(" ".join([*got, ask]), [[Button("report:skip", label)], [cancel]])
    if "village" not in draft:
        ctx.user.state = VILLAGE
        rows = [[Button(PickVillage(i).pack(), v)] for i, v in enumerate(data["villages"])]
        return Reply(
            _("Việc này ở thôn, bản nào? Chọn, gõ tên thôn, hoặc bấm Bỏ qua."),
            [*rows, [Button("report:novil", _("Bỏ qua"))], [cancel]],
        )
    if "same" not in draft:
        same = await _near_duplicate(ctx, draft)
        draft["same"] = same.id if same is not None else None
        if same is not None:
            ctx.user.state = SAME
            return _same_question(same)
    ctx.user.state = CONFIRM
    return [Reply(_("Xem lại phản ánh của bạn:") + "\n" + preview(draft)), _confirmation(draft)]


# --- a near-duplicate of an open report is shown first ----------------------------------------


_READ_AS: dict[str, str] = {}  # description → as the matcher reads it (they never change)


def _read_as(ctx: Context, text: str) -> str:
    said = _READ_AS.get(text)
    if said is None:
        if len(_READ_AS) >= 10_000:
            _READ_AS.clear()
        said = _READ_AS[text] = " ".join(ctx.services.understanding.words(text))
    return said


async def _near_duplicate(ctx: Context, draft: dict[str, Any]) -> Report | None:
    """The open report of the same commune, category (and criterion) and village — a report
    without a village may be any village's — whose description reads most like this one, if
    it is close enough; the villager's own ones too (they may have forgotten they sent it)."""
    village = fold(draft["village"]) if draft.get("village") else None
    candidates = [
        c
        for c in await ctx.services.reports.open_like(
            ctx.user.commune_code or "", draft["category"]
        )
        if c.criterion == draft.get("criterion")
        and not (village and c.village and fold(c.village) != village)
    ]
    best = process.extractOne(
        _read_as(ctx, draft["description"]),
        [_read_as(ctx, c.description) for c in candidates],
        scorer=fuzz.token_set_ratio,
        processor=None,
        score_cutoff=SIMILAR,
    )
    return await ctx.services.reports.get(candidates[best[2]].id) if best else None


def _same_question(r: Report) -> Reply:
    lines = [
        _("Có phải việc này không?"),
        f"{r.ref} · {category_name(r.category)} — {state_name(r.state)}",
        r.description,
    ]
    if r.answer:
        lines.append(_("Xã trả lời: {answer}").format(answer=r.answer))
    return Reply(
        "\n".join(lines),
        [
            [
                Button(SameReport(r.id).pack(), _("Đúng việc này")),
                Button("report:other", _("Việc khác")),
            ],
            [Button("menu:main", _("Hủy"))],
        ],
    )


@router.button(SameReport)
async def same_report(ctx: Context) -> Reply:
    """ "Đúng việc này": no new report; the villager follows the one shown (told its changes)."""
    if ctx.user.state != SAME or _draft(ctx).get("same") != ctx.payload.id:
        raise StalePayload(f"report near-duplicate {ctx.payload.id} outside the flow")
    report = await ctx.services.reports.get(ctx.payload.id)
    if report is None:
        raise StalePayload(f"no report {ctx.payload.id}")
    ctx.user.leave()
    if report.channel == ctx.event.channel and report.user_id == ctx.event.user_id:
        said = _("Đây là phản ánh bạn đã gửi. Mã: {ref}. Mình sẽ báo bạn khi xã trả lời.")
    else:
        await ctx.services.reports.follow(report.id, *ctx.event.key)
        said = _(
            "Cảm ơn bạn! Xã đã có phản ánh này (mã {ref}), mình không gửi thêm. "
            "Mình sẽ báo bạn mỗi khi nó có thay đổi."
        )
    return Reply(
        said.format(ref=report.ref),
        [[Button("report:mine", _("Phản ánh của tôi")), Button("menu:main", _("Menu"))]],
    )


@router.button("report:other")
async def other_report(ctx: Context) -> Reply | list[Reply]:
    """ "Việc khác": on to the preview of the new report."""
    if ctx.user.state != SAME:
        raise StalePayload("report near-duplicate outside the flow")
    _draft(ctx)["same"] = None
    return await next_step(ctx)


async def ask_same(ctx: Context) -> Reply | list[Reply]:
    """The near-duplicate question, asked again (or, if that report is gone, the preview)."""
    shown = _draft(ctx).get("same")
    report = await ctx.services.reports.get(shown) if isinstance(shown, int) else None
    if report is None or not report.is_open:
        _draft(ctx)["same"] = None
        return await next_step(ctx)
    return _same_question(report)


router.add_step(
    Step(
        SAME,
        ask=ask_same,
        buttons=("report:same", "report:other"),
        yes="report:same",
        no="report:other",
        keeps=True,
    )
)


def preview(draft: dict[str, Any]) -> str:
    lines = [_("Loại việc: {category}").format(category=category_name(draft["category"]))]
    if draft.get("criterion_name"):
        lines.append(draft["criterion_name"])
    if draft.get("village"):
        lines.append(_("Thôn: {village}").format(village=draft["village"]))
    lines.append(_("Nội dung: {text}").format(text=draft["description"]))
    if draft.get("photo"):
        lines.append(_("[kèm 1 ảnh]"))
    if draft.get("location"):
        lines.append(_("[kèm vị trí]"))
    return "\n".join(lines)


def _confirmation(draft: dict[str, Any]) -> Reply:
    return Reply(
        _("Gửi phản ánh này cho cán bộ xã? Tên của bạn chỉ cán bộ xã mình xem được."),
        [
            [
                Button(ConfirmReport(draft["id"]).pack(), _("Đúng, gửi")),
                Button("menu:main", _("Hủy")),
            ]
        ],
    )


def _category(text: str, ctx: Context) -> str | None:
    """A category by a word of it ("duong", "rac", "den duong")."""
    return guess_category(text)


def _description(text: str, ctx: Context) -> str | None:
    text = text.strip()
    if not text:
        return None
    if len(text) < 5 or not any(ch.isalpha() for ch in text):
        raise Unfit(_("Bạn viết rõ hơn một chút: việc gì, ở đâu."))
    return text[:1000]


_VILLAGE_WORDS = ("thon ", "ban ", "xom ", "lang ", "to ", "o ")  # "thon ban cuon", "o na lang"


def _village(text: str, ctx: Context) -> str | None:
    """A village typed: one of the commune's, as it is written there ("thon ban cuon" is Bản
    Cuôn), else kept as typed."""
    name = text.strip()
    if not 2 <= len(name) <= 100 or not any(ch.isalpha() for ch in name):
        return None
    if ctx.services.understanding.is_question(name):
        return None
    known = {fold(v): v for v in ctx.user.state_data.get("villages", [])}
    typed = fold(name)
    while typed not in known and typed.startswith(_VILLAGE_WORDS):
        typed = typed.split(" ", 1)[1]
    return known.get(typed, name)


async def ask(ctx: Context) -> Reply | list[Reply]:
    """Any step of the report, asked again (with its buttons)."""
    return await next_step(ctx)


STEP_OPTIONS: dict[str, Any] = {"ask": ask, "keeps": True}


@router.step(CATEGORY, buttons=("report:cat",), parse=_category, **STEP_OPTIONS)
async def category_typed(ctx: Context) -> Reply | list[Reply]:
    """A category typed by a word of it, or named in a sentence that describes the problem."""
    _draft(ctx)["category"] = ctx.value
    _keep_as_description(ctx)
    return await next_step(ctx)


@router.button(PickCategory)
async def pick_category(ctx: Context) -> Reply | list[Reply]:
    """A category pressed (or its number, or its label typed)."""
    if ctx.user.state != CATEGORY:
        if ctx.payload.category != "criterion" or ctx.user.state is not None:
            raise StalePayload("report category outside the flow")
        full = await _begin(ctx, {})  # "Vẫn phản ánh", under a criterion recorded as not met
        if full is not None:
            return full
    _draft(ctx)["category"] = ctx.payload.category
    return await next_step(ctx)


@router.step(TEXT, parse=_description, photos=True, free=True, **STEP_OPTIONS)
async def description_typed(ctx: Context) -> Reply | list[Reply]:
    """The description; a photo with a caption gives both at once."""
    draft = _draft(ctx)
    if ctx.event.photo:
        draft["photo"] = ctx.event.photo
        if not ctx.text.strip():
            return await next_step(ctx)  # the photo is kept; the description is asked again
        ctx.value = ctx.text.strip()[:1000]
    draft["description"] = ctx.value
    return await next_step(ctx)


@router.step(
    ATTACH,
    buttons=("report:skip",),
    no="report:skip",
    photos=True,
    locations=True,
    **STEP_OPTIONS,
)
async def attached(ctx: Context) -> Reply | list[Reply]:
    """A photo or a location; asked again until both came or the villager goes on."""
    draft = _draft(ctx)
    if ctx.event.photo:
        draft["photo"] = ctx.event.photo
    if ctx.event.location:
        draft["location"] = list(ctx.event.location)
    if draft.get("photo") and (draft.get("location") or ctx.event.channel != "telegram"):
        draft["attached"] = True
    return await next_step(ctx)


@router.button("report:skip")
async def skip_attachment(ctx: Context) -> Reply | list[Reply]:
    """No (more) photo or location: on to the village."""
    if ctx.user.state != ATTACH:
        raise StalePayload("report attachment outside the flow")
    _draft(ctx)["attached"] = True
    return await next_step(ctx)


@router.step(VILLAGE, buttons=("report:vil", "report:novil"), parse=_village, **STEP_OPTIONS)
async def village_typed(ctx: Context) -> Reply | list[Reply]:
    """A village typed by its name (one the bot does not know is kept as typed)."""
    _draft(ctx)["village"] = ctx.value
    return await next_step(ctx)


@router.button(PickVillage)
async def pick_village(ctx: Context) -> Reply | list[Reply]:
    """A village of the commune's list."""
    villages = ctx.user.state_data.get("villages", []) if ctx.user.state == VILLAGE else []
    if not 0 <= ctx.payload.index < len(villages):
        raise StalePayload(f"report village {ctx.payload}")
    _draft(ctx)["village"] = villages[ctx.payload.index]
    return await next_step(ctx)


@router.button("report:novil")
async def no_village(ctx: Context) -> Reply | list[Reply]:
    """The village left out."""
    if ctx.user.state != VILLAGE:
        raise StalePayload("report village outside the flow")
    _draft(ctx)["village"] = None
    return await next_step(ctx)


router.add_step(Step(CONFIRM, buttons=("report:ok",), yes="report:ok", **STEP_OPTIONS))


@router.button(ConfirmReport)
async def confirm(ctx: Context) -> Reply | list[Reply]:
    """Records the report once (a replayed confirmation shows the first receipt)."""
    draft = _draft(ctx) if ctx.user.state == CONFIRM else {}
    key = f"draft:{ctx.payload.draft}"
    if draft.get("id") != ctx.payload.draft or "village" not in draft:
        recorded = await ctx.services.reports.by_source(*ctx.event.key, key)
        if recorded is None:
            raise StalePayload(f"no report draft {ctx.payload.draft}")
        return receipt(recorded, again=True)
    location = draft.get("location")
    notices: list[Notice] = []
    report, _created = await ctx.services.reports.add(
        NewReport(
            commune_code=ctx.user.commune_code or "",
            village=draft.get("village"),
            category=draft["category"],
            description=draft["description"],
            photo=draft.get("photo"),
            latitude=location[0] if location else None,
            longitude=location[1] if location else None,
            channel=ctx.event.channel,
            user_id=ctx.event.user_id,
            display_name=ctx.event.display_name,
            source_key=key,
            criteria_set=draft.get("criteria_set"),
            criterion=draft.get("criterion"),
        ),
        max_open=ctx.services.settings.report_max_open,
        max_spam=ctx.services.settings.report_max_spam,
        notify=lambda conn, new: tell_officials(ctx, conn, new, notices),
    )
    if report is None:
        full = await _full(ctx)
        return full or with_menu(_("Mình chưa ghi được phản ánh này."))
    ctx.user.leave()
    ctx.services.notifier.kick(*notices)
    return receipt(report)


async def tell_officials(
    ctx: Context, conn: AsyncConnection, report: Report, notices: list[Notice]
) -> None:
    """One notice per official of the commune, in their language, in the report's transaction
    (a replayed confirmation records no report and so no notice)."""
    services = ctx.services
    commune = services.reference.communes[report.commune_code].name
    for principal in await services.reports.officials_of(conn, report.commune_code):
        channel, _sep, user_id = principal.partition(":")
        official = await services.users.load(channel, user_id, services.settings.default_locale)
        with use_locale(official.locale):
            text = _("Phản ánh mới {ref} ở {commune}: {category}.").format(
                ref=report.ref, commune=commune, category=category_name(report.category)
            )
            reply = Reply(
                f"{text}\n{report.description[:200]}",
                [[Button("report:queue", _("Xử lý phản ánh"))]],
            )
        claim = services.notifier.claim_until(channel, user_id)
        notices.append(await enqueue(conn, channel, user_id, reply, claim_until=claim))


def receipt(report: Report, again: bool = False) -> Reply:
    lines = [_("Đã ghi nhận trước đó.") if again else _("Cảm ơn bạn! Xã đã nhận phản ánh.")]
    lines.append(_("Mã phản ánh: {ref}").format(ref=report.ref))
    lines.append(_("Cán bộ xã sẽ xem và trả lời; mình sẽ báo bạn từng bước."))
    return Reply(
        "\n".join(lines),
        [[Button("report:mine", _("Phản ánh của tôi")), Button("menu:main", _("Menu"))]],
    )


# --- public figures: counts only, nobody can be told apart -----------------------------------


async def figures(ctx: Context) -> Reply:
    """The commune's reports in figures: by category and state, resolved, days, satisfaction."""
    commune = ctx.services.areas.get(ctx.user.commune_code or "")
    if commune is None:
        return ask_commune(ctx, then="report:start")
    f = await ctx.services.reports.figures(commune.code, ctx.services.settings.report_due_days)
    if not f.total:
        return with_menu(_("{commune} chưa có phản ánh nào.").format(commune=commune.name))
    lines = [_("Phản ánh ở {commune}: {n}").format(commune=commune.name, n=fmt_number(f.total))]
    lines += [
        f"• {category_name(c)}: {fmt_number(n)}"
        for c in CATEGORIES
        if (n := f.by_category.get(c, 0))
    ]
    lines.append(
        ", ".join(
            f"{state_name(s)} {fmt_number(n)}" for s in STATE_NAMES if (n := f.by_state.get(s, 0))
        )
    )
    lines.append(
        _("Đã giải quyết: {share}").format(share=fmt_number(100 * f.resolved / f.total) + "%")
    )
    if f.median_days is not None:
        lines.append(
            _("Thời gian giải quyết (trung vị): {days} ngày").format(
                days=fmt_number(f.median_days, 1)
            )
        )
    lines.append(_("Quá hạn: {n}").format(n=fmt_number(f.overdue)))
    if f.rated:
        lines.append(
            _("Hài lòng: {good}/{rated}").format(good=fmt_number(f.good), rated=fmt_number(f.rated))
        )
    return with_menu("\n".join(lines))
