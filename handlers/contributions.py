"""Dân làm: a villager registers a contribution or pledge to a campaign of their commune.

The draft lives in the conversation state until the villager confirms; only then is anything
recorded, once, keyed by the draft's id so that a replayed confirmation records nothing new.
"""

from __future__ import annotations

import re
import uuid
from datetime import date, timedelta
from typing import Any

from bot.amounts import Amount, AmountError, Kind, find_amount, parse_amount
from bot.core import Button, Context, Reply, Router, StalePayload
from bot.i18n import N_, _, fmt_date
from bot.quantities import kind_name, spell
from bot.storage.contributions import Campaign, Contribution, NewContribution
from bot.text import fold
from handlers.common import ask_commune
from handlers.menu import with_menu

router = Router("contributions")

STEP = "contrib:step"
START_WORDS = ("gop", "dong gop", "ung ho", "hien dat", "contribute", "pledge", "donate")
QUESTION_WORDS = ("la gi", "what is", "nhu the nao", "the nao", "o dau")
EXAMPLES = {
    "money": N_("Ví dụ: 500k, 2 triệu, 1,5 tr, 1.500.000đ"),
    "workdays": N_("Ví dụ: 3 ngày công, 0,5 ngày"),
    "land": N_("Ví dụ: 200 m2, 0,5 ha"),
    "materials": N_("Ví dụ: 5 bao xi măng, 2 xe cát"),
}
_DATE = re.compile(r"\b(\d{1,2})\s*[/.-]\s*(\d{1,2})(?:\s*[/.-]\s*(\d{2,4}))?\b")


def _wants_to_contribute(folded: str, ctx: Context) -> bool:
    padded = f" {folded} "
    return any(f" {w} " in padded for w in START_WORDS) and not any(
        q in folded for q in QUESTION_WORDS
    )


