"""Onboarding: greeting, language, and finding the user's commune by any name they use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from babel import Locale

from bot.content.areas import MAX_CHOICES, SearchResult
from bot.content.reference import Commune
from bot.core.conversation import (
    Button,
    Context,
    Handler,
    Payload,
    Reply,
    Router,
    StalePayload,
    Unfit,
    as_list,
)
from bot.domain.amounts import find_amount
from bot.domain.i18n import LOCALES, N_, _, use_locale
from bot.domain.text import fold
from handlers.campaigns import tallies
from handlers.common import ASK_COMMUNE, ask_commune
from handlers.contributions import start as start_contribution
from handlers.menu import main_menu, with_menu
from handlers.status import status_card
from handlers.subscriptions import subscribed_line

router = Router("onboarding")
# What a user asked for before we knew their commune, done once we know it.
CONTINUE: dict[str, Handler] = {
    "status:card": status_card,
    "contrib:start": start_contribution,
    "tally:list": tallies,
}

ASK_LANGUAGE = "onb:lang"
LANGUAGE_WORDS = {
    "vi": {"tieng viet", "viet", "vi", "vietnamese"},
    "en": {"english", "tieng anh", "anh", "en"},
}


@dataclass(frozen=True)
class PickLanguage(Payload, prefix="lang"):
    code: Literal["vi", "en"]


@dataclass(frozen=True)
class PickCommune(Payload, prefix="onb:pick"):
    code: str


def language_buttons() -> list[list[Button]]:
    # Each language is offered in its own name, whatever the current language is.
    names = {code: Locale.parse(code).display_name or code for code in LOCALES}
    return [
        [
            Button(PickLanguage(code).pack(), name[0].upper() + name[1:])  # type: ignore[arg-type]
            for code, name in names.items()
        ]
    ]


async def ask_language(ctx: Context) -> Reply:
    """The language question (asked again after an answer that fits nothing)."""
    if ctx.user.state != ASK_LANGUAGE:
        ctx.user.enter(ASK_LANGUAGE)
    return Reply(_("Chọn ngôn ngữ / Choose your language:"), language_buttons())


@router.command("start", description=N_("Bắt đầu lại từ đầu"), menu=False)
async def start_command(ctx: Context) -> list[Reply]:
    """A newcomer is onboarded; someone who has a commune is welcomed back with the menu
    (Telegram sends /start again when a person reopens the bot: their choices stay)."""
    commune = ctx.services.areas.get(ctx.user.commune_code or "")
    if commune is None:
        return await start(ctx)
    return [
        Reply(
            _(
                "Chào bạn trở lại! Bạn đang xem tin của {commune}. "
                "Muốn đổi xã hay ngôn ngữ thì chọn “Đổi xã”, “Ngôn ngữ”."
            ).format(commune=commune.name),
            main_menu(),
        )
    ]


async def start(ctx: Context) -> list[Reply]:
    """Greets the user and asks for their language, then their commune."""
    ctx.user.enter(ASK_LANGUAGE)
    greeting = _(
        "Xin chào! Mình là Chung Sức, trợ lý xây dựng nông thôn mới của {province}. "
        "Mình giúp bạn xem xã mình đã đạt bao nhiêu tiêu chí nông thôn mới và "
        "trả lời các câu hỏi thường gặp."
    ).format(province=ctx.services.reference.province_name)
    return [Reply(greeting), Reply(_("Chọn ngôn ngữ / Choose your language:"), language_buttons())]


async def newcomer(ctx: Context) -> Reply | list[Reply]:
    """A first message from someone without a commune: a commune's name is taken as the
    answer; anything else ("xin chào", "alo") is greeted and onboarded."""
    result = ctx.services.areas.search(ctx.text)
    if result.meant is not None or result.found:
        ctx.user.enter(ASK_COMMUNE)
        return await _commune_result(ctx, result)
    return await start(ctx)


@router.command("ngonngu", "language", description=N_("Đổi ngôn ngữ"))
@router.button("lang:menu")
async def choose_language(ctx: Context) -> Reply:
    """Offers the languages."""
    return Reply(_("Chọn ngôn ngữ / Choose your language:"), language_buttons())


@router.button(PickLanguage)
async def set_language(ctx: Context) -> Reply:
    """Switches the language; during onboarding, goes on to ask for the commune."""
    return await _switch_language(ctx, ctx.payload.code)


@router.intent("language")
async def language_words(ctx: Context) -> Reply:
    """ "tiếng Anh", "english please": switches at once; "ngôn ngữ" offers the languages."""
    wanted = _typed_language(ctx.text)
    short = len(ctx.services.understanding.words(ctx.text)) <= 3  # "english please", "tieng anh"
    if wanted is not None and wanted != ctx.user.locale and short:
        return await _switch_language(ctx, wanted)
    return await choose_language(ctx)


def _typed_language(text: str) -> str | None:
    padded = f" {fold(text)} "
    found = {
        locale for locale, words in LANGUAGE_WORDS.items() for w in words if f" {w} " in padded
    }
    return found.pop() if len(found) == 1 else None


async def _switch_language(ctx: Context, locale: str) -> Reply:
    user = ctx.user
    onboarding = user.state == ASK_LANGUAGE or user.commune_code is None
    user.locale = locale
    await ctx.services.subscriptions.follow(user.channel, user.user_id, user.commune_code, locale)
    with use_locale(locale):
        if onboarding:
            return ask_commune(ctx)
        user.leave()
        return with_menu(_("Đã chuyển sang tiếng Việt."))


def _language_or_commune(text: str, ctx: Context) -> tuple[str, object] | None:
    folded = fold(text)
    for locale, words in LANGUAGE_WORDS.items():
        if folded in words:
            return ("language", locale)
    result = ctx.services.areas.search(text)
    if result.meant is not None or result.found:
        return ("commune", result)
    return None


@router.step(
    ASK_LANGUAGE, ask=ask_language, buttons=("lang",), parse=_language_or_commune, bound=False
)
async def language_typed(ctx: Context) -> Reply | list[Reply]:
    """A typed answer to the language question; a commune's name is taken as the commune."""
    what, value = ctx.value
    if what == "language":
        return await _switch_language(ctx, str(value))
    ctx.user.enter(ASK_COMMUNE)
    assert isinstance(value, SearchResult)
    return await _commune_result(ctx, value)


