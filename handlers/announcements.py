"""Dân biết: an official writes an announcement (text, optional photo), sees it exactly as
villagers will, picks the scope and the time, confirms; and follows its delivery."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

from bot import broadcasts
from bot.broadcast.outbox import list_broadcasts
from bot.clock import TZ
from bot.core import Button, Context, Reply, Router, StalePayload
from bot.i18n import N_, _, fmt_datetime, fmt_number
from bot.markup import to_plain, to_telegram_html
from handlers.common import example_moment
from handlers.contributions import parse_when
from handlers.menu import with_menu
from handlers.review import my_communes, principal

router = Router("announcements")
WRITE, SCOPE, WHEN, CONFIRM = "ann:text", "ann:scope", "ann:when", "ann:confirm"
_TIME = re.compile(r"\b(\d{1,2})[:h](\d{2})?\b")


def _scopes(ctx: Context, communes: list[str]) -> list[tuple[str, str, str]]:
    """(level, code, name) the official may send to."""
    reference = ctx.services.reference
    if len(communes) == len(reference.communes):
        home = ctx.user.commune_code if ctx.user.commune_code in communes else None
        scopes = [("province", reference.province_code, reference.province_name)]
        if home:
            scopes.append(("commune", home, reference.communes[home].name))
        return scopes
    return [("commune", c, reference.communes[c].name) for c in communes[:8]]


@router.command("thongbaomoi", "announce", description=N_("Cán bộ: gửi thông báo"))
async def announce(ctx: Context) -> Reply:
    """Starts an announcement (officials only)."""
    if not await my_communes(ctx):
        return with_menu(_("Việc này chỉ cán bộ xã phụ trách mới làm được."))
    ctx.user.enter(WRITE)
    return Reply(
        _(
            "Gõ nội dung thông báo. Có thể gửi kèm một ảnh (chú thích là nội dung). "
            "Chữ đậm: **chữ**; liên kết: [tên](https://…)."
        )
    )


@router.state(WRITE, photos=True)
async def written(ctx: Context) -> list[Reply]:
    """The text (and photo): shows the preview, then asks where to send it."""
    data = ctx.user.state_data
    if ctx.event.photo:
        data["photo"] = ctx.event.photo
    if not ctx.text:
        return [Reply(_("Đã nhận ảnh. Gõ nội dung thông báo đi kèm."))]
    data["text"] = ctx.text[:3500]
    ctx.user.enter(SCOPE, **data)
    communes = await my_communes(ctx)
    buttons = [
        [Button(f"ann:scope:{level}:{code}", name)] for level, code, name in _scopes(ctx, communes)
    ]
    preview = to_plain(data["text"])
    photo = [_("[kèm 1 ảnh]")] if data.get("photo") else []
    return [
        Reply(_("Xem trước — bà con sẽ nhận được:")),
        Reply("\n".join([*photo, preview])),
        Reply(_("Gửi tới đâu?"), [*buttons, [Button("menu:main", _("Hủy"))]]),
    ]


@router.button("ann:scope")
async def scoped(ctx: Context) -> Reply:
    """Where it goes; asks when."""
    communes = await my_communes(ctx)
    allowed = {(level, code) for level, code, _name in _scopes(ctx, communes)}
    if ctx.user.state != SCOPE or len(ctx.args) != 2 or tuple(ctx.args) not in allowed:
        raise StalePayload(f"announcement scope {ctx.args}")
    ctx.user.enter(WHEN, **ctx.user.state_data, level=ctx.args[0], code=ctx.args[1])
    return Reply(
        _("Gửi lúc nào? Bấm “Gửi ngay” hoặc gõ giờ và ngày, ví dụ {example}.").format(
            example=example_moment(ctx)
        ),
        [[Button("ann:now", _("Gửi ngay"))]],
    )


def parse_moment(text: str, now: datetime) -> datetime | None:
    """ "18:00 30/11", "30/11 18h", "18:30" (today, or tomorrow if past) in Vietnam's time."""
    hour = _TIME.search(text)
    day = parse_when(_TIME.sub(" ", text), now.date()) if re.search(r"\d+/\d+", text) else None
    if hour is None or int(hour[1]) > 23 or int(hour[2] or 0) > 59:
        return None
    local = datetime.combine(day or now.date(), time(int(hour[1]), int(hour[2] or 0)), TZ)
    if day is None and local <= now:
        local += timedelta(days=1)
    return local


