"""Dân làm: a villager registers a contribution or pledge to a campaign of their commune.

The draft lives in the conversation state until the villager confirms; only then is anything
recorded, once, keyed by the draft's id so that a replayed confirmation records nothing new.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

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
from bot.domain.amounts import Amount, AmountError, Kind, find_amount, is_amount_word, parse_amount
from bot.domain.dates import parse_when
from bot.domain.i18n import N_, _, fmt_date
from bot.domain.quantities import kind_name, spell
from bot.domain.text import fold
from bot.storage.contributions import Campaign, Contribution, NewContribution
from handlers.common import ask_commune, example_day
from handlers.menu import with_menu

router = Router("contributions")

# The steps of a pledge, in the order they are asked; the draft lives in the step's data.
CAMPAIGN, VILLAGE, KIND, AMOUNT = (
    "contrib:campaign",
    "contrib:village",
    "contrib:kind",
    "contrib:amount",
)
WHEN, PUBLIC, NAME, CONFIRM = "contrib:when", "contrib:public", "contrib:name", "contrib:confirm"
EXAMPLES = {
    "money": N_("Ví dụ: 500k, 2 triệu, 1,5 tr, 1.500.000đ"),
    "workdays": N_("Ví dụ: 3 ngày công, 0,5 ngày"),
    "land": N_("Ví dụ: 200 m2, 0,5 ha"),
    "materials": N_("Ví dụ: 5 bao xi măng, 2 xe cát"),
}
# Words for a kind typed at "bạn muốn góp gì?" (folded).
KIND_WORDS = {
    "money": {"tien", "tien mat", "money", "cash", "gop tien"},
    "workdays": {
        "ngay cong",
        "cong",
        "cong lao dong",
        "suc",
        "workdays",
        "labour",
        "labor",
        "work",
    },
    "land": {"dat", "hien dat", "land"},
    "materials": {"vat lieu", "vat tu", "xi mang", "cat", "da", "gach", "materials"},
}
# Words in a sentence that say the kind without doubt ("đất" folds like "đạt", "công" is in
# "công trình": not these).
_KIND_IN_SENTENCE = {
    "money": ("tien",),
    "workdays": ("ngay cong", "cong lao dong"),
    "land": ("hien dat",),
    "materials": ("vat lieu", "vat tu", "xi mang"),
}


def _kind_named_in(text: str) -> str | None:
    """The one kind a sentence names ("góp tiền làm đường" → money), or None."""
    words = f" {fold(text)} "
    named = {
        k for k, phrases in _KIND_IN_SENTENCE.items() if any(f" {p} " in words for p in phrases)
    }
    return named.pop() if len(named) == 1 else None


_NUMBERISH = re.compile(r"[0-9]")
_TAKING_BACK = {"huy", "rut", "xoa", "bo", "cancel", "withdraw", "delete", "remove"}


@dataclass(frozen=True)
class PickCampaign(Payload, prefix="contrib:camp"):
    id: int


@dataclass(frozen=True)
class PickVillage(Payload, prefix="contrib:vil"):
    index: int


@dataclass(frozen=True)
class PickKind(Payload, prefix="contrib:kind"):
    kind: Literal["workdays", "land", "money", "materials"]


@dataclass(frozen=True)
class PickWhen(Payload, prefix="contrib:when"):
    when: Literal["now", "week"]


@dataclass(frozen=True)
class PickPublic(Payload, prefix="contrib:public"):
    show: Literal["no", "yes"]


@dataclass(frozen=True)
class ConfirmDraft(Payload, prefix="contrib:ok"):
    draft: str


def _gives_something(ctx: Context) -> float | None:
    """ "nhà tôi góp 3 công", "pledge 2 workdays": a sentence with an amount is a pledge."""
    words = fold(ctx.text).split()
    if not _NUMBERISH.search(ctx.text) and not any(map(is_amount_word, words)):
        return None  # no digit, no unit or multiplier: no amount (and no cost to look)
    if _TAKING_BACK & set(words):
        return None  # "hủy cái 2 triệu rưỡi" takes a pledge back: never a new one
    return 93.0 if find_amount(ctx.text) is not None else None


def limit_for(ctx: Context, kind: str) -> int:
    settings = ctx.services.settings
    return {
        "workdays": settings.limit_workdays * 2,  # stored in half-days
        "land": settings.limit_land_m2,
        "money": settings.limit_money,
        "materials": settings.limit_materials,
    }[kind]


def _draft(ctx: Context) -> dict[str, Any]:
    draft: dict[str, Any] = ctx.user.state_data.setdefault("draft", {})
    return draft


def _in_range(ctx: Context, when: date) -> bool:
    today = ctx.services.today()
    return today <= when <= today + timedelta(days=366)


def _fill_from_text(ctx: Context, draft: dict[str, Any], text: str) -> str | None:
    """Take what a sentence says (amount, date); returns a problem message, if any."""
    amount = find_amount(text)
    problem = None
    if amount is not None and "kind" not in draft:
        draft["kind"] = str(amount.kind)
        problem = _accept(ctx, draft, amount)
    elif amount is None and "kind" not in draft and (named := _kind_named_in(text)) is not None:
        draft["kind"] = named  # "tôi muốn góp tiền làm đường": money, asked how much next
    when = parse_when(text, ctx.services.today())
    if when is not None and _in_range(ctx, when):
        draft["due_on"] = when.isoformat()
    return problem


def _problem(ctx: Context, amount: Amount) -> str | None:
    if amount.kind == Kind.MATERIALS and not amount.description:
        return _("Bạn góp vật liệu gì? {example}").format(example=_(EXAMPLES["materials"]))
    if amount.value > limit_for(ctx, str(amount.kind)):
        return _("{amount} là quá nhiều cho một lần đăng ký. Bạn kiểm tra lại nhé.").format(
            amount=spell(str(amount.kind), amount.value, amount.quantity_text, amount.description)
        )
    return None


def _accept(ctx: Context, draft: dict[str, Any], amount: Amount) -> str | None:
    """Put the amount in the draft unless it is absurd; returns the problem, if any."""
    problem = _problem(ctx, amount)
    if problem is None:
        draft.update(amount=amount.value, unit=amount.quantity_text, description=amount.description)
    return problem


@router.command("dongop", "contribute", description=N_("Đóng góp cho phong trào của xã"))
@router.button("contrib:start")
@router.intent("contribute", recognize=_gives_something)
async def start(ctx: Context) -> Reply | list[Reply]:
    """Starts a contribution; a sentence may already say what and how much."""
    if ctx.services.areas.get(ctx.user.commune_code or "") is None:
        return ask_commune(ctx, then="contrib:start")
    ctx.user.enter(CAMPAIGN, draft={"id": uuid.uuid4().hex[:16]})
    problem = None
    if ctx.event.button is None and not ctx.text.startswith("/"):
        problem = _fill_from_text(ctx, _draft(ctx), ctx.text)
    replies = [Reply(problem)] if problem else []
    return [*replies, *(await next_step(ctx))]


async def _campaigns(ctx: Context) -> list[Campaign]:
    code = ctx.user.commune_code or ""
    return await ctx.services.campaigns.open_in(code, ctx.services.today())


def _at(ctx: Context, step: str) -> None:
    ctx.user.state = step  # the draft stays in the step's data


async def next_step(ctx: Context) -> list[Reply]:
    """Ask for the first thing the draft still lacks, or show the confirmation screen."""
    draft = _draft(ctx)
    campaign = await ctx.services.campaigns.get(draft["campaign"]) if "campaign" in draft else None
    if campaign is None:
        open_now = await _campaigns(ctx)
        if not open_now:
            ctx.user.leave()
            return [with_menu(_("Xã của bạn hiện chưa có cuộc vận động nào đang nhận đóng góp."))]
        if len(open_now) > 1:
            _at(ctx, CAMPAIGN)
            buttons = [[Button(PickCampaign(c.id).pack(), c.name)] for c in open_now[:8]]
            return [Reply(_("Bạn muốn góp cho phong trào, công trình nào?"), buttons)]
        campaign = open_now[0]
        draft["campaign"] = campaign.id
    if campaign.villages and "village" not in draft:
        _at(ctx, VILLAGE)
        buttons = [[Button(PickVillage(i).pack(), v)] for i, v in enumerate(campaign.villages)]
        return [
            Reply(_("{campaign}: bạn ở thôn, bản nào?").format(campaign=campaign.name), buttons)
        ]
    if draft.get("kind") not in campaign.kinds:
        draft.pop("kind", None)
        draft.pop("amount", None)
        if len(campaign.kinds) > 1:
            _at(ctx, KIND)
            draft["kinds"] = list(campaign.kinds)
            buttons = [[Button(PickKind(k).pack(), kind_name(k))] for k in campaign.kinds]  # type: ignore[arg-type]
            return [
                Reply(_("{campaign}: bạn muốn góp gì?").format(campaign=campaign.name), buttons)
            ]
        draft["kind"] = campaign.kinds[0]
    if "amount" not in draft:
        _at(ctx, AMOUNT)
        return [Reply(_("Bạn góp bao nhiêu? {example}").format(example=_(EXAMPLES[draft["kind"]])))]
    if "due_on" not in draft and not draft.get("now"):
        _at(ctx, WHEN)
        return [
            Reply(
                _("Khi nào bạn góp? Chọn, hoặc gõ ngày (ví dụ {example}).").format(
                    example=example_day(ctx)
                ),
                [
                    [
                        Button(PickWhen("now").pack(), _("Ngay bây giờ")),
                        Button(PickWhen("week").pack(), _("Tuần sau")),
                    ]
                ],
            )
        ]
    if "show_name" not in draft:
        _at(ctx, PUBLIC)
        name = ctx.event.display_name
        return [
            Reply(
                _(
                    "Khi công khai, đóng góp của bạn ghi là “Một hộ dân”. "
                    "Bạn có muốn hiện tên không?"
                ),
                [
                    [Button(PickPublic("no").pack(), _("Không, để ẩn danh"))],
                    [
                        Button(
                            PickPublic("yes").pack(),
                            _("Hiện tên: {name}").format(name=name) if name else _("Hiện tên tôi"),
                        )
                    ],
                ],
            )
        ]
    if draft["show_name"] and not draft.get("name"):
        _at(ctx, NAME)
        return [Reply(_("Bạn muốn hiện tên là gì?"))]
    _at(ctx, CONFIRM)
    return [confirmation(campaign, draft, await _same_as_before(ctx, campaign, draft))]


async def _same_as_before(
    ctx: Context, campaign: Campaign, draft: dict[str, Any]
) -> Contribution | None:
    """A pledge of the same thing to the same campaign, still registered, from the last week:
    the confirmation says so (nine identical pledges were taken without a word)."""
    since = ctx.services.clock.utcnow() - timedelta(days=7)
    for c in await ctx.services.contributions.of_user(ctx.event.channel, ctx.event.user_id):
        if (
            c.campaign_id == campaign.id
            and c.status == "registered"
            and (c.kind, c.amount, c.unit, c.description)
            == (draft["kind"], draft["amount"], draft.get("unit"), draft.get("description"))
            and c.created_at >= since
        ):
            return c
    return None


def confirmation(
    campaign: Campaign, draft: dict[str, Any], same: Contribution | None = None
) -> Reply:
    lines = [
        _("Bạn đăng ký góp {amount} cho “{campaign}”.").format(
            amount=spell(
                draft["kind"], draft["amount"], draft.get("unit"), draft.get("description")
            ),
            campaign=campaign.name,
        )
    ]
    if draft.get("village"):
        lines.append(_("Thôn: {village}").format(village=draft["village"]))
    if draft.get("due_on"):
        lines.append(
            _("Hẹn ngày: {date}").format(date=fmt_date(date.fromisoformat(draft["due_on"])))
        )
    lines.append(
        _("Hiện tên: {name}").format(name=draft["name"])
        if draft["show_name"]
        else _("Công khai: ẩn danh")
    )
    if same is not None:
        lines.append(
            _(
                "Lưu ý: bạn đã đăng ký đúng như vậy ({ref}). Bấm “Đúng” sẽ ghi thêm một lần nữa."
            ).format(ref=same.ref)
        )
    lines.append(_("Đúng không?"))
    return Reply(
        "\n".join(lines),
        [
            [Button(ConfirmDraft(draft["id"]).pack(), _("Đúng, ghi nhận"))],
            [Button("contrib:redo", _("Sửa lại")), Button("menu:main", _("Hủy"))],
        ],
    )


def amount_problem(code: str, kind: str | None) -> str:
    """A clear message with an example for a bad amount."""
    example = _(EXAMPLES[kind]) if kind in EXAMPLES else _(EXAMPLES["money"])
    messages = {
        "zero": _("Số lượng phải lớn hơn 0."),
        "negative": _("Số lượng không thể là số âm."),
        "mixed": _("Mỗi lần bạn chỉ đăng ký một thứ, ví dụ chỉ tiền hoặc chỉ ngày công."),
        "wrong_kind": _("Số này không đúng loại bạn đã chọn ({kind}).").format(
            kind=kind_name(kind) if kind else ""
        ),
    }
    return "{} {}".format(messages.get(code, _("Mình chưa hiểu số lượng này.")), example)


def _amount(text: str, ctx: Context) -> Amount | None:
    """The amount of the kind asked; None when the text is no amount at all (a question)."""
    kind = Kind(_draft(ctx)["kind"])
    try:
        amount = parse_amount(text, expect=kind)
    except AmountError as error:
        weak = error.code == "unparseable" and not _NUMBERISH.search(text)
        raise Unfit(amount_problem(error.code, str(kind)), weak=weak) from None
    if kind == Kind.MONEY and amount.value < 1000 and not _SAYS_DONG.search(fold(text)):
        # "2" or "năm trăm" alone: 2 triệu or 500 nghìn is meant far more often than đồng
        raise Unfit(
            _("{n} đồng thôi ạ? Bạn gõ kèm đơn vị nhé, ví dụ: {n} nghìn, {n} triệu.").format(
                n=amount.value
            )
        )
    problem = _problem(ctx, amount)
    if problem is not None:
        raise Unfit(problem)
    return amount


_SAYS_DONG = re.compile(r"\b(?:d|dong|vnd|vnđ)\b")
_BARE_NUMBER = re.compile(r"^\s*\d{1,3}(?:[.,]\d{3})+\s*$|^\s*\d{4,}\s*$")


def _kind(text: str, ctx: Context) -> Amount | str | None:
    """A kind by name ("tiền"), or an amount that says its kind ("2 triệu") at once."""
    campaign_kinds = _draft(ctx).get("kinds") or list(KIND_WORDS)
    folded = fold(text)
    for kind, words in KIND_WORDS.items():
        if folded in words:
            return kind
    amount = find_amount(text)
    if amount is None and _BARE_NUMBER.match(text) and "money" in campaign_kinds:
        # "500.000" or "1,000,000" asked what to give: a sum of money
        try:
            amount = parse_amount(text, expect=Kind.MONEY)
        except AmountError:
            amount = None
    if amount is not None and str(amount.kind) in campaign_kinds:
        problem = _problem(ctx, amount)
        if problem is not None:
            raise Unfit(problem)
        return amount
    return None


def _when(text: str, ctx: Context) -> date | None:
    when = parse_when(text, ctx.services.today())
    if when is None or not _in_range(ctx, when):
        raise Unfit(
            _("Bạn gõ ngày theo kiểu {example}, trong vòng một năm tới.").format(
                example=example_day(ctx)
            ),
            weak=when is None and not _NUMBERISH.search(text),
        )
    return when


ANONYMOUS = ""  # "không" typed at the name step: shown as "Một hộ dân" after all


def _name(text: str, ctx: Context) -> str | None:
    """A name to show ("Dũng" and "Huy" are names); "không" or "ẩn danh" keeps it anonymous;
    a yes, a number or an emoji is no name, so the question is asked again."""
    typed = text.strip()
    if not typed:
        return None
    understanding = ctx.services.understanding
    # "dung" typed bare here is as likely Dũng as đúng: a name, as a name it stays.
    answer = None if understanding.bare_ambiguous(typed) else understanding.yes_no(typed)
    if answer == "no" or fold(typed) in ("khong can", "an danh", "de an danh"):
        return ANONYMOUS
    if answer == "yes" or not any(ch.isalpha() for ch in typed):
        raise Unfit(_("Bạn gõ tên muốn hiện, ví dụ: Chị Lan. Gõ “không” để ẩn danh."))
    return typed[:60]


async def ask(ctx: Context) -> list[Reply]:
    """Any step of the pledge, asked again (with its buttons)."""
    return await next_step(ctx)


STEP_OPTIONS: dict[str, Any] = {"ask": ask, "keeps": True}


# A campaign and a village are chosen by their button, its number or its name typed.
router.add_step(Step(CAMPAIGN, buttons=("contrib:camp",), **STEP_OPTIONS))
router.add_step(Step(VILLAGE, buttons=("contrib:vil",), **STEP_OPTIONS))


@router.step(KIND, buttons=("contrib:kind",), parse=_kind, **STEP_OPTIONS)
async def kind_typed(ctx: Context) -> list[Reply]:
    """A kind by name, or an amount that says its kind."""
    draft = _draft(ctx)
    if isinstance(ctx.value, Amount):
        draft["kind"] = str(ctx.value.kind)
        _accept(ctx, draft, ctx.value)
    else:
        draft["kind"] = ctx.value
    return await next_step(ctx)


@router.step(AMOUNT, parse=_amount, **STEP_OPTIONS)
async def amount_typed(ctx: Context) -> list[Reply]:
    """How much: "2 triệu", "hai triệu", "3 ngày công", "1 buổi", "5 bao xi măng"."""
    _accept(ctx, _draft(ctx), ctx.value)
    return await next_step(ctx)


@router.step(WHEN, buttons=("contrib:when",), parse=_when, **STEP_OPTIONS)
async def when_typed(ctx: Context) -> list[Reply]:
    """A day: "15/12", "mai", "thứ bảy"; "hôm nay", "bây giờ" are now."""
    if ctx.value == ctx.services.today():
        _draft(ctx)["now"] = True
    else:
        _draft(ctx)["due_on"] = ctx.value.isoformat()
    return await next_step(ctx)


def _shown_name(text: str, ctx: Context) -> str | None:
    """A name typed where the bot asks whether to show one ("Dũng"): show it, as typed."""
    words = text.split()
    if not 1 <= len(words) <= 4 or not all(w.isalpha() for w in words):
        return None
    if ctx.services.understanding.is_question(text):
        return None
    return text.strip()[:60]


@router.step(
    PUBLIC,
    buttons=("contrib:public",),
    yes="contrib:public:yes",
    no="contrib:public:no",
    parse=_shown_name,
    **STEP_OPTIONS,
)
async def public_typed(ctx: Context) -> list[Reply]:
    """A name typed instead of yes: shown with that name (the confirmation shows it)."""
    draft = _draft(ctx)
    draft["show_name"] = True
    draft["name"] = ctx.value
    return await next_step(ctx)


@router.step(NAME, parse=_name, **STEP_OPTIONS)
async def name_typed(ctx: Context) -> list[Reply]:
    """The name to show ("Dũng", "Huy" included), or anonymous after all."""
    draft = _draft(ctx)
    if ctx.value == ANONYMOUS:
        draft["show_name"] = False
        draft.pop("name", None)
    else:
        draft["name"] = ctx.value
    return await next_step(ctx)


# Confirmed by its button, its number, its label or a yes/no word ("đúng", "ok", "không").
router.add_step(
    Step(
        CONFIRM,
        buttons=("contrib:ok", "contrib:redo"),
        yes="contrib:ok",
        no="contrib:redo",
        **STEP_OPTIONS,
    )
)


@router.button(PickCampaign)
async def pick_campaign(ctx: Context) -> list[Reply]:
    """A campaign chosen from the list."""
    open_ids = {c.id for c in await _campaigns(ctx)}
    if ctx.user.state != CAMPAIGN or ctx.payload.id not in open_ids:
        raise StalePayload(f"campaign {ctx.payload.id} is not open here")
    _draft(ctx)["campaign"] = ctx.payload.id
    return await next_step(ctx)


@router.button(PickVillage)
async def pick_village(ctx: Context) -> list[Reply]:
    """A village chosen from the campaign's list."""
    draft = _draft(ctx) if ctx.user.state == VILLAGE else {}
    campaign = await ctx.services.campaigns.get(draft.get("campaign", -1))
    if campaign is None or not 0 <= ctx.payload.index < len(campaign.villages):
        raise StalePayload(f"village {ctx.payload}")
    draft["village"] = campaign.villages[ctx.payload.index]
    return await next_step(ctx)