@router.command("doixa", "commune", description=N_("Đổi xã của bạn"))
@router.button("onb:change")
@router.intent("change_commune")
async def change_commune(ctx: Context) -> Reply:
    """Asks for the commune again."""
    return ask_commune(ctx)


def _merger_lines(result: SearchResult) -> list[str]:
    lines = []
    for found in result.found:
        unit = found.via
        if unit is None or not found.communes:
            continue
        names = ", ".join(c.name for c in found.communes)
        if unit.level == "district":
            lines.append(_("{old} cũ nay gồm: {new}.").format(old=unit.name, new=names))
        else:
            lines.append(_("{old} cũ nay thuộc {new}.").format(old=unit.name, new=names))
    return lines


def _pick_buttons(communes: list[Commune]) -> list[list[Button]]:
    buttons = [Button(PickCommune(c.code).pack(), c.name) for c in communes[:MAX_CHOICES]]
    return [buttons[i : i + 2] for i in range(0, len(buttons), 2)]


def _commune_search(text: str, ctx: Context) -> SearchResult:
    result = ctx.services.areas.search(text)
    understanding = ctx.services.understanding
    if (
        result.meant is None
        and not result.found
        and (
            understanding.is_question(text)
            or understanding.match(text) is not None
            or find_amount(text) is not None
        )
    ):
        # "xã tôi đạt bao nhiêu tiêu chí", "2 triệu", "cảm ơn": no commune's near miss
        raise Unfit(
            _("Bạn cho mình biết xã của bạn trước nhé, rồi mình trả lời được. Ví dụ: Chợ Đồn.")
        )
    if result.meant is None and not result.found and not result.suggestions:
        raise Unfit(
            _(
                "Mình chưa tìm thấy “{query}” ở {province}. Bạn gõ lại tên xã, ví dụ: Chợ Đồn."
            ).format(query=text[:60], province=ctx.services.reference.province_name)
        )
    return result


async def _ask_commune_again(ctx: Context) -> Reply:
    return ask_commune(ctx, then=ctx.user.state_data.get("then"))


@router.step(
    ASK_COMMUNE, ask=_ask_commune_again, buttons=("onb:pick",), parse=_commune_search, bound=False
)
async def commune_typed(ctx: Context) -> Reply | list[Reply]:
    """Finds the commune the user typed: today's name, an old name, or a near miss."""
    return await _commune_result(ctx, ctx.value)


async def _commune_result(ctx: Context, result: SearchResult) -> Reply | list[Reply]:
    province = ctx.services.reference.province_name
    meant = result.meant
    if meant is not None:
        others = [c for c in result.communes if c != meant]
        if not others:
            return await _chosen(ctx, meant, _merger_lines(result))
        # Today's commune of that name is taken; the old units of the same name are offered.
        replies = await _chosen(ctx, meant, [])
        lines = [*_merger_lines(result), _("Nếu bạn ở xã khác trong số này, hãy chọn:")]
        return [*replies, Reply("\n".join(lines), _pick_buttons(others))]
    if result.found:
        lines = [*_merger_lines(result), _("Bạn ở xã, phường nào? Hãy chọn:")]
        return Reply("\n".join(lines), _pick_buttons(result.communes))
    return Reply(
        _("Mình chưa tìm thấy “{query}” ở {province}. Có phải bạn muốn chọn:").format(
            query=ctx.text[:60], province=province
        ),
        _pick_buttons(result.suggestions),
    )


@router.button(PickCommune)
async def commune_picked(ctx: Context) -> list[Reply]:
    """A commune chosen from the buttons."""
    commune = ctx.services.areas.get(ctx.payload.code)
    if commune is None:
        raise StalePayload(f"no commune {ctx.payload.code} in this province")
    return await _chosen(ctx, commune, [])


async def _chosen(ctx: Context, commune: Commune, lines: list[str]) -> list[Reply]:
    user = ctx.user
    then = user.state_data.get("then") if user.state == ASK_COMMUNE else None
    user.commune_code = commune.code
    user.leave()
    subscribed = await ctx.services.subscriptions.subscribe(
        user.channel, user.user_id, commune.code, user.locale
    )
    text = "\n".join(
        [
            *lines,
            _("Đã lưu: bạn ở {commune}, {province}.").format(
                commune=commune.name, province=ctx.services.reference.province_name
            ),
            *([subscribed_line()] if subscribed else []),
        ]
    )
    continuation = CONTINUE.get(then or "")
    if continuation is not None:
        return [Reply(text), *as_list(await continuation(ctx))]
    return [Reply(text, main_menu())]
