"""Campaigns: everyone sees the tallies; officials open a campaign in chat."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from bot.core.conversation import Button, Context, Payload, Reply, Router, StalePayload, Step, Unfit
from bot.domain.amounts import find_amount, spelled_number
from bot.domain.dates import parse_when
from bot.domain.i18n import N_, _, fmt_date, fmt_number
from bot.domain.quantities import households, kind_name, spell
from bot.domain.text import fold
from bot.storage.contributions import KINDS, Campaign
from handlers.common import ask_commune, commune_of_official, example_day
from handlers.contributions import KIND_WORDS
from handlers.menu import not_allowed, with_menu

router = Router("campaigns")
SKIP_WORDS = {"bo qua", "khong", "skip", "no", "none"}


@dataclass(frozen=True)
class PickTally(Payload, prefix="tally:camp"):
    id: int


def _percent(part: int, whole: int) -> str:
    return fmt_number(100 * part / whole, 0) + "%"


async def tally_text(ctx: Context, campaign: Campaign) -> str:
    services = ctx.services
    tally = await services.contributions.tally(campaign_id=campaign.id)
    villages = {
        v: await services.contributions.tally(campaign_id=campaign.id, village=v)
        for v in campaign.villages
    }
    lines = [campaign.name]
    if campaign.is_sample:
        lines.append("⚠️ " + _("Dữ liệu mẫu — không phải số liệu chính thức."))
    if campaign.ends_on:
        period = f"{fmt_date(campaign.starts_on)} – {fmt_date(campaign.ends_on)}"
    else:
        period = _("từ {date}").format(date=fmt_date(campaign.starts_on))
    lines.append(_("Thời gian: {period}").format(period=period))
    lines.append(_("Đã xác nhận ({households}):").format(households=households(tally.households)))
    for kind in campaign.kinds:
        if kind == "materials":
            for (unit, what), n in sorted(tally.materials.items()):
                lines.append("• " + spell(kind, n, unit, what))
            continue
        got = tally.totals.get(kind, 0)
        target = campaign.targets.get(kind)
        if not got and not target:
            continue
        line = "• " + spell(kind, got, compact=True)
        if target:
            line += " / " + spell(kind, target, compact=True) + f" ({_percent(got, target)})"
        lines.append(line)
    for village, part in villages.items():
        shown = [spell(k, n, compact=True) for k, n in part.totals.items() if k != "materials"]
        if shown:
            lines.append(
                _("Thôn {village}: {totals}").format(village=village, totals=", ".join(shown))
            )
    if tally.pending_count:
        pending = ", ".join(
            [spell(k, n, compact=True) for k, n in tally.pending.items() if k != "materials"]
            + [
                spell("materials", n, unit, what)
                for (unit, what), n in sorted(tally.pending_materials.items())
            ]
        )
        lines.append(
            _("Đang chờ xác nhận: {count} đăng ký ({totals}).").format(
                count=tally.pending_count, totals=pending
            )
        )
    lines.append(_("Chỉ đóng góp đã được cán bộ xác nhận mới được cộng vào tổng."))
    return "\n".join(lines)


@router.command("bangdonggop", "tally", description=N_("Bảng đóng góp của xã"))
@router.button("tally:list")
@router.intent("tally")
async def tallies(ctx: Context) -> Reply | list[Reply]:
    """The campaigns of the user's commune, each with its tally."""
    commune = ctx.services.areas.get(ctx.user.commune_code or "")
    if commune is None:
        return ask_commune(ctx, then="tally:list")
    campaigns = await ctx.services.campaigns.in_commune(commune.code)
    if not campaigns:
        return with_menu(_("{commune} chưa có cuộc vận động nào.").format(commune=commune.name))
    if len(campaigns) == 1:
        return await _one(ctx, campaigns[0])
    return Reply(
        _("Bảng đóng góp của {commune}: chọn cuộc vận động.").format(commune=commune.name),
        [[Button(PickTally(c.id).pack(), c.name)] for c in campaigns[:10]],
    )


async def _one(ctx: Context, campaign: Campaign) -> Reply:
    buttons = [Button("menu:main", _("Menu"))]
    if campaign.is_open(ctx.services.today()):
        buttons.insert(0, Button("contrib:start", _("Đóng góp")))
    return Reply(await tally_text(ctx, campaign), [buttons])


@router.button(PickTally)
async def tally_one(ctx: Context) -> Reply:
    """One campaign's tally."""
    campaign = await ctx.services.campaigns.get(ctx.payload.id)
    if campaign is None:
        raise StalePayload(f"no campaign {ctx.payload.id}")
    return await _one(ctx, campaign)


