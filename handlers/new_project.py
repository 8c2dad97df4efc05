"""Công trình: an official records a project in chat — name, village, the campaigns that fund
it, the budget by source, start and expected end — sees it as villagers will, and confirms."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from bot.content.project_texts import budget_lines, period, place, status_name
from bot.core.conversation import Button, Context, Payload, Reply, Router, StalePayload, Step, Unfit
from bot.domain.amounts import find_amount
from bot.domain.dates import parse_when
from bot.domain.i18n import N_, _, fmt_date
from bot.domain.quantities import spell
from bot.domain.text import fold
from bot.storage.projects import PREPARING, Project
from handlers.campaigns import SKIP_WORDS
from handlers.common import commune_of_official, example_day
from handlers.menu import not_allowed, with_menu
from handlers.projects import MAX_LISTED

router = Router("new_project")


# --- officials record a project in chat -----------------------------------------------------
# Name → village → campaigns that fund it → budget by source → dates → preview and confirm.
NAME, VILLAGE, CAMPAIGNS = "proj:name", "proj:village", "proj:camps"
BUDGET, DATES, CONFIRM = "proj:budget", "proj:dates", "proj:ok"


@dataclass(frozen=True)
class PickVillage(Payload, prefix="proj:vil"):
    index: int  # 0: the whole commune; 1…: a village of the draft's list


@dataclass(frozen=True)
class ToggleCampaign(Payload, prefix="proj:camp"):
    index: int  # in the draft's list of the commune's campaigns


@router.command(
    "taocongtrinh", "newproject", description=N_("Cán bộ: ghi công trình mới"), official=True
)
async def new_project(ctx: Context) -> Reply | list[Reply]:
    """Asks an official for the project's name, then village, campaigns, budget and dates."""
    code = commune_of_official(ctx)
    if code is None:  # officials of several communes record one in the commune they live in
        return await not_allowed(ctx)
    funding = await ctx.services.campaigns.in_commune(code)
    ctx.user.enter(
        NAME,
        commune=code,
        villages=sorted({v for c in funding for v in c.villages}),
        campaigns=[[c.slug, c.name] for c in funding][:MAX_LISTED],
        chosen=[],
        draft=uuid.uuid4().hex[:12],
    )
    return await ask(ctx)


def _draft_project(ctx: Context) -> Project:
    data = ctx.user.state_data
    return Project(
        id=0,
        slug="",
        name=data["name"],
        description=None,
        commune_code=data["commune"],
        village=data.get("village"),
        campaigns=tuple(data["chosen"]),
        budget=data.get("budget", {}),
        starts_on=date.fromisoformat(data["starts_on"]) if data.get("starts_on") else None,
        ends_on=date.fromisoformat(data["ends_on"]) if data.get("ends_on") else None,
        status=PREPARING,
        progress=0,
        is_sample=False,
        source="chat",
        updated_at=ctx.services.clock.utcnow(),
    )


def _example_dates(ctx: Context) -> str:
    return f"{example_day(ctx, days=16, year=True)} - {example_day(ctx, days=120, year=True)}"


async def ask(ctx: Context) -> Reply | list[Reply]:
    """The question of the step the official is at (asked again after an unusable answer)."""
    data, state = ctx.user.state_data, ctx.user.state
    cancel = Button("menu:main", _("Hủy"))
    if state == NAME:
        return Reply(_("Tên công trình? Ví dụ: Đường bê tông thôn Nà Làng"), [[cancel]])
    if state == VILLAGE:
        commune = ctx.services.reference.communes[data["commune"]].name
        rows = [[Button(PickVillage(0).pack(), _("Cả {commune}").format(commune=commune))]]
        rows += [
            [Button(PickVillage(i).pack(), _("Thôn {village}").format(village=v))]
            for i, v in enumerate(data["villages"], 1)
        ]
        return Reply(_("Công trình ở thôn nào?"), [*rows, [cancel]])
    if state == CAMPAIGNS:
        rows = [
            [Button(ToggleCampaign(i).pack(), ("✅ " if slug in data["chosen"] else "") + name)]
            for i, (slug, name) in enumerate(data["campaigns"])
        ]
        return Reply(
            _("Cuộc vận động nào góp cho công trình này? Chọn rồi bấm Xong."),
            [*rows, [Button("proj:camps", _("Xong"))], [cancel]],
        )
    if state == BUDGET:
        return Reply(
            _(
                "Kinh phí theo nguồn? Ví dụ: nhà nước 1,2 tỷ; dân góp 200 triệu; "
                "doanh nghiệp 50 triệu — hoặc gõ “bỏ qua”."
            ),
            [[cancel]],
        )
    if state == DATES:
        return Reply(
            _("Ngày khởi công và dự kiến xong? Ví dụ: {example} — hoặc gõ “bỏ qua”.").format(
                example=_example_dates(ctx)
            ),
            [[cancel]],
        )
    draft = _draft_project(ctx)
    commune = ctx.services.reference.communes[draft.commune_code].name
    lines = ["🏗 " + draft.name, place(draft, commune), status_name(PREPARING)]
    when = period(draft)
    if when:
        lines.append(when)
    names = dict(data["campaigns"])
    if draft.campaigns:
        funded = ", ".join(names[s] for s in draft.campaigns)
        lines.append(_("Cuộc vận động: {names}").format(names=funded))
    lines += budget_lines(draft)
    return [
        Reply(_("Xem trước — bà con sẽ thấy:")),
        Reply("\n".join(lines)),
        Reply(_("Lưu công trình này?"), [[Button("proj:ok", _("Đúng, lưu")), cancel]]),
    ]


