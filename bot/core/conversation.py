"""The conversation core's vocabulary: what comes in, what goes out, and how it is routed.

Nothing here knows a messenger. Channel adapters turn their updates into `Incoming` and
`Reply` back into their own messages; handlers see only these types.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, fields
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Literal,
    Self,
    TypeVar,
    get_args,
    get_origin,
    get_type_hints,
)

if TYPE_CHECKING:
    from bot.app.services import Services
    from bot.core.officials import Official
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
    location: tuple[float, float] | None = None  # (latitude, longitude), if the channel sent one
    document: Document | None = None  # a file sent, for the routes that take one
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
    photo: str | None = None  # a photo id of the user's channel, shown above the text there

    def all_buttons(self) -> list[Button]:
        return [b for row in self.buttons for b in row]


@dataclass(frozen=True)
class Document:
    """A file a user sent (a spreadsheet): its id on the channel, to fetch it; name and size
    as the channel says, so a file too big is refused before it is fetched."""

    file_id: str
    name: str
    size: int


class StalePayload(Exception):
    """A button id that parses but no longer means anything (or was forged)."""


class Unfit(Exception):
    """Typed text that is not a usable answer to the step; the message says why, kindly.

    `weak`: the text did not even look like this kind of answer (no digits at an amount), so
    what it may mean elsewhere (a question, the menu) comes first; a strong Unfit ("20 tỷ" is
    too much) is shown unless the user asked to stop or cancel."""

    def __init__(self, message: str, weak: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.weak = weak


# --- typed button payloads -------------------------------------------------------------------

_INT = re.compile(r"[0-9]{1,18}")  # ASCII digits only: "²" or "፩" are not numbers here
_TOKEN = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class Payload:
    """A button id of one kind, built and parsed in one place (like aiogram's CallbackData).

        @dataclass(frozen=True)
        class PickVillage(Payload, prefix="contrib:vil"):
            index: int

        PickVillage(2).pack() == "contrib:vil:2"; the handler gets ctx.payload == PickVillage(2).

    Fields are int (ASCII digits, at most 18), str (letters, digits, "_.-", at most 64) or a
    Literal of strings; anything else in a button id is stale or forged and never reaches the
    handler.
    """

    prefix: ClassVar[str] = ""

    def __init_subclass__(cls, prefix: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if prefix:
            cls.prefix = prefix

    def pack(self) -> str:
        return ":".join([self.prefix, *(str(getattr(self, f.name)) for f in fields(self))])  # type: ignore[arg-type]

    @classmethod
    def _spec(cls) -> list[tuple[str, Any]]:
        """(name, type) of each field, resolved once per class."""
        spec: list[tuple[str, Any]] | None = cls.__dict__.get("_resolved")
        if spec is None:
            hints = get_type_hints(cls)
            spec = [(f.name, hints[f.name]) for f in fields(cls)]  # type: ignore[arg-type]
            cls._resolved = spec  # type: ignore[attr-defined]
        return spec

    @classmethod
    def unpack(cls, parts: list[str]) -> Self:
        """The payload from the parts after the prefix; StalePayload if they do not fit."""
        declared = cls._spec()
        if len(parts) != len(declared):
            raise StalePayload(f"{cls.prefix}: {len(parts)} parts, {len(declared)} expected")
        values: dict[str, Any] = {}
        for (name, kind), raw in zip(declared, parts, strict=True):
            if kind is int:
                if not _INT.fullmatch(raw):
                    raise StalePayload(f"{cls.prefix}: {name}={raw[:30]!r} is not a number")
                values[name] = int(raw)
            elif get_origin(kind) is Literal:
                if raw not in get_args(kind):
                    raise StalePayload(f"{cls.prefix}: {name}={raw[:30]!r} is not offered")
                values[name] = raw
            else:
                if not _TOKEN.fullmatch(raw):
                    raise StalePayload(f"{cls.prefix}: {name}={raw[:30]!r} is malformed")
                values[name] = raw
        return cls(**values)


@dataclass
class Context:
    """What a handler gets: the event, the user's profile and the services."""

    event: Incoming
    user: UserProfile
    services: Services
    args: list[str] = field(default_factory=list)  # command arguments
    payload: Any = None  # the typed payload of the button pressed (see Payload)
    value: Any = None  # what the step's parser made of the typed text
    router: Router | None = None  # the root router, for handlers that resume a step
    official_or_none: Official | None = None  # set by the dispatcher's guard (see official)
    # Routes text as if the user had typed it now (a command that was asked about first).
    again: Callable[[str], Awaitable[Reply | list[Reply]]] | None = None

    @property
    def text(self) -> str:
        return self.event.text

    @property
    def official(self) -> Official:
        """The official acting, resolved once by the guard before an official route runs."""
        if self.official_or_none is None:
            raise LookupError("ctx.official outside an official route: declare official=True")
        return self.official_or_none


Handler = Callable[[Context], Awaitable["Reply | list[Reply]"]]
H = TypeVar("H", bound=Handler)
Parser = Callable[[str, "Context"], Any]  # the step's value, None if not an answer, or Unfit
Recognizer = Callable[["Context"], "float | None"]  # a score for an intent found by code


@dataclass(frozen=True)
class Step:
    """One question of a conversation, declared in one place.

    `ask` asks it (and asks it again after an error, with its buttons); `buttons` are the
    button-id prefixes it accepts (a button of another step re-asks this one); typed text goes
    first to a number or label of a button on offer, then to `yes`/`no` (prefixes of the buttons
    a yes or no word presses), then to `parse` and `answer`. `keeps`: leaving would lose what
    the user typed so far (a draft), so words that stop or cancel ask first. `bound`: its
    buttons are refused outside it (a village's number means nothing without the draft).
    `official`: the officials' guard checks every update made in it (bot/core/officials.py).
    `free`: its parser takes any words (a poll's question, a note), so a word that asks to leave
    ("hủy", "thoát", "menu", "dừng") typed alone is read as that, never as the text.
    `undoes`: its yes throws something away, so an ambiguous bare yes word presses nothing.
    """

    name: str
    ask: Handler
    answer: Handler | None = None
    parse: Parser | None = None
    buttons: tuple[str, ...] = ()
    yes: str | None = None
    no: str | None = None
    photos: bool = False
    locations: bool = False  # a location sent (Telegram) reaches `answer` too
    keeps: bool = False
    bound: bool = True  # its buttons mean nothing outside it (False: they work anywhere)
    official: bool = False  # only an official may be in it: the guard runs at every update
    free: bool = False  # any words are an answer, but a leaving word alone leaves (asked first)
    # Its yes throws something away (a pledge cancelled, every message stopped): a yes word
    # typed without the marks that tell it from others ("dung": đúng or dừng?) asks again.
    undoes: bool = False

    def accepts(self, button_id: str) -> bool:
        return any(button_id == p or button_id.startswith(p + ":") for p in self.buttons)


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
        self.payloads: dict[str, type[Payload]] = {}
        self.steps: dict[str, Step] = {}
        self.intents: dict[str, Handler] = {}  # intent name (content/intents.toml) → handler
        self.recognizers: list[tuple[str, Recognizer]] = []
        # A file sent outside a step that takes one: for officials only (the guard), or None.
        self.document: Handler | None = None
        # Routes behind the officials' guard: command names and button prefixes.
        self.official_commands: set[str] = set()
        self.official_buttons: set[str] = set()
        # step_of's index, for as many steps as there were when it was made (include adds).
        self._bound: tuple[int, dict[str, tuple[int, Step]]] | None = None

    def command(
        self, *names: str, description: str = "", menu: bool = True, official: bool = False
    ) -> Callable[[H], H]:
        """Handle /name; `official`: only an official gets to the handler (ctx.official)."""

        def register(handler: H) -> H:
            for name in names:
                self.commands[name] = handler
                if official:
                    self.official_commands.add(name)
            if description:
                self.command_specs.append(CommandSpec(names, description, menu))
            return handler

        return register

    def button(self, kind: str | type[Payload], official: bool = False) -> Callable[[H], H]:
        """Handle button ids of a payload class (typed: ctx.payload), or equal to a prefix;
        `official`: only an official gets to the handler (ctx.official)."""
        prefix = kind if isinstance(kind, str) else kind.prefix

        def register(handler: H) -> H:
            self.buttons[prefix] = handler
            if official:
                self.official_buttons.add(prefix)
            if not isinstance(kind, str):
                self.payloads[prefix] = kind
            return handler

        return register

    def step(self, name: str, ask: Handler, **options: Any) -> Callable[[H], H]:
        """Declare a step whose typed answers the decorated handler takes (see Step)."""

        def register(handler: H) -> H:
            self.add_step(Step(name, ask, handler, **options))
            return handler

        return register

    def add_step(self, step: Step) -> Step:
        if step.name in self.steps:
            raise ValueError(f"{self.name}: step {step.name} declared twice")
        self.steps[step.name] = step
        return step

    def on_document(self) -> Callable[[H], H]:
        """Handle a file an official sends (behind the guard: anyone else gets the
        `unsupported` fallback, as for any other file); one module of the bot may."""

        def register(handler: H) -> H:
            self.document = handler
            return handler

        return register

    def intent(self, name: str, recognize: Recognizer | None = None) -> Callable[[H], H]:
        """Answer an intent of content/intents.toml; `recognize` finds it by code as well."""

        def register(handler: H) -> H:
            self.intents[name] = handler
            if recognize is not None:
                self.recognizers.append((name, recognize))
            return handler

        return register

    def include(self, *routers: Router) -> Router:
        for router in routers:
            for table in ("commands", "buttons", "steps", "intents", "payloads"):
                mine: dict[str, Any] = getattr(self, table)
                clash = mine.keys() & getattr(router, table).keys()
                if clash:
                    raise ValueError(f"{router.name}: {table} already routed: {sorted(clash)}")
                mine.update(getattr(router, table))
            if router.document is not None:
                if self.document is not None:
                    raise ValueError(f"{router.name}: documents already routed")
                self.document = router.document
            self.command_specs.extend(router.command_specs)
            self.recognizers.extend(router.recognizers)
            self.official_commands |= router.official_commands
            self.official_buttons |= router.official_buttons
        return self

    def intent_handler(self, intent: str) -> Handler | None:
        """The handler of an intent: its own, or its family's ("faq:ntm" → "faq:*")."""
        handler = self.intents.get(intent)
        if handler is None and ":" in intent:
            handler = self.intents.get(intent.split(":", 1)[0] + ":*")
        return handler

    def find_button(self, button_id: str) -> tuple[str, Handler, list[str]] | None:
        parts = button_id.split(":")
        for cut in range(min(len(parts), 4), 0, -1):
            prefix = ":".join(parts[:cut])
            handler = self.buttons.get(prefix)
            if handler is not None:
                return prefix, handler, parts[cut:]
        return None

    def step_of(self, button_id: str) -> Step | None:
        """The step a button belongs to, if it belongs to one: the first declared of those
        whose buttons it is (Step.accepts), found by its prefixes rather than by asking
        every step."""
        if self._bound is None or self._bound[0] != len(self.steps):
            index: dict[str, tuple[int, Step]] = {}
            for order, step in enumerate(self.steps.values()):
                for prefix in step.buttons if step.bound else ():
                    index.setdefault(prefix, (order, step))
            self._bound = (len(self.steps), index)
        index = self._bound[1]
        parts = button_id.split(":")
        found = [
            index[p] for cut in range(len(parts)) if (p := ":".join(parts[: cut + 1])) in index
        ]
        return min(found, key=lambda pair: pair[0])[1] if found else None


def as_list(replies: Reply | Iterable[Reply]) -> list[Reply]:
    return [replies] if isinstance(replies, Reply) else list(replies)