@router.button(PickKind)
async def pick_kind(ctx: Context) -> list[Reply]:
    """What the villager gives: workdays, land, money or materials."""
    if ctx.user.state != KIND:
        raise StalePayload(f"kind {ctx.payload}")
    draft = _draft(ctx)
    for key in ("amount", "unit", "description"):
        draft.pop(key, None)
    draft["kind"] = ctx.payload.kind
    return await next_step(ctx)


@router.button(PickWhen)
async def pick_when(ctx: Context) -> list[Reply]:
    """Now, or next week (a typed date works too)."""
    if ctx.user.state != WHEN:
        raise StalePayload(f"when {ctx.payload}")
    draft = _draft(ctx)
    if ctx.payload.when == "now":
        draft["now"] = True
    else:
        today = ctx.services.today()
        draft["due_on"] = (today + timedelta(days=7 - today.weekday())).isoformat()
    return await next_step(ctx)


@router.button(PickPublic)
async def pick_public(ctx: Context) -> list[Reply]:
    """Anonymous (the default) or with the villager's name."""
    if ctx.user.state != PUBLIC:
        raise StalePayload(f"public {ctx.payload}")
    draft = _draft(ctx)
    draft["show_name"] = ctx.payload.show == "yes"
    if draft["show_name"] and ctx.event.display_name:
        draft["name"] = ctx.event.display_name
    return await next_step(ctx)