@router.state(WHEN)
async def when_typed(ctx: Context) -> Reply:
    """A time for later."""
    now = ctx.services.now()
    moment = parse_moment(ctx.text, now)
    if moment is None or moment <= now or moment > now + timedelta(days=60):
        return Reply(
            _("Mình chưa hiểu thời gian. Ví dụ: {example} (trong vòng 60 ngày).").format(
                example=example_moment(ctx)
            )
        )
    return await _confirm(ctx, moment)


@router.button("ann:now")
async def send_now(ctx: Context) -> Reply:
    """Now."""
    if ctx.user.state != WHEN:
        raise StalePayload("announcement time outside the flow")
    return await _confirm(ctx, ctx.services.now())


async def _confirm(ctx: Context, moment: datetime) -> Reply:
    data = ctx.user.state_data
    topic = "commune_news" if data["level"] == "commune" else "province_news"
    reach = await broadcasts.audience(ctx.services.db, data["level"], data["code"], topic)
    ctx.user.enter(CONFIRM, **data, send_at=moment.isoformat())
    return Reply(
        _("Gửi tới {count} người đang nhận tin, lúc {moment}. Gửi chứ?").format(
            count=fmt_number(reach), moment=fmt_datetime(moment)
        ),
        [[Button("ann:go", _("Gửi")), Button("menu:main", _("Hủy"))]],
    )


@router.button("ann:go")
async def go(ctx: Context) -> Reply:
    """Schedules the broadcast (audited); the sender delivers it."""
    data = ctx.user.state_data
    if ctx.user.state != CONFIRM:
        raise StalePayload("announcement confirmation outside the flow")
    text = data["text"]
    broadcast_id = await broadcasts.create(
        ctx.services.db,
        principal(ctx),
        kind="announcement",
        title=to_plain(text)[:80],
        text=to_plain(text),
        html=to_telegram_html(text),
        photo=data.get("photo"),
        scope_level=data["level"],
        scope_code=data["code"],
        topic="commune_news" if data["level"] == "commune" else "province_news",
        send_at=datetime.fromisoformat(data["send_at"]),
    )
    ctx.user.leave()
    return Reply(
        _("Đã lên lịch thông báo số {id}. Xem tiến độ gửi: /tiendogui").format(id=broadcast_id),
        [[Button("ann:progress", _("Tiến độ gửi"))]],
    )


@router.command("tiendogui", "sending", description=N_("Cán bộ: tiến độ gửi thông báo"))
@router.button("ann:progress")
async def progress(ctx: Context) -> Reply:
    """The latest broadcasts to the official's communes (or province), with counts."""
    communes = await my_communes(ctx)
    if not communes:
        return with_menu(_("Việc này chỉ cán bộ xã phụ trách mới làm được."))
    codes = [*communes, ctx.services.reference.province_code]
    lines = []
    for b, c in await list_broadcasts(ctx.services.db, limit=5, scope_codes=codes):
        total = sum(c.values())
        done = c.get("sent", 0) + c.get("failed", 0) + c.get("blocked", 0) + c.get("skipped", 0)
        lines.append(
            _(
                "#{id} {title}: đã gửi {sent}/{total}, lỗi {failed}, chặn {blocked} ({status})"
            ).format(
                id=b.id,
                title=b.title[:40],
                sent=fmt_number(c.get("sent", 0)),
                total=fmt_number(total),
                failed=fmt_number(c.get("failed", 0)),
                blocked=fmt_number(c.get("blocked", 0)),
                status=b.status,
            )
            + ("" if done == total else "…")
        )
    return with_menu("\n".join(lines) if lines else _("Chưa có thông báo nào."))
