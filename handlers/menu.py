"""The main menu, help, small talk, cancel, asking before leaving a step, and the answers for
anything not understood."""

from __future__ import annotations

import logging

from bot.core.conversation import Button, Context, Reply, Router, Step
from bot.core.dispatch import UNSURE
from bot.core.officials import principal_of
from bot.domain.i18n import N_, _, fmt_number
from bot.domain.text import fold

log = logging.getLogger(__name__)
router = Router("menu")
ASK_FIRST = "menu:ask_first"  # "Bạn muốn dừng nhận tin? 1. Dừng 2. Tiếp tục"


def main_menu() -> list[list[Button]]:
    """The buttons every dead end offers, so nobody is ever stuck."""
    return [
        [Button("status:card", _("Tiến độ của xã")), Button("status:list", _("Các tiêu chí"))],
        [Button("contrib:start", _("Đóng góp")), Button("tally:list", _("Bảng đóng góp"))],
        [Button("proj:list", _("Công trình")), Button("poll:list", _("Bình chọn"))],
        [Button("report:start", _("Phản ánh")), Button("faq:list", _("Hỏi đáp"))],
        [Button("onb:change", _("Đổi xã")), Button("lang:menu", _("Ngôn ngữ"))],
        [Button("menu:help", _("Trợ giúp"))],
    ]


def with_menu(text: str) -> Reply:
    return Reply(text, main_menu())


@router.command("trogiup", "help", description=N_("Những gì Chung Sức làm được"))
@router.button("menu:help")
@router.intent("help")
async def show_help(ctx: Context) -> Reply:
    """Lists what the bot can do and how to ask."""
    return with_menu(ctx.services.renderer.render("help.txt"))


@router.command("menu", description=N_("Hiện menu chính"))
@router.button("menu:main")
@router.intent("menu")
async def show_menu(ctx: Context) -> Reply:
    """Shows the main menu, out of any step (the dispatcher asks first where a draft is lost)."""
    ctx.user.leave()
    return with_menu(_("Bạn muốn xem gì? Chọn một mục bên dưới."))


@router.intent("greeting")
async def greet(ctx: Context) -> Reply:
    """Hello back, and what the bot can do."""
    return with_menu(_("Chào bạn! Mình là Chung Sức. Bạn muốn xem gì? Chọn một mục bên dưới."))


@router.intent("thanks")
async def thanks(ctx: Context) -> Reply:
    """A short, warm answer to thanks."""
    return with_menu(_("Không có gì ạ! Cần gì bạn cứ nhắn cho mình nhé."))


@router.command("huy", "cancel", description=N_("Thoát bước đang làm"))
@router.intent("cancel")
async def cancel(ctx: Context) -> Reply:
    """Leaves whatever step the user is in (the one paused by "Bạn muốn hủy…?" included)."""
    user = ctx.user
    paused = user.state_data.get("paused") if user.state == ASK_FIRST else None
    if user.state is None or (user.state == ASK_FIRST and not (paused or {}).get("state")):
        user.leave()
        return with_menu(_("Không có việc gì đang làm dở. Bạn muốn làm gì?"))
    user.leave()
    return with_menu(_("Đã hủy. Bạn muốn làm gì tiếp?"))


def _cancel_buttons(ctx: Context) -> list[list[Button]]:
    """The "Hủy …" buttons on offer (under "Đóng góp của tôi": "Hủy CS-26-00007")."""
    return [
        [Button(button_id, label)]
        for button_id, label in ctx.user.offered
        if fold(label).startswith("huy ") and button_id != "menu:go"
    ]


# --- asking before a typed word stops or throws something away ------------------------------

QUESTIONS = {
    "stop": N_("Bạn muốn dừng nhận mọi thông báo?"),
    "cancel": N_("Bạn muốn hủy việc đang làm? Những gì bạn đã nhập sẽ không được lưu."),
}
QUESTIONS["menu"] = QUESTIONS["cancel"]  # "menu" in the middle of a draft: leaving loses it
# A command that starts another flow in the middle of a draft ("/doixa" mid-pledge): the same.
QUESTIONS["command"] = QUESTIONS["cancel"]
GO_LABELS = {"stop": N_("Dừng nhận tin"), "cancel": N_("Hủy"), "menu": N_("Menu")}
GO_LABELS["command"] = GO_LABELS["cancel"]
# "dừng lại" in the middle of a pledge more often means this pledge than the notices.
STOP_IN_A_STEP = N_("Bạn muốn dừng việc đang làm, hay dừng nhận mọi thông báo?")


async def ask_first(ctx: Context) -> Reply | list[Reply]:
    """Stop or cancel typed inside a step: ask, keeping the step to come back to."""
    user = ctx.user
    intent = str(ctx.value)
    paused = {"state": user.state, "data": user.state_data}
    if user.state == ASK_FIRST:
        paused = user.state_data["paused"]  # keep what was paused the first time
        if user.state_data.get("intent") == intent:  # "dừng" typed again: that is a yes
            if intent == "stop" and user.state_data.get("step"):
                return _asking(intent, True)  # unless it may mean the step: which one?
            return await go_ahead(ctx)
    if intent == "cancel" and not paused.get("state"):
        # Nothing in progress: "hủy" under a list of pledges means one of them; which one is
        # the villager's to press (each asks before it cancels anything).
        if found := _cancel_buttons(ctx):
            return Reply(_("Bạn muốn hủy đóng góp nào? Chọn ở dưới:"), found)
        return await cancel(ctx)
    # "dừng nhận tin" says which; "dừng" alone in a step may mean the step
    if intent == "command":  # done once the villager says yes (go_ahead)
        user.enter(ASK_FIRST, intent=intent, paused=paused, step=False, command=ctx.text)
        return _asking(intent)
    about_news = any(w in f" {fold(ctx.text)} " for w in _ABOUT_NEWS)
    user.enter(ASK_FIRST, intent=intent, paused=paused, step=not about_news)
    return _asking(intent, bool(paused.get("state")) and not about_news)