@router.button("contrib:redo")
async def redo(ctx: Context) -> list[Reply]:
    """Start the draft again from the campaign."""
    ctx.user.enter(CAMPAIGN, draft={"id": uuid.uuid4().hex[:16]})
    return await next_step(ctx)


@router.button(ConfirmDraft)
async def confirm(ctx: Context) -> Reply:
    """Records the confirmed draft once and gives the receipt."""
    draft_id = ctx.payload.draft
    draft = ctx.user.state_data.get("draft", {}) if ctx.user.state == CONFIRM else {}
    key = f"draft:{draft_id}"
    if draft.get("id") != draft_id or "show_name" not in draft:
        # A replayed or late confirmation: the receipt of what was recorded, if anything.
        recorded = await ctx.services.contributions.by_source(*ctx.event.key, key)
        if recorded is None:
            raise StalePayload(f"no draft {draft_id}")
        return await receipt(ctx, recorded, again=True)
    campaign = await ctx.services.campaigns.get(draft["campaign"])
    if campaign is None or not campaign.is_open(ctx.services.today()):
        ctx.user.leave()
        return with_menu(_("Cuộc vận động này đã đóng, không nhận thêm đóng góp."))
    contribution, _created = await ctx.services.contributions.add(
        NewContribution(
            campaign=campaign,
            village=draft.get("village"),
            channel=ctx.event.channel,
            user_id=ctx.event.user_id,
            display_name=draft.get("name"),
            show_name=bool(draft.get("show_name")),
            kind=draft["kind"],
            amount=draft["amount"],
            unit=draft.get("unit"),
            description=draft.get("description"),
            due_on=date.fromisoformat(draft["due_on"]) if draft.get("due_on") else None,
            source_key=key,
        )
    )
    ctx.user.leave()
    return await receipt(ctx, contribution)


async def receipt(ctx: Context, c: Contribution, again: bool = False) -> Reply:
    campaign = await ctx.services.campaigns.get(c.campaign_id)
    lines = [_("Đã ghi nhận trước đó.") if again else _("Cảm ơn bạn! Đã ghi nhận đăng ký.")]
    lines.append(_("Mã biên nhận: {ref}").format(ref=c.ref))
    lines.append(
        _("{amount} cho “{campaign}”.").format(
            amount=spell(c.kind, c.amount, c.unit, c.description),
            campaign=campaign.name if campaign else "?",
        )
    )
    lines.append(_("Cán bộ xã sẽ xác nhận; mình sẽ báo bạn."))
    return Reply(
        "\n".join(lines),
        [[Button("contrib:mine", _("Đóng góp của tôi")), Button("menu:main", _("Menu"))]],
    )
