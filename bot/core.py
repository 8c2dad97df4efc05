"""The conversation core's vocabulary: what comes in, what goes out, and how it is routed.

Nothing here knows a messenger. Channel adapters turn their updates into `Incoming` and
`Reply` back into their own messages; handlers see only these types.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from bot.services import Services
    from bot.storage.users import UserProfile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Incoming:
    """One thing a user did: typed text, pressed a button, or sent something else."""

    channel: str  # telegram | terminal | zalo
    user_id: str
    text: str = ""  # cleaned (NFC, no invisible characters); may start with /command
    button: str | None = None  # a button id such as "status:crit:3"
    unsupported: str | None = None  # sticker, photo, voice … when that is what came
    photo: str | None = None  # a photo's id on its channel, for steps that take one
    message_id: str | None = None
    language_hint: str | None = None  # the client's language, if the channel tells
    display_name: str | None = None  # the name the messenger shows, if it tells
    numbered: bool = False  # the channel shows buttons as numbers; a typed number picks one

    @property
    def key(self) -> tuple[str, str]:
        return (self.channel, self.user_id)


@dataclass(frozen=True)
class Button:
    """A choice: the id is what comes back, the label is what the user reads."""

    id: str
    label: str


@dataclass
class Reply:
    text: str
    buttons: list[list[Button]] = field(default_factory=list)

    def all_buttons(self) -> list[Button]:
        return [b for row in self.buttons for b in row]


class StalePayload(Exception):
    """A button id that parses but no longer means anything (or was forged)."""


@dataclass
class Context:
    """What a handler gets: the event, the user's profile and the services."""

    event: Incoming
    user: UserProfile
    services: Services
    args: list[str] = field(default_factory=list)  # command arguments or button id parts

    @property
    def text(self) -> str:
        return self.event.text


Handler = Callable[[Context], Awaitable["Reply | list[Reply]"]]
H = TypeVar("H", bound=Handler)
Matcher = Callable[[str, "Context"], bool]  # gets the folded text and the context

_COMMAND = re.compile(r"^/([A-Za-z_]+)(?:@\w+)?(?:\s+(.*))?$", re.S)


def parse_command(text: str) -> tuple[str, str] | None:
    """ "/tieuchi 2" → ("tieuchi", "2"); "/start@ChungSucBot" → ("start", "")."""
    match = _COMMAND.match(text.strip())
    if not match:
        return None
    return match.group(1).lower(), (match.group(2) or "").strip()


@dataclass(frozen=True)
class CommandSpec:
    """A command for the messenger's menu: its names and a description per locale."""

    names: tuple[str, ...]
    description: str  # a msgid; translated when the menu is registered
    menu: bool = True


class Router:
    """Routes of one feature module; the root router includes them in a visible order."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.commands: dict[str, Handler] = {}
        self.command_specs: list[CommandSpec] = []
        self.buttons: dict[str, Handler] = {}
        self.states: dict[str, Handler] = {}
        self.photo_states: set[str] = set()  # steps that take a photo
        self.intents: list[tuple[Matcher, Handler]] = []
        self.anywhere: list[tuple[Matcher, Handler]] = []  # intents that also end any step

    def command(self, *names: str, description: str = "", menu: bool = True) -> Callable[[H], H]:
        def register(handler: H) -> H:
            for name in names:
                self.commands[name] = handler
            if description:
                self.command_specs.append(CommandSpec(names, description, menu))
            return handler

        return register

    def button(self, prefix: str) -> Callable[[H], H]:
        """Handle button ids equal to prefix or starting with "prefix:"."""

        def register(handler: H) -> H:
            self.buttons[prefix] = handler
            return handler

        return register

    def state(self, name: str, photos: bool = False) -> Callable[[H], H]:
        """Handle free text (and, with photos=True, a photo) while the user is in this step."""

        def register(handler: H) -> H:
            self.states[name] = handler
            if photos:
                self.photo_states.add(name)
            return handler

        return register

    def intent(self, matcher: Matcher, anywhere: bool = False) -> Callable[[H], H]:
        """Handle free text the matcher recognises: outside any step, or anywhere at all."""

        def register(handler: H) -> H:
            (self.anywhere if anywhere else self.intents).append((matcher, handler))
            return handler

        return register

    def include(self, *routers: Router) -> Router:
        for router in routers:
            for table in ("commands", "buttons", "states"):
                mine: dict[str, Any] = getattr(self, table)
                clash = mine.keys() & getattr(router, table).keys()
                if clash:
                    raise ValueError(f"{router.name}: {table} already routed: {sorted(clash)}")
                mine.update(getattr(router, table))
            self.photo_states |= router.photo_states
            self.command_specs.extend(router.command_specs)
            self.intents.extend(router.intents)
            self.anywhere.extend(router.anywhere)
        return self

    def find_button(self, button_id: str) -> tuple[Handler, list[str]] | None:
        parts = button_id.split(":")
        for cut in range(len(parts), 0, -1):
            handler = self.buttons.get(":".join(parts[:cut]))
            if handler is not None:
                return handler, parts[cut:]
        return None


def as_list(replies: Reply | Iterable[Reply]) -> list[Reply]:
    return [replies] if isinstance(replies, Reply) else list(replies)