OPTIONS: dict[str, Any] = {"ask": ask, "keeps": True, "official": True}


def _name(text: str, ctx: Context) -> str | None:
    name = text.strip()[:200]
    if not name:
        return None
    if not any(ch.isalnum() for ch in name):
        raise Unfit(_("Tên cần có chữ hoặc số, ví dụ: Đường bê tông thôn Nà Làng"))
    return name


# Where a budget line says its money comes from, folded: one or two words.
_SOURCE_WORDS = {
    "nha nuoc": "state",
    "ngan sach": "state",
    "nn": "state",
    "state": "state",
    "nhan dan": "people",
    "dan gop": "people",
    "dan": "people",
    "people": "people",
    "doanh nghiep": "enterprises",
    "dn": "enterprises",
    "enterprises": "enterprises",
    "enterprise": "enterprises",
    "business": "enterprises",
}


def _budget(text: str, ctx: Context) -> dict[str, int] | None:
    """ "nhà nước 1,2 tỷ; dân 200 triệu, doanh nghiệp 50 triệu": each amount after its source
    (read from the words as typed: folding would drop the comma of "1,2 tỷ")."""
    if fold(text) in SKIP_WORDS:
        return {}
    words = text.replace(";", " ; ").split()
    keys = [fold(w) for w in words]
    marks: list[tuple[int, int, str]] = []  # (first word, words it takes, source)
    i = 0
    while i < len(words):
        pair = " ".join(keys[i : i + 2])
        if pair in _SOURCE_WORDS:
            marks.append((i, 2, _SOURCE_WORDS[pair]))
            i += 2
        elif keys[i] in _SOURCE_WORDS:
            marks.append((i, 1, _SOURCE_WORDS[keys[i]]))
            i += 1
        else:
            i += 1
    budget: dict[str, int] = {}
    for n, (start, width, source) in enumerate(marks):
        end = marks[n + 1][0] if n + 1 < len(marks) else len(words)
        part = " ".join(words[start + width : end]).strip(" ,;")
        amount = find_amount(part)
        if amount is not None and str(amount.kind) == "money":
            budget[source] = amount.value
    if not budget:
        raise Unfit(
            _("Chưa hiểu kinh phí. Ví dụ: nhà nước 1,2 tỷ; dân góp 200 triệu — hoặc “bỏ qua”."),
            # "một tỷ hai" has no digit but is an amount: this step's, not a pledge's
            weak=not any(ch.isdigit() for ch in text) and find_amount(text) is None,
        )
    return budget


_DASH = re.compile(r"\s+-\s+|\s*(?:–|->|→)\s*|\s+(?:đến|den|tới|toi|to)\s+", re.I)


def _dates(text: str, ctx: Context) -> list[str | None] | None:
    """ "01/12/2026 - 30/06/2027", or one date (the start), or "bỏ qua"."""
    if fold(text) in SKIP_WORDS:
        return [None, None]
    today = ctx.services.today()
    parts = [p for p in _DASH.split(text.strip()) if p.strip()]
    days = [parse_when(p, today) for p in parts[:2]]
    if not days or any(d is None for d in days):
        raise Unfit(
            _("Bạn gõ ngày theo kiểu {example}, hoặc “bỏ qua”.").format(
                example=_example_dates(ctx)
            ),
            weak=not any(ch.isdigit() for ch in text),
        )
    start, end = [*days, None][:2]
    if start is not None and end is not None and end < start:
        raise Unfit(_("Ngày xong phải sau ngày khởi công."))
    return [d.isoformat() if d else None for d in (start, end)]


