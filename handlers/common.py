"""Steps more than one feature leads into."""

from __future__ import annotations

from datetime import timedelta

from bot.core.conversation import Context, Reply
from bot.domain.i18n import _

ASK_COMMUNE = "onb:commune"


def ask_commune(ctx: Context, then: str | None = None) -> Reply:
    """Puts the user in the commune step; `then` is the button id to continue with after it."""
    ctx.user.enter(ASK_COMMUNE, then=then)
    return Reply(_("Bạn sống ở xã, phường nào? Hãy gõ tên, ví dụ: Chợ Đồn. Tên xã cũ cũng được."))


def example_day(ctx: Context, days: int = 16, year: bool = False) -> str:
    """A date to show in "for example …", always ahead of today, as villagers type it."""
    day = ctx.services.today() + timedelta(days=days)
    return day.strftime("%d/%m/%Y" if year else "%d/%m")


def example_moment(ctx: Context) -> str:
    """Tomorrow at 18:00, written the way an official would type it ("18:00 30/11")."""
    return "18:00 " + example_day(ctx, days=1)


def commune_of_official(ctx: Context) -> str | None:
    """The commune an official acts for here (an official route): the one they live in, or
    their only one; None for officials of several communes living elsewhere."""
    communes = ctx.official.communes
    code = ctx.user.commune_code if ctx.user.commune_code in communes else None
    if code is None and len(communes) == 1:
        code = communes[0]
    return code


# The button of the whole commune is named after it ("Xã Chợ Đồn"); people type what it means.
_WHOLE_COMMUNE = {"toan xa", "ca xa", "tat ca", "toan bo", "tat ca cac thon", "ca xa minh"}
_WHOLE_COMMUNE |= {"all", "everyone", "whole commune", "the whole commune", "all villages"}


def says_whole_commune(ctx: Context, text: str) -> bool:
    """ "toàn xã", "cả xã", "tất cả": the whole commune, at a question of whom to tell or ask."""
    return " ".join(ctx.services.understanding.words(text)) in _WHOLE_COMMUNE
