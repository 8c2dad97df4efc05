"""Officials confirm, reject (with a reason) or mark done the contributions of their communes;
the villager is told each time, in their own language. Every route here is official: the
dispatcher's guard has put the official on ctx.official before any of them runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncConnection

from bot.core.conversation import Button, Context, Payload, Reply, Router, StalePayload
from bot.delivery.notify import Notice, enqueue
from bot.domain.i18n import N_, _, fmt_date, fmt_number, use_locale
from bot.domain.quantities import spell
from bot.storage.contributions import (
    CONFIRMED,
    DONE,
    REGISTERED,
    REJECTED,
    Campaign,
    Contribution,
)
from handlers.menu import not_allowed, with_menu

router = Router("review")
REASON = "review:reason"
PAGE = 5  # cards per page: a phone screen or two
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


@dataclass(frozen=True)
class NextPage(Payload, prefix="review:more"):
    """The list after the last one shown: its status and id (see ContributionStore.pending_in)."""

    status: Literal["registered", "confirmed"]
    after: int


def _card(c: Contribution, commune_name: str, campaign: Campaign | None) -> Reply:
    """One contribution; its buttons carry its id, so they mean it however the list moves."""
    who = c.display_name if c.show_name and c.display_name else _("Một hộ dân")
    lines = [f"{c.ref} · {commune_name}" + (f" · {c.village}" if c.village else "")]
    if campaign is not None:
        lines.append(campaign.name)
    lines.append(f"{who}: {spell(c.kind, c.amount, c.unit, c.description)}")
    if c.due_on:
        lines.append(_("Hẹn ngày: {date}").format(date=fmt_date(c.due_on)))
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


@router.command("duyet", "review", description=N_("Cán bộ: duyệt đóng góp"), official=True)
@router.button("review:list", official=True)
async def pending(ctx: Context) -> Reply | list[Reply]:
    """The first page of what waits for an official of these communes: new pledges first."""
    return await _page(ctx, None)


@router.button(NextPage, official=True)
async def next_page(ctx: Context) -> Reply | list[Reply]:
    """The page after the one shown."""
    return await _page(ctx, (ctx.payload.status, ctx.payload.after))


async def _page(ctx: Context, after: tuple[str, int] | None) -> Reply | list[Reply]:
    communes = list(ctx.official.communes)
    page = await ctx.services.contributions.pending_in(communes, limit=PAGE, after=after)
    if not page.items:
        return with_menu(_("Không có đóng góp nào đang chờ duyệt."))
    names, campaigns = ctx.services.reference.communes, ctx.services.campaigns
    replies: list[Reply] = []
    heading = None
    for c in page.items:  # pending first, then confirmed ones waiting to be marked done
        if c.status != heading:
            heading = c.status
            replies.append(
                Reply(
                    _("Đóng góp đang chờ duyệt:")
                    if c.status == REGISTERED
                    else _("Đã xác nhận, chờ ghi hoàn thành:")
                )
            )
        replies.append(_card(c, names[c.commune_code].name, await campaigns.get(c.campaign_id)))
    if page.more:
        last = page.items[-1]
        status: Literal["registered", "confirmed"] = (
            "registered" if last.status == REGISTERED else "confirmed"
        )
        replies.append(
            Reply(
                _("Còn {count} đóng góp nữa.").format(count=fmt_number(page.more)),
                [[Button(NextPage(status, last.id).pack(), _("Trang sau"))]],
            )
        )
    return replies


async def _target(ctx: Context) -> Contribution:
    c = await ctx.services.contributions.get(ctx.payload.id)
    if c is None:
        raise StalePayload(f"no contribution {ctx.payload.id}")
    return c


async def _move(ctx: Context, contribution_id: int, to: str, reason: str | None = None) -> Reply:
    """Change the status, audit it, and record the villager's notice in one transaction. The
    official's communes are part of the change's condition, so permission and status are
    checked by the same statement; only a refusal reads the contribution to explain it."""
    services, official = ctx.services, ctx.official
    communes = list(official.communes)
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
            claim = services.notifier.claim_until(changed.channel, changed.user_id)
            notices.append(
                await enqueue(conn, changed.channel, changed.user_id, reply, claim_until=claim)
            )

    moved = await services.contributions.move(
        contribution_id, to, official.principal, reason, notify, communes=communes
    )
    if moved is None:
        c = await services.contributions.get(contribution_id)
        if c is None:
            raise StalePayload(f"no contribution {contribution_id}")
        if not official.covers(c.commune_code):
            return await not_allowed(ctx)
        return with_menu(_("{ref} đã được xử lý rồi, không thay đổi gì thêm.").format(ref=c.ref))
    services.notifier.kick(*notices)  # the notice goes out right after this answer
    done = {
        CONFIRMED: _("Đã xác nhận {ref}."),
        DONE: _("Đã ghi hoàn thành {ref}."),
        REJECTED: _("Đã từ chối {ref}; người góp đã được báo lý do."),
    }
    return Reply(done[to].format(ref=moved.ref), [[Button("review:list", _("Duyệt tiếp"))]])


@router.button(Approve, official=True)
async def confirm(ctx: Context) -> Reply:
    """Confirms a registered contribution."""
    return await _move(ctx, ctx.payload.id, CONFIRMED)


@router.button(MarkDone, official=True)
async def mark_done(ctx: Context) -> Reply:
    """Marks a contribution as given."""
    return await _move(ctx, ctx.payload.id, DONE)


@router.button(Refuse, official=True)
async def reject(ctx: Context) -> Reply:
    """Asks for the reason the villager will read."""
    c = await _target(ctx)
    if not ctx.official.covers(c.commune_code):  # another commune's contribution
        return await not_allowed(ctx)
    ctx.user.enter(REASON, id=c.id, ref=c.ref)
    return _ask_reason(c.ref)


def _ask_reason(ref: str) -> Reply:
    return Reply(_("Lý do từ chối {ref}? Người góp sẽ đọc lý do này.").format(ref=ref))


async def _ask_reason_again(ctx: Context) -> Reply:
    return _ask_reason(str(ctx.user.state_data.get("ref", "")))


@router.step(
    REASON,
    ask=_ask_reason_again,
    parse=lambda text, ctx: text.strip() or None,
    official=True,
    free=True,
)
async def reason_typed(ctx: Context) -> Reply:
    """The rejection reason, then the rejection."""
    contribution_id = int(ctx.user.state_data.get("id", 0))
    ctx.user.leave()
    if await ctx.services.contributions.get(contribution_id) is None:
        return with_menu(_("Không tìm thấy đóng góp này."))
    return await _move(ctx, contribution_id, REJECTED, str(ctx.value)[:300])
