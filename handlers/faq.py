"""Short answers to common questions ("NTM là gì?", "OCOP là gì?") from content/faq.toml."""

from __future__ import annotations

from dataclasses import dataclass

from bot.content.faq import FaqEntry
from bot.content.reference import localized
from bot.core.conversation import Button, Context, Payload, Reply, Router, StalePayload
from bot.domain.i18n import N_, _
from handlers.menu import not_understood

router = Router("faq")


@dataclass(frozen=True)
class PickQuestion(Payload, prefix="faq:q"):
    id: str


def _answer(entry: FaqEntry) -> Reply:
    return Reply(
        f"{localized(entry.question)}\n\n{localized(entry.answer)}",
        [[Button("faq:list", _("Câu hỏi khác")), Button("menu:main", _("Menu"))]],
    )


@router.command("hoidap", "faq", description=N_("Hỏi đáp về nông thôn mới"))
@router.button("faq:list")
@router.intent("faq_list")
async def faq_list(ctx: Context) -> Reply:
    """Lists the questions the bot can answer."""
    entries = ctx.services.faq.entries
    return Reply(
        _("Các câu hỏi thường gặp. Bạn chọn một câu, hoặc gõ câu hỏi của mình:"),
        [[Button(PickQuestion(e.id).pack(), localized(e.question))] for e in entries],
    )


@router.button(PickQuestion)
async def faq_button(ctx: Context) -> Reply:
    """The answer to a question chosen from the list."""
    entry = ctx.services.faq.get(ctx.payload.id)
    if entry is None:
        raise StalePayload(f"no FAQ entry {ctx.payload.id}")
    return _answer(entry)


# Each FAQ entry is an intent ("faq:ntm") whose phrases are its keywords in content/faq.toml.
@router.intent("faq:*")
async def faq_typed(ctx: Context) -> Reply:
    """The answer to a question typed in words."""
    found = ctx.services.understanding.match(ctx.text)
    entry = None
    if found is not None and found.intent.startswith("faq:"):
        entry = ctx.services.faq.get(found.intent.removeprefix("faq:"))
    return _answer(entry) if entry is not None else await not_understood(ctx)
