"""Replies for channels without buttons (terminal, Zalo): buttons become a numbered list.

The core maps a typed number back to the button offered last (`Incoming.numbered`), so a
channel only has to number the buttons in the order the replies list them.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError

from bot.core.conversation import Incoming, Reply
from bot.core.dispatch import Dispatcher
from bot.domain.i18n import _
from bot.domain.text import split_message

log = logging.getLogger(__name__)


def render_reply(reply: Reply, first_number: int = 1, hint: str | None = None) -> str:
    """A reply as plain text, its buttons numbered from first_number (hint above them)."""
    lines = [reply.text]
    buttons = reply.all_buttons()
    if buttons and hint:
        lines.extend(["", hint])
    for offset, button in enumerate(buttons):
        lines.append(f"  {first_number + offset}. {button.label}")
    return "\n".join(lines)


def render_unprompted(reply: Reply) -> str:
    """A message the person did not ask for (a notice): its buttons are listed to be typed, not
    numbered — a number means a button of the last answer, and the person may be in the middle
    of a step whose "1" is something else."""
    lines = [reply.text]
    buttons = reply.all_buttons()
    if buttons:
        lines.extend(["", _("Gõ một mục dưới đây nếu bạn muốn xem:")])
        lines.extend(f"  • {button.label}" for button in buttons)
    return "\n".join(lines)


def unprompted_parts(replies: list[Reply], limit: int) -> list[str]:
    """Unprompted replies as messages of at most `limit` characters (see render_unprompted)."""
    return [part for reply in replies for part in split_message(render_unprompted(reply), limit)]


def number_hint() -> str:
    """The line that tells a messenger user how to pick (in the current locale)."""
    return _("Gõ số để chọn:")


def render_parts(replies: list[Reply], limit: int, hint: str | None = None) -> list[str]:
    """All replies as messages of at most `limit` characters, numbered across replies."""
    parts: list[str] = []
    number = 1
    for reply in replies:
        parts.extend(split_message(render_reply(reply, number, hint), limit))
        number += len(reply.all_buttons())
    return parts


async def user_locale(dispatcher: Dispatcher, event: Incoming) -> str:
    """The language of someone the bot writes to unprompted (a notice)."""
    default = dispatcher.services.settings.default_locale
    try:
        profile = await dispatcher.services.users.load(event.channel, event.user_id, default)
    except SQLAlchemyError:
        log.warning("no profile for %s:%s; rendering in %s", *event.key, default)
        return default
    return profile.locale