_ABOUT_NEWS = (" nhan tin", " tin nhan", " thong bao", " unsubscribe", " message", " notification")


def _asking(intent: str, in_a_step: bool = False) -> Reply:
    if intent == "stop" and in_a_step:
        return Reply(
            _(STOP_IN_A_STEP),
            [
                [Button("menu:quit", _("Dừng việc đang làm"))],
                [Button("menu:go", _(GO_LABELS[intent])), Button("menu:back", _("Tiếp tục"))],
            ],
        )
    return Reply(
        _(QUESTIONS[intent]),
        [[Button("menu:go", _(GO_LABELS[intent])), Button("menu:back", _("Tiếp tục"))]],
    )


async def _ask_again(ctx: Context) -> Reply:
    data = ctx.user.state_data
    in_a_step = bool((data.get("paused") or {}).get("state")) and bool(data.get("step"))
    return _asking(str(data.get("intent", "cancel")), in_a_step)


router.add_step(
    Step(
        ASK_FIRST,
        ask=_ask_again,
        buttons=("menu:go", "menu:back", "menu:quit"),
        yes="menu:go",
        no="menu:back",
        undoes=True,  # "dung" again at "dừng việc đang làm, hay nhận tin?" picks neither
    )
)


@router.button("menu:quit")
async def quit_step(ctx: Context) -> Reply:
    """Stop what was being done (not the notices): the step is left, as /huy leaves it."""
    ctx.user.leave()
    return with_menu(_("Đã dừng việc đang làm. Bạn vẫn nhận tin như trước. Bạn muốn làm gì tiếp?"))


@router.button("menu:go")
async def go_ahead(ctx: Context) -> Reply | list[Reply]:
    """Yes: do what was asked (stop receiving, cancel the step, or the command typed)."""
    intent = ctx.user.state_data.get("intent")
    if intent == "command" and ctx.again is not None:  # the command typed, now with no draft
        typed = str(ctx.user.state_data.get("command", ""))
        ctx.user.leave()
        return await ctx.again(typed)
    handler = ctx.router.intent_handler(str(intent)) if ctx.router else None
    if handler is None or intent == "cancel":
        return await cancel(ctx)
    ctx.user.leave()
    return await handler(ctx)


@router.button("menu:back")
async def go_back(ctx: Context) -> Reply | list[Reply]:
    """No: back to the step, asked again."""
    paused = ctx.user.state_data.get("paused") or {}
    step = ctx.router.steps.get(paused.get("state") or "") if ctx.router else None
    if step is None:
        ctx.user.leave()
        return await show_menu(ctx)
    ctx.user.enter(step.name, **paused.get("data", {}))
    return await step.ask(ctx)


# --- fallbacks -------------------------------------------------------------------------------


async def not_an_answer(ctx: Context) -> Reply:
    """Text inside a step that fits nothing (ctx.value: why, if the step said): the step is
    asked again right after this, with its buttons."""
    step = ctx.router.steps.get(ctx.user.state or "") if ctx.router else None
    if step is not None and step.undoes:  # "hủy" there may be its yes: no hint to type it
        return Reply(ctx.value if isinstance(ctx.value, str) else _(UNSURE))
    leave = _("Gõ “hủy” nếu bạn muốn thoát.")
    if isinstance(ctx.value, str):
        return Reply(f"{ctx.value}\n{leave}")
    return Reply("{} {}".format(_("Mình chưa hiểu câu trả lời này."), leave))


async def busy(ctx: Context) -> Reply:
    """An action asked for in the middle of a draft: finish or leave it first."""
    return Reply(_("Bạn đang làm dở một việc. Trả lời câu hỏi dưới đây, hoặc gõ “hủy” để thoát."))


async def not_allowed(ctx: Context) -> Reply:
    """An official action refused: by the guard (no grant covers this user here) or by the
    handler (not this official's commune, not this scope). One message, one log line."""
    event = ctx.event
    command = event.text.split()[0][:40] if event.text.startswith("/") else None
    tried = event.button or command or event.unsupported or "text"  # not what they typed
    log.warning(
        "%s refused an official action: %r (state %s)", principal_of(event), tried, ctx.user.state
    )
    return with_menu(_("Việc này chỉ cán bộ xã phụ trách mới làm được."))


async def not_understood(ctx: Context) -> Reply:
    """Anything the bot did not understand: say so kindly and offer the menu."""
    return with_menu(
        _(
            "Xin lỗi, mình chưa hiểu ý bạn. Bạn có thể chọn một mục bên dưới, "
            "hoặc hỏi ví dụ: “xã tôi đạt bao nhiêu tiêu chí?”."
        )
    )


async def unsupported(ctx: Context) -> Reply:
    """Stickers, photos, voice and the like."""
    return with_menu(
        _("Mình chỉ hiểu tin nhắn chữ và các nút bấm. Bạn hãy gõ câu hỏi hoặc chọn một mục.")
    )


async def too_long(ctx: Context) -> Reply:
    """A message longer than the bot reads."""
    return with_menu(
        _(
            "Tin nhắn dài quá, mình chỉ đọc được tối đa {limit} ký tự. Bạn viết ngắn lại nhé."
        ).format(limit=fmt_number(ctx.services.settings.max_message_chars))
    )
