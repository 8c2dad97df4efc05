"""Officials confirm, reject (with a reason) or mark done the contributions of their communes;
the villager is told each time, in their own language."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from bot.core import Button, Context, Payload, Reply, Router, StalePayload
from bot.i18n import N_, _, use_locale
from bot.notify import Notice, enqueue
from bot.quantities import spell
from bot.storage.contributions import CONFIRMED, DONE, REJECTED, Contribution
from handlers.menu import with_menu

log = logging.getLogger(__name__)
router = Router("review")
REASON = "review:reason"
NOTICES = {
    CONFIRMED: N_("Đóng góp {ref} ({amount}) của bạn đã được cán bộ xã xác nhận. Cảm ơn bạn!"),
    DONE: N_("Đóng góp {ref} ({amount}) của bạn đã được ghi nhận là hoàn thành. Cảm ơn bạn!"),
    REJECTED: N_("Đóng góp {ref} ({amount}) của bạn chưa được nhận. Lý do: {reason}"),
}


@dataclass(frozen=True)
class Approve(Payload, prefix="review:ok"):
    id: int


@dataclass(frozen=True)
class Refuse(Payload, prefix="review:no"):
    id: int


@dataclass(frozen=True)
class MarkDone(Payload, prefix="review:done"):
    id: int


def principal(ctx: Context) -> str:
    return f"{ctx.event.channel}:{ctx.event.user_id}"


async def my_communes(ctx: Context) -> list[str]:
    reference = ctx.services.reference
    return await ctx.services.officials.communes_of(
        principal(ctx), reference.province_code, list(reference.communes)
    )


def not_allowed(ctx: Context) -> Reply:
    log.warning("%s tried an official action without the right", principal(ctx))
    return with_menu(_("Việc này chỉ cán bộ xã phụ trách mới làm được."))


def _card(c: Contribution, commune_name: str) -> Reply:
    who = c.display_name if c.show_name and c.display_name else _("Một hộ dân")
    lines = [
        f"{c.ref} · {commune_name}" + (f" · {c.village}" if c.village else ""),
        f"{who}: {spell(c.kind, c.amount, c.unit, c.description)}",
    ]
    buttons = [Button(MarkDone(c.id).pack(), _("Đã hoàn thành"))]
    if c.status == "registered":
        buttons = [
            Button(Approve(c.id).pack(), _("Xác nhận")),
            Button(Refuse(c.id).pack(), _("Từ chối")),
            *buttons,
        ]
    else:
        lines.append(_("Đã xác nhận, chờ hoàn thành."))
    return Reply("\n".join(lines), [buttons])


@router.command("duyet", "review", description=N_("Cán bộ: duyệt đóng góp"))
@router.button("review:list")
async def pending(ctx: Context) -> Reply | list[Reply]:
    """The contributions waiting for an official of these communes, oldest first."""
    communes = await my_communes(ctx)
    if not communes:
        return not_allowed(ctx)
    items = await ctx.services.contributions.pending_in(communes)
    if not items:
        return with_menu(_("Không có đóng góp nào đang chờ duyệt."))
    names = ctx.services.reference.communes
    return [
        Reply(_("Đóng góp đang chờ duyệt:")),
        *(_card(c, names[c.commune_code].name) for c in items),
    ]


async def _target(ctx: Context) -> Contribution:
    c = await ctx.services.contributions.get(ctx.payload.id)
    if c is None:
        raise StalePayload(f"no contribution {ctx.payload.id}")
    return c


async def _may_review(ctx: Context, c: Contribution) -> bool:
    """Whether this user is an official of the contribution's commune (or wider)."""
    return await ctx.services.officials.may(
        principal(ctx), "commune_official", c.commune_code, ctx.services.reference.province_code
    )


async def _move(ctx: Context, contribution_id: int, to: str, reason: str | None = None) -> Reply:
    """Change the status, audit it, and record the villager's notice in one transaction. The
    official's communes are part of the change's condition, so permission and status are
    checked by the same statement; only a refusal reads the contribution to explain it."""
    services = ctx.services
    communes = await my_communes(ctx)
    if not communes:
        return not_allowed(ctx)
    notices: list[Notice] = []

    async def notify(conn: AsyncConnection, changed: Contribution) -> None:
        default_locale = services.settings.default_locale
        villager = await services.users.load(changed.channel, changed.user_id, default_locale)
        with use_locale(villager.locale):
            text = _(NOTICES[to]).format(
                ref=changed.ref,
                amount=spell(changed.kind, changed.amount, changed.unit, changed.description),
                reason=reason or "",
            )
            reply = Reply(text, [[Button("contrib:mine", _("Đóng góp của tôi"))]])
            notices.append(await enqueue(conn, changed.channel, changed.user_id, reply))

    moved = await services.contributions.move(
        contribution_id, to, principal(ctx), reason, notify, communes=communes
    )
    if moved is None:
        c = await services.contributions.get(contribution_id)
        if c is None:
            raise StalePayload(f"no contribution {contribution_id}")
        if c.commune_code not in communes:
            return not_allowed(ctx)
        return with_menu(_("{ref} đã được xử lý rồi, không thay đổi gì thêm.").format(ref=c.ref))
    services.notifier.kick(*notices)  # the notice goes out right after this answer
    done = {
        CONFIRMED: _("Đã xác nhận {ref}."),
        DONE: _("Đã ghi hoàn thành {ref}."),
        REJECTED: _("Đã từ chối {ref}; người góp đã được báo lý do."),
    }
    return Reply(done[to].format(ref=moved.ref), [[Button("review:list", _("Duyệt tiếp"))]])


@router.button(Approve)
async def confirm(ctx: Context) -> Reply:
    """Confirms a registered contribution."""
    return await _move(ctx, ctx.payload.id, CONFIRMED)


@router.button(MarkDone)
async def mark_done(ctx: Context) -> Reply:
    """Marks a contribution as given."""
    return await _move(ctx, ctx.payload.id, DONE)


@router.button(Refuse)
async def reject(ctx: Context) -> Reply:
    """Asks for the reason the villager will read."""
    c = await _target(ctx)
    if not await _may_review(ctx, c):
        return not_allowed(ctx)
    ctx.user.enter(REASON, id=c.id, ref=c.ref)
    return _ask_reason(c.ref)


def _ask_reason(ref: str) -> Reply:
    return Reply(_("Lý do từ chối {ref}? Người góp sẽ đọc lý do này.").format(ref=ref))


async def _ask_reason_again(ctx: Context) -> Reply:
    return _ask_reason(str(ctx.user.state_data.get("ref", "")))


@router.step(REASON, ask=_ask_reason_again, parse=lambda text, ctx: text.strip() or None)
async def reason_typed(ctx: Context) -> Reply:
    """The rejection reason, then the rejection."""
    contribution_id = int(ctx.user.state_data.get("id", 0))
    ctx.user.leave()
    if await ctx.services.contributions.get(contribution_id) is None:
        return with_menu(_("Không tìm thấy đóng góp này."))
    return await _move(ctx, contribution_id, REJECTED, str(ctx.value)[:300])
