"""Campaigns: everyone sees the tallies; officials open a campaign in chat."""

from __future__ import annotations

import re
from datetime import date

from bot.amounts import find_amount
from bot.core import Button, Context, Reply, Router, StalePayload
from bot.i18n import N_, _, fmt_date, fmt_number
from bot.quantities import households, kind_name, spell
from bot.storage.contributions import KINDS, Campaign
from bot.text import fold
from handlers.common import ask_commune, example_day
from handlers.contributions import parse_when
from handlers.menu import with_menu
from handlers.review import principal

router = Router("campaigns")
NEW = "camp:new"
SKIP_WORDS = {"bo qua", "khong", "skip", "no", "none"}


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
        pending = ", ".join(spell(k, n, compact=True) for k, n in tally.pending.items())
        lines.append(
            _("Đang chờ xác nhận: {count} đăng ký ({totals}).").format(
                count=tally.pending_count, totals=pending
            )
        )
    lines.append(_("Chỉ đóng góp đã được cán bộ xác nhận mới được cộng vào tổng."))
    return "\n".join(lines)


@router.command("bangdonggop", "tally", description=N_("Bảng đóng góp của xã"))
@router.button("tally:list")
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
        [[Button(f"tally:camp:{c.id}", c.name)] for c in campaigns[:10]],
    )


async def _one(ctx: Context, campaign: Campaign) -> Reply:
    buttons = [Button("menu:main", _("Menu"))]
    if campaign.is_open(ctx.services.today()):
        buttons.insert(0, Button("contrib:start", _("Đóng góp")))
    return Reply(await tally_text(ctx, campaign), [buttons])


@router.button("tally:camp")
async def tally_one(ctx: Context) -> Reply:
    """One campaign's tally."""
    campaign = None
    if len(ctx.args) == 1 and ctx.args[0].isdigit():
        campaign = await ctx.services.campaigns.get(int(ctx.args[0]))
    if campaign is None:
        raise StalePayload(f"no campaign {ctx.args}")
    return await _one(ctx, campaign)


# --- officials open a campaign in chat ------------------------------------------------------


@router.command("taophongtrao", "newcampaign", description=N_("Cán bộ: mở cuộc vận động mới"))
async def new_campaign(ctx: Context) -> Reply:
    """Asks an official for the campaign's name, then kinds, targets and end date."""
    reference = ctx.services.reference
    communes = await ctx.services.officials.communes_of(
        principal(ctx), reference.province_code, list(reference.communes)
    )
    code = ctx.user.commune_code if ctx.user.commune_code in communes else None
    if code is None and len(communes) == 1:
        code = communes[0]
    if code is None:
        return with_menu(_("Việc này chỉ cán bộ xã phụ trách mới làm được."))
    ctx.user.enter(NEW, commune=code, kinds=[])
    return Reply(_("Tên cuộc vận động, công trình? Ví dụ: Bê tông hóa đường thôn Nà Làng"))


def _kind_buttons(chosen: list[str]) -> list[list[Button]]:
    rows = [
        [Button(f"camp:kind:{k}", ("✅ " if k in chosen else "") + kind_name(k))] for k in KINDS
    ]
    return [*rows, [Button("camp:kinds", _("Xong"))]]


@router.state(NEW)
async def new_typed(ctx: Context) -> Reply:
    """Name, then targets ("200 triệu, 500 ngày công" or "bỏ qua"), then the end date."""
    data = ctx.user.state_data
    if "name" not in data:
        data["name"] = ctx.text[:200]
        return Reply(_("Nhận những gì? Chọn rồi bấm Xong."), _kind_buttons(data["kinds"]))
    if "targets" not in data:
        targets: dict[str, int] = {}
        if fold(ctx.text) not in SKIP_WORDS:
            for part in re.split(r"[;,\n]| va | and ", ctx.text):
                amount = find_amount(part)
                if amount is not None and str(amount.kind) in data["kinds"]:
                    targets[str(amount.kind)] = amount.value
            if not targets:
                return Reply(
                    _(
                        "Mình chưa hiểu mục tiêu. Ví dụ: 200 triệu, 500 ngày công — "
                        "hoặc gõ “bỏ qua”."
                    )
                )
        data["targets"] = targets
        return Reply(
            _("Ngày kết thúc? Ví dụ {example}, hoặc gõ “bỏ qua”.").format(
                example=example_day(ctx, days=90, year=True)
            )
        )
    ends_on = None if fold(ctx.text) in SKIP_WORDS else parse_when(ctx.text, ctx.services.today())
    if ends_on is None and fold(ctx.text) not in SKIP_WORDS:
        return Reply(
            _("Bạn gõ ngày theo kiểu {example}, hoặc “bỏ qua”.").format(
                example=example_day(ctx, days=90, year=True)
            )
        )
    data["ends_on"] = ends_on.isoformat() if ends_on else None
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


@router.button("camp:kind")
async def toggle_kind(ctx: Context) -> Reply:
    """Adds or removes a kind the campaign accepts."""
    if ctx.user.state != NEW or len(ctx.args) != 1 or ctx.args[0] not in KINDS:
        raise StalePayload(f"campaign kind {ctx.args}")
    kinds: list[str] = ctx.user.state_data["kinds"]
    if ctx.args[0] in kinds:
        kinds.remove(ctx.args[0])
    else:
        kinds.append(ctx.args[0])
    return Reply(_("Nhận những gì? Chọn rồi bấm Xong."), _kind_buttons(kinds))


@router.button("camp:kinds")
async def kinds_done(ctx: Context) -> Reply:
    """Kinds chosen; asks for targets."""
    if ctx.user.state != NEW or "name" not in ctx.user.state_data:
        raise StalePayload("campaign kinds outside the flow")
    if not ctx.user.state_data["kinds"]:
        return Reply(_("Chọn ít nhất một loại."), _kind_buttons([]))
    return Reply(_("Mục tiêu? Ví dụ: 200 triệu, 500 ngày công — hoặc gõ “bỏ qua”."))


@router.button("camp:ok")
async def open_campaign(ctx: Context) -> Reply:
    """Saves the campaign (audited) and opens it to villagers."""
    data = ctx.user.state_data
    if ctx.user.state != NEW or "ends_on" not in data:
        raise StalePayload("campaign confirmation outside the flow")
    today = ctx.services.today()
    slug = f"{data['commune']}-{today.isoformat()}-{fold(data['name']).replace(' ', '-')}"[:64]
    campaign, _created = await ctx.services.campaigns.save(
        {
            "slug": slug,
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
        actor=principal(ctx),
    )
    ctx.user.leave()
    return with_menu(
        _("Đã mở “{name}”. Người dân trong xã đã có thể đóng góp.").format(name=campaign.name)
    )