# --- officials open a campaign in chat ------------------------------------------------------
# Name → kinds → targets → end date → confirm; each a declared step, the answers in its data.
# Every route of the flow is official: the guard checks the grant at each update of it.
NAME, CHOOSE, TARGETS = "camp:name", "camp:kinds", "camp:targets"
END, CONFIRM = "camp:end", "camp:ok"


@dataclass(frozen=True)
class ToggleKind(Payload, prefix="camp:kind"):
    kind: Literal["workdays", "land", "money", "materials"]


@router.command(
    "taophongtrao",
    "newcampaign",
    description=N_("Cán bộ: mở cuộc vận động mới"),
    official=True,
)
async def new_campaign(ctx: Context) -> Reply:
    """Asks an official for the campaign's name, then kinds, targets and end date."""
    code = commune_of_official(ctx)
    if code is None:  # officials of several communes open one in the commune they live in
        return await not_allowed(ctx)
    ctx.user.enter(NAME, commune=code, kinds=[], draft=uuid.uuid4().hex[:12])
    return await ask(ctx)


def _kind_buttons(chosen: list[str]) -> list[list[Button]]:
    rows = [
        [Button(ToggleKind(k).pack(), ("✅ " if k in chosen else "") + kind_name(k))]  # type: ignore[arg-type]
        for k in KINDS
    ]
    return [*rows, [Button("camp:kinds", _("Xong"))]]


async def ask(ctx: Context) -> Reply:
    """The question of the step the official is at (asked again after an unusable answer)."""
    data, state = ctx.user.state_data, ctx.user.state
    if state == NAME:
        return Reply(_("Tên cuộc vận động, công trình? Ví dụ: Bê tông hóa đường thôn Nà Làng"))
    if state == CHOOSE:
        return Reply(_("Nhận những gì? Chọn rồi bấm Xong."), _kind_buttons(data["kinds"]))
    if state == TARGETS:
        return Reply(_("Mục tiêu? Ví dụ: 200 triệu, 500 ngày công — hoặc gõ “bỏ qua”."))
    if state == END:
        return Reply(
            _("Ngày kết thúc? Ví dụ {example}, hoặc gõ “bỏ qua”.").format(
                example=example_day(ctx, days=90, year=True)
            )
        )
    ends_on = date.fromisoformat(data["ends_on"]) if data.get("ends_on") else None
    commune = ctx.services.reference.communes[data["commune"]]
    targets_text = ", ".join(spell(k, n) for k, n in data["targets"].items()) or "—"
    return Reply(
        _(
            "Mở “{name}” ở {commune}; nhận: {kinds}; mục tiêu: {targets}; đến: {end}. Đúng không?"
        ).format(
            name=data["name"],
            commune=commune.name,
            kinds=", ".join(kind_name(k) for k in data["kinds"]),
            targets=targets_text,
            end=fmt_date(ends_on) if ends_on else "—",
        ),
        [[Button("camp:ok", _("Đúng, mở")), Button("menu:main", _("Hủy"))]],
    )


def _skip(text: str) -> bool:
    return fold(text) in SKIP_WORDS


def _targets(text: str, ctx: Context) -> dict[str, int] | None:
    if _skip(text):
        return {}
    targets: dict[str, int] = {}
    for part in re.split(r"[;,\n]| va | và | and ", text):
        amount = find_amount(part)
        if amount is not None and str(amount.kind) in ctx.user.state_data["kinds"]:
            targets[str(amount.kind)] = amount.value
    if not targets:
        raise Unfit(
            _("Mình chưa hiểu mục tiêu. Ví dụ: 200 triệu, 500 ngày công — hoặc gõ “bỏ qua”.")
        )
    return targets


def _end(text: str, ctx: Context) -> str | None:
    if _skip(text):
        return ""
    ends_on = parse_when(text, ctx.services.today())
    if ends_on is None or ends_on < ctx.services.today():
        raise Unfit(
            _("Bạn gõ ngày theo kiểu {example}, hoặc “bỏ qua”.").format(
                example=example_day(ctx, days=90, year=True)
            )
        )
    return ends_on.isoformat()


OPTIONS: dict[str, Any] = {"ask": ask, "keeps": True, "official": True}


def _name(text: str, ctx: Context) -> str | None:
    """Any letters or digits make a name, in any script ("中文名称" folds to nothing but is
    one); punctuation or emoji alone do not. Refused here, in the parser: the dispatcher takes
    an Unfit only from a parser, and one raised by the answer would end in the apology."""
    name = text.strip()[:200]
    if not name:
        return None
    if not any(ch.isalnum() for ch in name):
        raise Unfit(_("Tên cần có chữ hoặc số, ví dụ: Bê tông hóa đường thôn Nà Làng"))
    return name


