"""Dân làm: a villager's own contributions, their status, and cancelling one not yet confirmed."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.core.conversation import Button, Context, Payload, Reply, Router, StalePayload, Step
from bot.domain.i18n import N_, _, fmt_date
from bot.domain.quantities import spell
from bot.domain.text import fold
from bot.storage.contributions import Contribution
from handlers.menu import main_menu, with_menu

router = Router("ledger")
_RECEIPT = re.compile(r"\bcs\s*-?\s*\d{2}\s*-?\s*\d{3,6}\b")  # "CS-26-00123", typed any way


@dataclass(frozen=True)
class Withdraw(Payload, prefix="contrib:withdraw"):
    id: int


@dataclass(frozen=True)
class Withdrawn(Payload, prefix="contrib:withdrawn"):
    id: int


def _names_a_receipt(ctx: Context) -> float | None:
    """A receipt code typed ("CS-26-00123 sao rồi", "hủy CS-26-00123"): the user's own list."""
    return 95.0 if _RECEIPT.search(fold(ctx.text)) else None


STATUS_NAMES = {
    "registered": N_("đã đăng ký"),
    "confirmed": N_("đã xác nhận"),
    "done": N_("đã hoàn thành"),
    "cancelled": N_("đã hủy"),
    "rejected": N_("bị từ chối"),
}


@router.command("cuatoi", "mine", description=N_("Đóng góp của tôi"))
@router.button("contrib:mine")
@router.intent("my_pledges", recognize=_names_a_receipt)
async def mine(ctx: Context) -> Reply:
    """The villager's contributions with their status; pending ones can be cancelled."""
    items = await ctx.services.contributions.of_user(*ctx.event.key)
    if not items:
        return Reply(
            _("Bạn chưa đăng ký đóng góp nào."),
            [[Button("contrib:start", _("Đóng góp")), Button("menu:main", _("Menu"))]],
        )
    lines = [_("Đóng góp của bạn:")]
    buttons = []
    for c in items:
        amount = spell(c.kind, c.amount, c.unit, c.description)
        line = f"• {c.ref}: {amount} — {_(STATUS_NAMES[c.status])}"
        if c.due_on:
            line += " " + _("(hẹn {date})").format(date=fmt_date(c.due_on))
        if c.reason:
            line += " " + _("— lý do: {reason}").format(reason=c.reason)
        lines.append(line)
        if c.status == "registered":
            buttons.append([Button(Withdraw(c.id).pack(), _("Hủy {ref}").format(ref=c.ref))])
    buttons.append([Button("contrib:start", _("Đóng góp")), Button("menu:main", _("Menu"))])
    return Reply("\n".join(lines), buttons)


async def _own(ctx: Context) -> Contribution:
    c = await ctx.services.contributions.get(ctx.payload.id)
    if c is None or (c.channel, c.user_id) != ctx.event.key:
        raise StalePayload(f"not the user's contribution: {ctx.payload}")
    return c


WITHDRAW = "contrib:withdrawing"


async def _ask_withdraw(ctx: Context) -> Reply:
    """Asks before cancelling a contribution not yet confirmed: a step, so "đúng" (or "dung")
    typed presses "Đúng, hủy" and "không" keeps it — never a word read as something else."""
    c = await ctx.services.contributions.get(int(ctx.user.state_data.get("id", 0)))
    if c is None or (c.channel, c.user_id) != ctx.event.key:
        ctx.user.leave()
        return await mine(ctx)
    return Reply(
        _("Hủy đăng ký {ref}: {amount}?").format(
            ref=c.ref, amount=spell(c.kind, c.amount, c.unit, c.description)
        ),
        [[Button(Withdrawn(c.id).pack(), _("Đúng, hủy")), Button("contrib:keep", _("Không"))]],
    )


_YES_WORDS = {"huy", "dung", "bo", "di", "luon", "ok"}  # "hủy", "hủy bỏ", "hủy đi", "đúng hủy"
_NO_WORDS = {"khong", "chua"}


def _withdraw_said(text: str, ctx: Context) -> str | None:
    """ "hủy" alone answers "Hủy đăng ký …?" yes (it was "Đã hủy" of the question, the pledge
    kept and the villager told it was cancelled); "thôi", "bỏ qua", "không hủy" keep it."""
    understanding = ctx.services.understanding
    words = set(understanding.words(text))
    if words & _NO_WORDS:
        return "no"
    if "huy" in words and words <= _YES_WORDS:
        return "yes"
    found = understanding.match(text)
    return "no" if found is not None and found.intent == "cancel" else None


async def withdraw_typed(ctx: Context) -> Reply:
    """The answer typed: cancel the pledge, or keep it."""
    if ctx.value == "yes":
        ctx.payload = Withdrawn(int(ctx.user.state_data.get("id", 0)))
        return await withdrawn(ctx)
    return await keep(ctx)


router.add_step(
    Step(
        WITHDRAW,
        ask=_ask_withdraw,
        answer=withdraw_typed,
        parse=_withdraw_said,
        buttons=(Withdrawn.prefix, "contrib:keep"),
        yes=Withdrawn.prefix,
        no="contrib:keep",
        bound=False,  # an old "Đúng, hủy" still means what it says (it checks the status)
        undoes=True,  # "dung" alone may be "dừng" (leave it): asked again
    )
)


@router.button(Withdraw)
async def withdraw(ctx: Context) -> Reply:
    c = await _own(ctx)
    ctx.user.enter(WITHDRAW, id=c.id)
    return await _ask_withdraw(ctx)


@router.button("contrib:keep")
async def keep(ctx: Context) -> Reply:
    """Not cancelled after all: the list again."""
    ctx.user.leave()
    return await mine(ctx)


@router.button(Withdrawn)
async def withdrawn(ctx: Context) -> Reply:
    """Cancels it, if no official has confirmed it meanwhile."""
    c = await _own(ctx)
    ctx.user.leave()
    moved = await ctx.services.contributions.move(c.id, "cancelled", f"{c.channel}:{c.user_id}")
    if moved is None:
        return with_menu(_("Không hủy được: {ref} đã được cán bộ xử lý.").format(ref=c.ref))
    return Reply(_("Đã hủy {ref}.").format(ref=c.ref), main_menu())
