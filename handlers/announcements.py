"""Dân biết: an official writes an announcement (text, optional photo), sees it exactly as
villagers will, picks the scope and the time, confirms; and follows its delivery. Every route
here is official: the dispatcher's guard has put the official on ctx.official."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
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
    as_list,
)
from bot.core.officials import Official
from bot.delivery import broadcasts
from bot.delivery.outbox import list_broadcasts
from bot.domain.dates import parse_moment
from bot.domain.i18n import N_, _, fmt_datetime, fmt_number
from bot.domain.markup import to_plain, to_telegram_html
from handlers.common import example_moment, says_whole_commune
from handlers.menu import not_allowed, with_menu

router = Router("announcements")
WRITE, SCOPE, WHEN, CONFIRM = "ann:text", "ann:scope", "ann:when", "ann:confirm"


def _scopes(ctx: Context, official: Official) -> list[tuple[str, str, str]]:
    """(level, code, name) the official may send to."""
    reference = ctx.services.reference
    if official.whole_province:
        home = ctx.user.commune_code if official.covers(ctx.user.commune_code or "") else None
        scopes = [("province", official.province, reference.province_name)]
        if home:
            scopes.append(("commune", home, reference.communes[home].name))
        return scopes
    return [("commune", c, reference.communes[c].name) for c in official.communes[:8]]


@dataclass(frozen=True)
class PickScope(Payload, prefix="ann:scope"):
    level: Literal["province", "commune"]
    code: str


@router.command("thongbaomoi", "announce", description=N_("Cán bộ: gửi thông báo"), official=True)
async def announce(ctx: Context) -> Reply | list[Reply]:
    """Starts an announcement (officials only)."""
    ctx.user.enter(WRITE)
    return await ask(ctx)


async def ask(ctx: Context) -> Reply | list[Reply]:
    """The question of the step the official is at (asked again after an unusable answer)."""
    state, data = ctx.user.state, ctx.user.state_data
    if state == WRITE:
        return Reply(
            _(
                "Gõ nội dung thông báo. Có thể gửi kèm một ảnh (chú thích là nội dung). "
                "Chữ đậm: **chữ**; liên kết: [tên](https://…)."
            )
        )
    if state == SCOPE:
        buttons = [
            [Button(PickScope(level, code).pack(), name)]  # type: ignore[arg-type]
            for level, code, name in _scopes(ctx, ctx.official)
        ]
        return Reply(_("Gửi tới đâu?"), [*buttons, [Button("menu:main", _("Hủy"))]])
    if state == WHEN:
        return Reply(
            _("Gửi lúc nào? Bấm “Gửi ngay” hoặc gõ giờ và ngày, ví dụ {example}.").format(
                example=example_moment(ctx)
            ),
            [[Button("ann:now", _("Gửi ngay"))]],
        )
    reach = await broadcasts.audience(ctx.services.db, data["level"], data["code"], _topic(data))
    return Reply(
        _("Gửi tới {count} người đang nhận tin, lúc {moment}. Gửi chứ?").format(
            count=fmt_number(reach),
            moment=fmt_datetime(datetime.fromisoformat(data["send_at"])),
        ),
        [[Button("ann:go", _("Gửi")), Button("menu:main", _("Hủy"))]],
    )


def _topic(data: dict[str, Any]) -> str:
    return "commune_news" if data["level"] == "commune" else "province_news"


OPTIONS: dict[str, Any] = {"ask": ask, "keeps": True, "official": True}


@router.step(WRITE, parse=lambda text, ctx: text.strip() or None, photos=True, free=True, **OPTIONS)
async def written(ctx: Context) -> list[Reply]:
    """The text (and photo): shows the preview, then asks where to send it."""
    data = ctx.user.state_data
    if ctx.event.photo:
        data["photo"] = ctx.event.photo
    if not ctx.text:
        return [Reply(_("Đã nhận ảnh. Gõ nội dung thông báo đi kèm."))]
    data["text"] = ctx.text[:3500]
    ctx.user.state = SCOPE
    preview = to_plain(data["text"])
    photo = [_("[kèm 1 ảnh]")] if data.get("photo") else []
    return [
        Reply(_("Xem trước — bà con sẽ nhận được:")),
        Reply("\n".join([*photo, preview])),
        *as_list(await ask(ctx)),
    ]


def _scope(text: str, ctx: Context) -> PickScope | None:
    """ "toàn xã", "cả xã": the commune, where it is the one commune on offer."""
    communes = [code for level, code, _name in _scopes(ctx, ctx.official) if level == "commune"]
    if says_whole_commune(ctx, text) and len(communes) == 1:
        return PickScope("commune", communes[0])
    return None


@router.step(SCOPE, parse=_scope, buttons=("ann:scope",), **OPTIONS)
async def scope_typed(ctx: Context) -> Reply | list[Reply]:
    """The commune in words; as its button."""
    ctx.payload = ctx.value
    return await scoped(ctx)


@router.button(PickScope, official=True)
async def scoped(ctx: Context) -> Reply | list[Reply]:
    """Where it goes; asks when."""
    allowed = {(level, code) for level, code, _name in _scopes(ctx, ctx.official)}
    if (ctx.payload.level, ctx.payload.code) not in allowed:
        raise StalePayload(f"announcement scope {ctx.payload}")
    ctx.user.enter(WHEN, **ctx.user.state_data, level=ctx.payload.level, code=ctx.payload.code)
    return await ask(ctx)


def _moment(text: str, ctx: Context) -> datetime | None:
    now = ctx.services.now()
    moment = parse_moment(text, now)
    if moment is not None and moment < now - timedelta(minutes=1):
        raise Unfit(
            _("Thời gian này đã qua. Ví dụ: {example}.").format(example=example_moment(ctx))
        )
    if moment is None or moment > now + timedelta(days=60):
        raise Unfit(
            _("Mình chưa hiểu thời gian. Ví dụ: {example} (trong vòng 60 ngày).").format(
                example=example_moment(ctx)
            ),
            weak=moment is None,
        )
    return max(moment, now)


@router.step(WHEN, buttons=("ann:now",), parse=_moment, **OPTIONS)
async def when_typed(ctx: Context) -> Reply | list[Reply]:
    """A time for later ("18:00 30/11", "8h tối nay", "bây giờ")."""
    return await _confirm(ctx, ctx.value)


@router.button("ann:now", official=True)
async def send_now(ctx: Context) -> Reply | list[Reply]:
    """Now."""
    if ctx.user.state != WHEN:
        raise StalePayload("announcement time outside the flow")
    return await _confirm(ctx, ctx.services.now())


async def _confirm(ctx: Context, moment: datetime) -> Reply | list[Reply]:
    ctx.user.enter(CONFIRM, **ctx.user.state_data, send_at=moment.isoformat())
    return await ask(ctx)


router.add_step(Step(CONFIRM, buttons=("ann:go",), yes="ann:go", no="menu:main", **OPTIONS))


@router.button("ann:go", official=True)
async def go(ctx: Context) -> Reply:
    """Schedules the broadcast (audited), if the official may still send to its scope; the
    sender delivers it."""
    data = ctx.user.state_data
    if ctx.user.state != CONFIRM:
        raise StalePayload("announcement confirmation outside the flow")
    allowed = {(level, code) for level, code, _name in _scopes(ctx, ctx.official)}
    if (data["level"], data["code"]) not in allowed:
        ctx.user.leave()
        return await not_allowed(ctx)
    text = data["text"]
    broadcast_id = await broadcasts.create(
        ctx.services.db,
        ctx.official.principal,
        kind="announcement",
        title=to_plain(text)[:80],
        text=to_plain(text),
        html=to_telegram_html(text),
        photo=data.get("photo"),
        scope_level=data["level"],
        scope_code=data["code"],
        topic=_topic(data),
        send_at=datetime.fromisoformat(data["send_at"]),
    )
    ctx.user.leave()
    return Reply(
        _("Đã lên lịch thông báo số {id}. Xem tiến độ gửi: /tiendogui").format(id=broadcast_id),
        [[Button("ann:progress", _("Tiến độ gửi"))]],
    )


BROADCAST_STATUS = {
    "scheduled": N_("đã lên lịch"),
    "sending": N_("đang gửi"),
    "done": N_("xong"),
    "cancelled": N_("đã hủy"),
}


def _short(title: str, limit: int = 40) -> str:
    """The title cut at a word, not inside one."""
    if len(title) <= limit:
        return title
    return title[:limit].rsplit(" ", 1)[0].rstrip(",.;:—-") + "…"


@router.command(
    "tiendogui", "sending", description=N_("Cán bộ: tiến độ gửi thông báo"), official=True
)
@router.button("ann:progress", official=True)
async def progress(ctx: Context) -> Reply:
    """The latest broadcasts to the official's communes (or province), with counts."""
    codes = [*ctx.official.communes, ctx.official.province]
    lines = []
    for b, c in await list_broadcasts(ctx.services.db, limit=5, scope_codes=codes):
        total = sum(c.values())
        done = c.get("sent", 0) + c.get("failed", 0) + c.get("blocked", 0) + c.get("skipped", 0)
        lines.append(
            _(
                "#{id} {title}: đã gửi {sent}/{total}, lỗi {failed}, chặn {blocked} ({status})"
            ).format(
                id=b.id,
                title=_short(b.title),
                sent=fmt_number(c.get("sent", 0)),
                total=fmt_number(total),
                failed=fmt_number(c.get("failed", 0)),
                blocked=fmt_number(c.get("blocked", 0)),
                status=_(BROADCAST_STATUS[b.status]) if b.status in BROADCAST_STATUS else b.status,
            )
            + ("" if done == total else "…")
        )
    return with_menu("\n".join(lines) if lines else _("Chưa có thông báo nào."))