@router.step(NAME, parse=_name, free=True, **OPTIONS)
async def name_typed(ctx: Context) -> Reply:
    """The campaign's name; then what it accepts."""
    ctx.user.state_data["name"] = ctx.value
    ctx.user.state = CHOOSE
    return await ask(ctx)


_MARKS = re.compile(r"[,;+&/\n]")  # before folding, which drops them
_AND = re.compile(r"\s*\b(?:va|voi|and|hoac)\b\s*")


def _kinds(text: str, ctx: Context) -> list[str] | None:
    """The kinds typed at once, by name or by their buttons' numbers: "tiền và ngày công",
    "tien, dat", "1 3", "một và ba"; None if a part is neither."""
    chosen: set[str] = set()
    parts = [p for piece in _MARKS.split(text) for p in _AND.split(fold(piece))]
    for part in filter(None, parts):
        numbers = [spelled_number(w) if not w.isdigit() else int(w) for w in part.split()]
        named = [k for k, words in KIND_WORDS.items() if part in words]
        if named:
            chosen.update(named)
        elif numbers and all(n is not None and 1 <= n <= len(KINDS) for n in numbers):
            chosen.update(KINDS[n - 1] for n in numbers if n is not None)
        else:
            return None
    return [k for k in KINDS if k in chosen] or None


@router.step(CHOOSE, parse=_kinds, buttons=("camp:kind", "camp:kinds"), **OPTIONS)
async def kinds_typed(ctx: Context) -> Reply:
    """What the campaign accepts, typed; then the targets."""
    ctx.user.state_data["kinds"] = ctx.value
    ctx.user.state = TARGETS
    return await ask(ctx)


@router.step(TARGETS, parse=_targets, **OPTIONS)
async def targets_typed(ctx: Context) -> Reply:
    """Targets ("200 triệu, 500 ngày công" or "bỏ qua"); then the end date."""
    ctx.user.state_data["targets"] = ctx.value
    ctx.user.state = END
    return await ask(ctx)


@router.step(END, parse=_end, **OPTIONS)
async def end_typed(ctx: Context) -> Reply:
    """The end date (or none); then the summary to confirm."""
    ctx.user.state_data["ends_on"] = ctx.value or None
    ctx.user.state = CONFIRM
    return await ask(ctx)


router.add_step(Step(CONFIRM, buttons=("camp:ok",), yes="camp:ok", no="menu:main", **OPTIONS))


def _at_kinds(ctx: Context) -> None:
    """The kinds' buttons of an old message, pressed after the flow ended, mean nothing."""
    if ctx.user.state != CHOOSE:
        raise StalePayload("campaign kinds outside the flow")


@router.button(ToggleKind, official=True)
async def toggle_kind(ctx: Context) -> Reply:
    """Adds or removes a kind the campaign accepts."""
    _at_kinds(ctx)
    kinds: list[str] = ctx.user.state_data["kinds"]
    if ctx.payload.kind in kinds:
        kinds.remove(ctx.payload.kind)
    else:
        kinds.append(ctx.payload.kind)
    return await ask(ctx)


@router.button("camp:kinds", official=True)
async def kinds_done(ctx: Context) -> Reply:
    """Kinds chosen; asks for targets."""
    _at_kinds(ctx)
    if not ctx.user.state_data["kinds"]:
        return Reply(_("Chọn ít nhất một loại."), _kind_buttons([]))
    ctx.user.state = TARGETS
    return await ask(ctx)


@router.button("camp:ok", official=True)
async def open_campaign(ctx: Context) -> Reply:
    """Saves the campaign (audited) and opens it to villagers, if the official still acts for
    the draft's commune (the guard checked they are an official at all)."""
    data = ctx.user.state_data
    if ctx.user.state != CONFIRM:
        raise StalePayload("campaign confirmation outside the flow")
    if not ctx.official.covers(data["commune"]):
        ctx.user.leave()
        return await not_allowed(ctx)
    today = ctx.services.today()
    campaign, _created = await ctx.services.campaigns.save(
        {
            # One slug per conversation: a replayed confirmation changes nothing, and no other
            # campaign can be overwritten by a name that folds alike.
            "slug": f"chat-{data['commune']}-{data['draft']}",
            "name": data["name"],
            "description": None,
            "commune_code": data["commune"],
            "villages": [],
            "kinds": data["kinds"],
            "targets": data["targets"],
            "starts_on": today,
            "ends_on": date.fromisoformat(data["ends_on"]) if data["ends_on"] else None,
            "status": "open",
            "source": "chat",
            "is_sample": False,
        },
        actor=ctx.official.principal,
    )
    ctx.user.leave()
    return with_menu(
        _("Đã mở “{name}”. Người dân trong xã đã có thể đóng góp.").format(name=campaign.name)
    )
