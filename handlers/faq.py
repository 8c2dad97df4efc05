"""Short answers to common questions ("NTM là gì?", "OCOP là gì?") from content/faq.toml."""

from __future__ import annotations

from bot.core import Button, Context, Reply, Router, StalePayload
from bot.faq import FaqEntry
from bot.i18n import N_, _
from bot.reference import localized
from bot.text import fold
from handlers.menu import not_understood

router = Router("faq")


def _answer(entry: FaqEntry) -> Reply:
    return Reply(
        f"{localized(entry.question)}\n\n{localized(entry.answer)}",
        [[Button("faq:list", _("Câu hỏi khác")), Button("menu:main", _("Menu"))]],
    )


@router.command("hoidap", "faq", description=N_("Hỏi đáp về nông thôn mới"))
@router.button("faq:list")
async def faq_list(ctx: Context) -> Reply:
    """Lists the questions the bot can answer."""
    entries = ctx.services.faq.entries
    return Reply(
        _("Các câu hỏi thường gặp. Bạn chọn một câu, hoặc gõ câu hỏi của mình:"),
        [[Button(f"faq:q:{e.id}", localized(e.question))] for e in entries],
    )


@router.button("faq:q")
async def faq_button(ctx: Context) -> Reply:
    """The answer to a question chosen from the list."""
    entry = ctx.services.faq.get(ctx.args[0]) if len(ctx.args) == 1 else None
    if entry is None:
        raise StalePayload(f"no FAQ entry {ctx.args}")
    return _answer(entry)


@router.intent(lambda folded, ctx: ctx.services.faq.match(folded) is not None)
async def faq_typed(ctx: Context) -> Reply:
    """The answer to a question typed in words."""
    entry = ctx.services.faq.match(fold(ctx.text))
    return _answer(entry) if entry is not None else await not_understood(ctx)
