"""The main menu, help, cancel, and the answers for anything not understood."""

from __future__ import annotations

from bot.core import Button, Context, Reply, Router
from bot.i18n import N_, _, fmt_number

router = Router("menu")

CANCEL_WORDS = {"huy", "huy bo", "thoi", "thoat", "cancel", "quit", "exit"}
HELP_WORDS = {"tro giup", "giup", "giup do", "huong dan", "help", "menu", "bat dau lai"}


def main_menu() -> list[list[Button]]:
    """The buttons every dead end offers, so nobody is ever stuck."""
    return [
        [Button("status:card", _("Tiến độ của xã")), Button("status:list", _("Các tiêu chí"))],
        [Button("contrib:start", _("Đóng góp")), Button("tally:list", _("Bảng đóng góp"))],
        [Button("faq:list", _("Hỏi đáp")), Button("onb:change", _("Đổi xã"))],
        [Button("lang:menu", _("Ngôn ngữ")), Button("menu:help", _("Trợ giúp"))],
    ]


def with_menu(text: str) -> Reply:
    return Reply(text, main_menu())


@router.command("trogiup", "help", description=N_("Những gì Chung Sức làm được"))
@router.button("menu:help")
@router.intent(lambda folded, _ctx: folded in HELP_WORDS, anywhere=True)
async def show_help(ctx: Context) -> Reply:
    """Lists what the bot can do and how to ask."""
    return with_menu(ctx.services.renderer.render("help.txt"))


@router.command("menu", description=N_("Hiện menu chính"))
@router.button("menu:main")
async def show_menu(ctx: Context) -> Reply:
    """Shows the main menu."""
    return with_menu(_("Bạn muốn xem gì? Chọn một mục bên dưới."))


@router.command("huy", "cancel", description=N_("Thoát bước đang làm"))
@router.intent(lambda folded, _ctx: folded in CANCEL_WORDS, anywhere=True)
async def cancel(ctx: Context) -> Reply:
    """Leaves whatever step the user is in."""
    ctx.user.leave()
    return with_menu(_("Đã hủy. Bạn muốn làm gì tiếp?"))


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
