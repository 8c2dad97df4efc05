"""Steps more than one feature leads into."""

from __future__ import annotations

from bot.core import Context, Reply
from bot.i18n import _

ASK_COMMUNE = "onb:commune"


def ask_commune(ctx: Context, then: str | None = None) -> Reply:
    """Puts the user in the commune step; `then` is the button id to continue with after it."""
    ctx.user.enter(ASK_COMMUNE, then=then)
    return Reply(_("Bạn sống ở xã, phường nào? Hãy gõ tên, ví dụ: Chợ Đồn. Tên xã cũ cũng được."))