def parse_when(text: str, today: date) -> date | None:
    """ "tuần sau", "ngày mai", "15/12" or "15/12/2026" → a date; None if not a date."""
    folded = fold(text)
    if "ngay mai" in folded or "tomorrow" in folded:
        return today + timedelta(days=1)
    if "tuan sau" in folded or "tuan toi" in folded or "next week" in folded:
        return today + timedelta(days=7 - today.weekday())  # next Monday
    if "thang sau" in folded or "thang toi" in folded or "next month" in folded:
        return date(today.year + today.month // 12, today.month % 12 + 1, 1)
    match = _DATE.search(text)
    if not match:
        return None
    day, month, year = int(match[1]), int(match[2]), match[3]
    full_year = int(year) + (2000 if year and len(year) == 2 else 0) if year else today.year
    try:
        when = date(full_year, month, day)
    except ValueError:
        return None
    if not year and when < today:
        when = date(full_year + 1, month, day)
    return when


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


def _fill_from_text(ctx: Context, draft: dict[str, Any], text: str) -> str | None:
    """Take what a sentence says (amount, date); returns a problem message, if any."""
    amount = find_amount(text)
    problem = None
    if amount is not None and "kind" not in draft:
        draft["kind"] = str(amount.kind)
        problem = _accept(ctx, draft, amount)
    when = parse_when(text, ctx.services.today())
    today = ctx.services.today()
    if when is not None and today <= when <= today + timedelta(days=366):
        draft["due_on"] = when.isoformat()
    return problem


def _accept(ctx: Context, draft: dict[str, Any], amount: Amount) -> str | None:
    """Put the amount in the draft unless it is absurd; returns the problem, if any."""
    if amount.kind == Kind.MATERIALS and not amount.description:
        return _("Bạn góp vật liệu gì? {example}").format(example=_(EXAMPLES["materials"]))
    if amount.value > limit_for(ctx, str(amount.kind)):
        return _("{amount} là quá nhiều cho một lần đăng ký. Bạn kiểm tra lại nhé.").format(
            amount=spell(str(amount.kind), amount.value, amount.quantity_text, amount.description)
        )
    draft.update(amount=amount.value, unit=amount.quantity_text, description=amount.description)
    return None


@router.command("dongop", "contribute", description=N_("Đóng góp cho phong trào của xã"))
@router.button("contrib:start")
@router.intent(_wants_to_contribute)
async def start(ctx: Context) -> Reply | list[Reply]:
    """Starts a contribution; a sentence may already say what and how much."""
    if ctx.services.areas.get(ctx.user.commune_code or "") is None:
        return ask_commune(ctx, then="contrib:start")
    ctx.user.enter(STEP, draft={"id": uuid.uuid4().hex[:16]})
    problem = None
    if ctx.event.button is None and not ctx.text.startswith("/"):
        problem = _fill_from_text(ctx, _draft(ctx), ctx.text)
    replies = [Reply(problem)] if problem else []
    return [*replies, *(await next_step(ctx))]


async def _campaigns(ctx: Context) -> list[Campaign]:
    code = ctx.user.commune_code or ""
    return await ctx.services.campaigns.open_in(code, ctx.services.today())


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
            buttons = [[Button(f"contrib:camp:{c.id}", c.name)] for c in open_now[:8]]
            return [Reply(_("Bạn muốn góp cho phong trào, công trình nào?"), buttons)]
        campaign = open_now[0]
        draft["campaign"] = campaign.id
    if campaign.villages and "village" not in draft:
        buttons = [[Button(f"contrib:vil:{i}", v)] for i, v in enumerate(campaign.villages)]
        return [
            Reply(_("{campaign}: bạn ở thôn, bản nào?").format(campaign=campaign.name), buttons)
        ]
    if draft.get("kind") not in campaign.kinds:
        draft.pop("kind", None)
        draft.pop("amount", None)
        if len(campaign.kinds) > 1:
            buttons = [[Button(f"contrib:kind:{k}", kind_name(k))] for k in campaign.kinds]
            return [
                Reply(_("{campaign}: bạn muốn góp gì?").format(campaign=campaign.name), buttons)
            ]
        draft["kind"] = campaign.kinds[0]
    if "amount" not in draft:
        return [Reply(_("Bạn góp bao nhiêu? {example}").format(example=_(EXAMPLES[draft["kind"]])))]
    if "due_on" not in draft and not draft.get("now"):
        return [
            Reply(
                _("Khi nào bạn góp? Chọn, hoặc gõ ngày (ví dụ 15/12)."),
                [
                    [
                        Button("contrib:when:now", _("Ngay bây giờ")),
                        Button("contrib:when:week", _("Tuần sau")),
                    ]
                ],
            )
        ]
    if "show_name" not in draft:
        name = ctx.event.display_name
        return [
            Reply(
                _(
                    "Khi công khai, đóng góp của bạn ghi là “Một hộ dân”. "
                    "Bạn có muốn hiện tên không?"
                ),
                [
                    [Button("contrib:public:no", _("Không, để ẩn danh"))],
                    [
                        Button(
                            "contrib:public:yes",
                            _("Hiện tên: {name}").format(name=name) if name else _("Hiện tên tôi"),
                        )
                    ],
                ],
            )
        ]
    if draft["show_name"] and not draft.get("name"):
        return [Reply(_("Bạn muốn hiện tên là gì?"))]
    return [confirmation(campaign, draft)]


def confirmation(campaign: Campaign, draft: dict[str, Any]) -> Reply:
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
    lines.append(_("Đúng không?"))
    return Reply(
        "\n".join(lines),
        [
            [Button(f"contrib:ok:{draft['id']}", _("Đúng, ghi nhận"))],
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


@router.state(STEP)
async def typed(ctx: Context) -> list[Reply]:
    """Text during the flow: the amount, a date, or a name, whichever is asked now."""
    draft = _draft(ctx)
    if "kind" in draft and "amount" not in draft:
        try:
            amount = parse_amount(ctx.text, expect=Kind(draft["kind"]))
        except AmountError as error:
            return [Reply(amount_problem(error.code, draft["kind"]))]
        problem = _accept(ctx, draft, amount)
        return [Reply(problem)] if problem else await next_step(ctx)
    if "amount" in draft and "due_on" not in draft and not draft.get("now"):
        when = parse_when(ctx.text, ctx.services.today())
        today = ctx.services.today()
        if when is None or not today <= when <= today + timedelta(days=366):
            return [
                Reply(_("Bạn gõ ngày theo kiểu 15/12 hoặc 15/12/2026, trong vòng một năm tới."))
            ]
        draft["due_on"] = when.isoformat()
        return await next_step(ctx)
    if draft.get("show_name") and not draft.get("name"):
        draft["name"] = ctx.text[:60]
        return await next_step(ctx)
    problem = _fill_from_text(ctx, draft, ctx.text)
    return [*([Reply(problem)] if problem else []), *(await next_step(ctx))]


@router.button("contrib:camp")
async def pick_campaign(ctx: Context) -> list[Reply]:
    """A campaign chosen from the list."""
    open_ids = {c.id for c in await _campaigns(ctx)}
    if (
        ctx.user.state != STEP
        or len(ctx.args) != 1
        or not ctx.args[0].isdigit()
        or int(ctx.args[0]) not in open_ids
    ):
        raise StalePayload(f"campaign {ctx.args} is not open here")
    _draft(ctx)["campaign"] = int(ctx.args[0])
    return await next_step(ctx)


@router.button("contrib:vil")
async def pick_village(ctx: Context) -> list[Reply]:
    """A village chosen from the campaign's list."""
    draft = _draft(ctx) if ctx.user.state == STEP else {}
    campaign = await ctx.services.campaigns.get(draft.get("campaign", -1))
    index = int(ctx.args[0]) if ctx.args and ctx.args[0].isdigit() else -1
    if campaign is None or not 0 <= index < len(campaign.villages):
        raise StalePayload(f"village {ctx.args}")
    draft["village"] = campaign.villages[index]
    return await next_step(ctx)


@router.button("contrib:kind")
async def pick_kind(ctx: Context) -> list[Reply]:
    """What the villager gives: workdays, land, money or materials."""
    if ctx.user.state != STEP or len(ctx.args) != 1 or ctx.args[0] not in {k.value for k in Kind}:
        raise StalePayload(f"kind {ctx.args}")
    draft = _draft(ctx)
    for key in ("amount", "unit", "description"):
        draft.pop(key, None)
    draft["kind"] = ctx.args[0]
    return await next_step(ctx)


@router.button("contrib:when")
async def pick_when(ctx: Context) -> list[Reply]:
    """Now, or next week (a typed date works too)."""
    if ctx.user.state != STEP or ctx.args not in (["now"], ["week"]):
        raise StalePayload(f"when {ctx.args}")
    draft = _draft(ctx)
    if ctx.args == ["now"]:
        draft["now"] = True
    else:
        today = ctx.services.today()
        draft["due_on"] = (today + timedelta(days=7 - today.weekday())).isoformat()
    return await next_step(ctx)


@router.button("contrib:public")
async def pick_public(ctx: Context) -> list[Reply]:
    """Anonymous (the default) or with the villager's name."""
    if ctx.user.state != STEP or ctx.args not in (["no"], ["yes"]):
        raise StalePayload(f"public {ctx.args}")
    draft = _draft(ctx)
    draft["show_name"] = ctx.args == ["yes"]
    if draft["show_name"] and ctx.event.display_name:
        draft["name"] = ctx.event.display_name
    return await next_step(ctx)


@router.button("contrib:redo")
async def redo(ctx: Context) -> list[Reply]:
    """Start the draft again from the campaign."""
    ctx.user.enter(STEP, draft={"id": uuid.uuid4().hex[:16]})
    return await next_step(ctx)


@router.button("contrib:ok")
async def confirm(ctx: Context) -> Reply:
    """Records the confirmed draft once and gives the receipt."""
    if len(ctx.args) != 1:
        raise StalePayload(f"confirm {ctx.args}")
    draft = ctx.user.state_data.get("draft", {}) if ctx.user.state == STEP else {}
    key = f"draft:{ctx.args[0]}"
    if draft.get("id") != ctx.args[0] or "show_name" not in draft:
        # A replayed or late confirmation: the receipt of what was recorded, if anything.
        recorded = await ctx.services.contributions.by_source(*ctx.event.key, key)
        if recorded is None:
            raise StalePayload(f"no draft {ctx.args}")
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