@router.step(NAME, parse=_name, free=True, **OPTIONS)
async def name_typed(ctx: Context) -> Reply | list[Reply]:
    """The project's name; then its village (if the commune's are known) or its campaigns."""
    ctx.user.state_data["name"] = ctx.value
    return await _after(ctx, NAME)


async def _after(ctx: Context, step: str) -> Reply | list[Reply]:
    """On to the next step, skipping those with nothing to choose."""
    data = ctx.user.state_data
    order = [NAME, VILLAGE, CAMPAIGNS, BUDGET, DATES, CONFIRM]
    for following in order[order.index(step) + 1 :]:
        if following == VILLAGE and not data["villages"]:
            continue
        if following == CAMPAIGNS and not data["campaigns"]:
            continue
        ctx.user.state = following
        break
    return await ask(ctx)


router.add_step(Step(VILLAGE, buttons=("proj:vil",), **OPTIONS))


@router.button(PickVillage, official=True)
async def village_picked(ctx: Context) -> Reply | list[Reply]:
    """The whole commune or one village; then the campaigns."""
    data = ctx.user.state_data
    if ctx.user.state != VILLAGE or ctx.payload.index > len(data["villages"]):
        raise StalePayload(f"project village {ctx.payload}")
    data["village"] = data["villages"][ctx.payload.index - 1] if ctx.payload.index else None
    return await _after(ctx, VILLAGE)


# "không" at "Cuộc vận động nào góp…?": none (or no more), as the "Xong" it stands for.
router.add_step(Step(CAMPAIGNS, buttons=("proj:camp", "proj:camps"), no="proj:camps", **OPTIONS))


@router.button(ToggleCampaign, official=True)
async def campaign_toggled(ctx: Context) -> Reply | list[Reply]:
    """Adds or removes a campaign that funds the project."""
    data = ctx.user.state_data
    if ctx.user.state != CAMPAIGNS or ctx.payload.index >= len(data["campaigns"]):
        raise StalePayload(f"project campaign {ctx.payload}")
    slug = data["campaigns"][ctx.payload.index][0]
    chosen: list[str] = data["chosen"]
    chosen.remove(slug) if slug in chosen else chosen.append(slug)
    return await ask(ctx)


@router.button("proj:camps", official=True)
async def campaigns_done(ctx: Context) -> Reply | list[Reply]:
    """The campaigns are chosen (none is fine); asks for the budget."""
    if ctx.user.state != CAMPAIGNS:
        raise StalePayload("project campaigns outside the flow")
    return await _after(ctx, CAMPAIGNS)


@router.step(BUDGET, parse=_budget, **OPTIONS)
async def budget_typed(ctx: Context) -> Reply | list[Reply]:
    """The budget by source (or none); then the dates."""
    ctx.user.state_data["budget"] = ctx.value
    return await _after(ctx, BUDGET)


@router.step(DATES, parse=_dates, **OPTIONS)
async def dates_typed(ctx: Context) -> Reply | list[Reply]:
    """Start and expected end (or none); then the preview."""
    ctx.user.state_data["starts_on"], ctx.user.state_data["ends_on"] = ctx.value
    return await _after(ctx, DATES)


router.add_step(Step(CONFIRM, buttons=("proj:ok",), yes="proj:ok", no="menu:main", **OPTIONS))


@router.button("proj:ok", official=True)
async def save_project(ctx: Context) -> Reply:
    """Saves the project (audited), if the official still acts for the draft's commune."""
    data = ctx.user.state_data
    if ctx.user.state != CONFIRM:
        raise StalePayload("project confirmation outside the flow")
    if not ctx.official.covers(data["commune"]):
        ctx.user.leave()
        return await not_allowed(ctx)
    draft = _draft_project(ctx)
    project, _created = await ctx.services.projects.save(
        {
            # One slug per conversation: a replayed confirmation changes nothing.
            "slug": f"chat-{data['commune']}-{data['draft']}",
            "name": draft.name,
            "description": None,
            "commune_code": draft.commune_code,
            "village": draft.village,
            "campaigns": list(draft.campaigns),
            "budget": draft.budget,
            "starts_on": draft.starts_on,
            "ends_on": draft.ends_on,
            "status": PREPARING,
            "progress": 0,
            "source": "chat",
            "is_sample": False,
        },
        actor=ctx.official.principal,
    )
    ctx.user.leave()
    said = _("Đã lưu công trình “{name}”. Cập nhật tiến độ bằng /capnhatcongtrinh.").format(
        name=project.name
    )
    if project.budget:
        said += "\n" + _("Tổng kinh phí: {total}.").format(
            total=spell("money", project.total_budget, compact=True)
        )
    if project.starts_on:
        said += "\n" + _("Khởi công {start}").format(start=fmt_date(project.starts_on))
    return with_menu(said)
