"""The dispatcher: one update in, replies out. Same path for every channel.

Updates from one user are handled one at a time, in arrival order; different users run
concurrently. Any failure becomes a short apology in the user's language and a log line.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from rapidfuzz import fuzz
from rapidfuzz.distance import OSA
from sqlalchemy.exc import SQLAlchemyError

from bot.core.conversation import (
    Context,
    Handler,
    Incoming,
    Reply,
    Router,
    StalePayload,
    Step,
    Unfit,
    as_list,
    parse_command,
)
from bot.core.officials import resolve_official
from bot.core.understanding import Match, Understanding
from bot.domain.amounts import spelled_number
from bot.domain.i18n import N_, _, use_locale
from bot.domain.text import fold

if TYPE_CHECKING:
    from bot.app.services import Services

log = logging.getLogger(__name__)
Deliver = Callable[[list[Reply]], Awaitable[None]]


@dataclass(frozen=True)
class Fallbacks:
    """What to answer when nothing else applies."""

    unknown: Handler  # text not understood, unknown command, forged or stale button
    unsupported: Handler  # sticker, photo, voice …
    too_long: Handler
    newcomer: Handler  # a first message from someone without a commune (onboarding)
    ask_first: Handler  # stop or cancel typed inside a step: ctx.value holds the intent
    not_an_answer: Handler  # text inside a step that fits nothing: ctx.value holds the Step
    busy: Handler  # an action asked for in the middle of a step that keeps a draft
    not_allowed: Handler  # an official route, and no grant covers this user (the guard)


class KeyedLocks:
    """An asyncio lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[object, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: object) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


# Commands that end a step at once: they stop, cancel or start over.
LEAVING_COMMANDS = {"huy", "cancel", "dung", "stop", "unsubscribe", "start"}
# Commands that leave a step without saying so: in a step that keeps a draft they ask first,
# as the same words typed do ("menu").
ASKING_COMMANDS = {"menu"}
# Destructive intents that only leave the step: outside a draft they need no asking.
_ONLY_LEAVING = {"cancel", "menu"}
_PICK = re.compile(r"[0-9]{1,3}")  # ASCII digits: "²", "፩" and 4,000-digit numbers are text


# Buttons that leave what is being done (the menu, stopping the notices): typed, they ask first.
LEAVING_BUTTONS = ("menu:main", "sub:stop")
# Typed bare and alone, these are more often other words: "ba" father, "nam" a year or a
# name, "sau" after, "bay" now, "tam" roughly, "tu" from. "số ba" and "bảy" are numbers.
_BARE_WORDS = {"ba", "nam", "sau", "bay", "tam", "tu"}


# A yes word that may mean another ("dung") where yes throws something away (Step.undoes).
UNSURE = N_("Mình chưa chắc bạn chọn gì. Bạn gõ số của lựa chọn ở dưới nhé.")


_WHY = (" sao ", " vi sao ", " tai sao ", " lam sao ", " the nao ", " ntn ", " why ", " how ")


def _a_question(text: str) -> bool:
    """Whether the words ask (a "?", "sao", "tại sao", "why") rather than tell."""
    return "?" in text or any(w in f" {fold(text)} " for w in _WHY)


def _flow(state: str | None) -> str:
    """The flow a step belongs to: its name's prefix ("contrib:amount" → "contrib")."""
    return (state or "").split(":", 1)[0]


def _number_typed(text: str) -> tuple[int, bool] | None:
    """A button's number: "2", or in words ("hai", "số ba", "bảy", "mười"); and whether in
    digits."""
    if _PICK.fullmatch(text):
        return int(text), True
    said = _said(text)
    return (said, False) if said is not None else None


def _said(text: str) -> int | None:
    folded = fold(text)
    if folded.startswith("so ") and _PICK.fullmatch(folded[3:]):
        return int(folded[3:])
    if folded.startswith("so "):
        return spelled_number(text.split(maxsplit=1)[1], whole=True)
    if text.isascii() and folded in _BARE_WORDS:
        return None
    return spelled_number(text, whole=True)


def picked_by_number(event: Incoming, offered: list[list[str]]) -> Incoming:
    """On a channel without buttons, "2" (or "hai", "số 2") means the second button offered
    last."""
    if not event.numbered or not offered:
        return event
    typed = _number_typed(event.text.strip())
    if typed is None or not 1 <= typed[0] <= len(offered):
        return event
    button = offered[typed[0] - 1][0]
    if not typed[1] and button in LEAVING_BUTTONS:
        return event  # "mot" where 1 is "Hủy": a word is not enough to throw a draft away
    return replace(event, text="", button=button)


def picked_by_label(
    understanding: Understanding,
    text: str,
    offered: list[list[str]],
    skip: tuple[str, ...] = (),
    partial: bool = True,
) -> str | None:
    """The button on offer whose label was typed ("na lang" for “Nà Làng”, small typos too).

    A label on several buttons ("Xác nhận" under each card of a list) names none of them:
    taking the first would make the words mean whatever the list shows first. With `partial`
    False only the whole label (or one typo of it) counts."""
    typed = fold(text)
    if len(typed) < 2:
        return None
    exact: set[str] = set()
    near: list[str] = []
    for button_id, label in offered:
        key = fold(label)
        if not key or button_id in skip:
            continue
        if key == typed:
            if understanding.same_marks(text, label):
                exact.add(button_id)
            continue
        close = OSA.distance(typed, key) <= 1 or fuzz.ratio(typed, key) >= 90
        if len(typed) >= 5 and close and understanding.same_marks(text, label):
            near.append(button_id)  # one typo ("na lamg"), or most of a long label
    if exact:
        return exact.pop() if len(exact) == 1 else None
    if near:
        return near[0] if len(near) == 1 else None
    if not partial:
        return None
    # Part of one label only ("kenh muong" for “Làm kênh mương nội đồng”, "an danh").
    words = typed.split()
    if len(words) < 2 and len(typed) < 5:
        return None
    part = [
        (button_id, label)
        for button_id, label in offered
        if button_id not in skip
        and _within(words, fold(label).split())
        and understanding.same_marks(text, label)
    ]
    if len(part) > 1:  # "hài lòng" under “Hài lòng” and “Chưa hài lòng”: the one without a not
        part = [(i, label) for i, label in part if not _NEGATIONS & _added(words, label)]
    return part[0][0] if len(part) == 1 else None


_NEGATIONS = {"chua", "khong", "ko"}


def _added(words: list[str], label: str) -> set[str]:
    return set(fold(label).split()) - set(words)


def _within(words: list[str], label: list[str]) -> bool:
    n = len(words)
    return n < len(label) and any(label[i : i + n] == words for i in range(len(label) - n + 1))


def _is_of(button_id: str, prefix: str | None) -> bool:
    return bool(prefix) and (button_id == prefix or button_id.startswith(f"{prefix}:"))


_WORDS = re.compile(r"[^\W_]+")


def _less_label(text: str, offered: list[list[str]], prefix: str) -> str:
    """The text without the words of the yes button's label: "đúng, gửi" under “Gửi” is
    "đúng", "không gửi" is "không"; "" if that leaves nothing, or no such button is offered."""
    label = next((label for i, label in offered if _is_of(i, prefix)), None)
    if label is None:
        return ""
    said = set(fold(label).split())
    return " ".join(w for w in _WORDS.findall(text) if fold(w) not in said)


def apology() -> Reply:
    return Reply(_("Xin lỗi, hệ thống đang gặp sự cố. Bạn vui lòng thử lại sau ít phút."))


class Dispatcher:
    def __init__(self, services: Services, router: Router, fallbacks: Fallbacks) -> None:
        self.services = services
        self.router = router
        self.fallbacks = fallbacks
        self.locks = KeyedLocks()

    async def handle(self, event: Incoming, deliver: Deliver | None = None) -> list[Reply]:
        """Answer one event; never raises for the user's sake.

        `deliver`, when given, sends the replies before the user's lock is released, so a
        slow send cannot let the answer to a later message overtake this one.
        """
        async with self.locks.hold(event.key):
            replies, locale = await self._answer(event)
            if deliver is not None:
                with use_locale(locale):  # what the channel adds (a hint) in the same language
                    await deliver(replies)
            return replies

    async def _answer(self, event: Incoming) -> tuple[list[Reply], str]:
        """The replies, and the language they are in."""
        default_locale = self.services.settings.default_locale
        try:
            user = await self.services.users.load(event.channel, event.user_id, default_locale)
        except SQLAlchemyError:
            log.exception("loading user %s:%s failed", event.channel, event.user_id)
            with use_locale(default_locale):
                return [apology()], default_locale
        before = user.snapshot()
        user.seen(self.services.clock.utcnow())
        event = picked_by_number(event, user.offered)
        with use_locale(user.locale):
            try:
                replies = as_list(await self._route(Context(event, user, self.services)))
                user.offered = [[b.id, b.label] for r in replies for b in r.all_buttons()]
                await self.services.users.save(before, user)
            except Exception:
                log.exception(
                    "handling %s from %s:%s failed",
                    event.button or event.unsupported or "text",
                    event.channel,
                    event.user_id,
                )
                return [apology()], user.locale
        return replies, user.locale

    async def _route(self, ctx: Context) -> Reply | list[Reply]:
        event, user, router = ctx.event, ctx.user, self.router
        ctx.router = router

        async def again(text: str) -> Reply | list[Reply]:
            return await self._route(
                Context(replace(event, text=text, button=None), user, ctx.services)
            )

        ctx.again = again
        step = router.steps.get(user.state or "")
        if user.state is not None and step is None:
            log.warning("unknown conversation state %r; leaving it", user.state)
            user.leave()
        if self._in_official_flow(user.state_data, step) and not await self._admit(ctx):
            refused = await self.fallbacks.not_allowed(ctx)
            user.leave()  # a grant revoked mid-flow: the flow (and its draft) ends here
            return refused
        if event.unsupported:
            taken = step is not None and (
                (event.photo and step.photos) or (event.location and step.locations)
            )
            if taken and step is not None and step.answer is not None:
                return await step.answer(ctx)
            if event.document and router.document is not None and await self._admit(ctx):
                if step is not None and step.keeps:  # a draft is not thrown away for a file
                    busy = as_list(await self.fallbacks.busy(ctx))
                    return [*busy, *as_list(await step.ask(ctx))]
                user.leave()
                return await router.document(ctx)
            return await self.fallbacks.unsupported(ctx)
        if event.button is not None:
            return await self._button(ctx, event.button, step)
        if len(event.text) > self.services.settings.max_message_chars:
            return await self.fallbacks.too_long(ctx)
        command = parse_command(event.text)
        if command is not None:
            name, args = command
            handler = router.commands.get(name)
            if handler is None:
                log.info("unknown command /%s", name)
                return await self.fallbacks.unknown(ctx)
            if name in router.official_commands and not await self._admit(ctx):
                refused = as_list(await self.fallbacks.not_allowed(ctx))
                if step is not None and step.keeps:  # nothing changes: the draft goes on
                    return [*refused, *as_list(await step.ask(ctx))]
                return refused
            ctx.args = args.split() if args else []
            if step is not None and step.keeps and name in ASKING_COMMANDS:
                ctx.value = name  # "/menu" in the middle of a draft: leave it? asked first
                return await self.fallbacks.ask_first(ctx)
            if step is None or not step.keeps or name in LEAVING_COMMANDS:
                if name not in ("huy", "cancel"):  # cancelling says what it left
                    user.leave()  # an exact command acts at once, whatever the step
                return await handler(ctx)
            # "/tiendo" in the middle of a pledge: answered, and the pledge goes on. A command
            # that starts this flow afresh ("/dongop" again) starts it, asked once; one that
            # starts another flow ("/doixa" from Telegram's command menu mid-pledge) would
            # throw the draft away: the draft is kept and the villager asked first.
            state, data = user.state, user.state_data
            replies = as_list(await handler(ctx))
            if user.state == state and user.state_data is data:
                user.enter(step.name, **data)
                return [*replies, *as_list(await step.ask(ctx))]
            if _flow(user.state) == _flow(state):
                return replies
            user.enter(step.name, **data)
            ctx.value = "command"
            return await self.fallbacks.ask_first(ctx)
        if step is not None:
            return await self._in_step(ctx, step)
        understanding = self.services.understanding
        # Part of a label counts unless the words are themselves a request: "phản ánh" under
        # a receipt's "Phản ánh của tôi" files a new report, it does not list the old ones.
        found = understanding.match(event.text)
        partial = found is None or found.how != "exact"
        pressed = picked_by_label(understanding, event.text, user.offered, partial=partial)
        if pressed is not None:
            return await self._button(ctx, pressed, None)
        return await self._outside(ctx)

    def _in_official_flow(self, data: dict[str, Any], step: Step | None) -> bool:
        """Whether the user is in a step only officials may be in, or has paused one to be
        asked before stopping or cancelling (its data keeps the step to go back to)."""
        if step is None:
            return False
        paused = data.get("paused")
        name = paused.get("state") if isinstance(paused, dict) else None
        resumes = self.router.steps.get(name) if isinstance(name, str) else None
        return step.official or (resumes is not None and resumes.official)

    async def _admit(self, ctx: Context) -> bool:
        """The officials' guard, for every official route: resolves the official once per
        update onto ctx.official; False for someone whom no grant covers here."""
        if ctx.official_or_none is None:
            ctx.official_or_none = await resolve_official(ctx)
        return ctx.official_or_none is not None

    def understand(self, ctx: Context) -> Match | None:
        """The intent of the typed text: examples from content/intents.toml and recognisers."""
        understanding = self.services.understanding
        found = understanding.match(ctx.text)
        question = None
        for name, recognize in self.router.recognizers:
            score = recognize(ctx)
            if score is None or (found is not None and score <= found.score):
                continue
            if understanding.kind(name) in ("action", "destructive"):
                question = understanding.is_question(ctx.text) if question is None else question
                if question:
                    continue
            found = Match(name, score, name, "recognised")
        return found

    async def _outside(self, ctx: Context) -> Reply | list[Reply]:
        found = self.understand(ctx)
        intent = found.intent if found is not None else None
        if ctx.user.commune_code is None and intent in (None, "greeting", "thanks", "none"):
            return await self.fallbacks.newcomer(ctx)
        handler = self.router.intent_handler(intent or "")
        if handler is None or found is None:
            return await self.fallbacks.unknown(ctx)
        understanding = self.services.understanding
        if understanding.kind(found.intent) == "destructive" and (
            understanding.bare_ambiguous(ctx.text) or _a_question(ctx.text)
        ):
            # "dung" typed bare may be "đúng" (yes), and "sao tôi không nhận tin nữa?" asks
            # why: ask before unsubscribing anyone.
            ctx.value = found.intent
            return await self.fallbacks.ask_first(ctx)
        return await handler(ctx)

    async def _in_step(self, ctx: Context, step: Step) -> Reply | list[Reply]:
        """Typed text inside a step: the step's answer first, then anything else, asking
        before anything that would stop or throw away what the step holds."""
        user, understanding = ctx.user, self.services.understanding
        pressed = picked_by_label(understanding, ctx.text, user.offered, skip=LEAVING_BUTTONS)
        if pressed is None and (step.yes or step.no):
            answer = understanding.yes_no(ctx.text)
            if answer is None and step.yes:  # "đúng, gửi", "ko gửi" at “Gửi chứ? Gửi · Hủy”
                answer = understanding.yes_no(_less_label(ctx.text, user.offered, step.yes))
            if (
                answer == "yes"
                and step.undoes
                and len(fold(ctx.text).split()) == 1
                and understanding.bare_ambiguous(ctx.text)
            ):
                answer = None  # "dung" at "Hủy đăng ký …?": đúng, or dừng (leave it be)?
                ctx.value = _(UNSURE)
                replies = as_list(await self.fallbacks.not_an_answer(ctx))
                return [*replies, *as_list(await step.ask(ctx))]
            prefix = {"yes": step.yes, "no": step.no}.get(answer or "")
            pressed = next((i for i, _label in user.offered if _is_of(i, prefix)), None)
            if pressed == "menu:main":  # "không" at "Mở phong trào?": leaving, so ask first
                ctx.value = "cancel"
                return await self.fallbacks.ask_first(ctx)
        if pressed is not None:
            return await self._button(ctx, pressed, step)
        unfit: Unfit | None = None
        # At a step that takes any words (a question, a note), "hủy", "thoát" or "menu" typed
        # alone asks to leave; it is not the text.
        taken = not (step.free and understanding.leaving(ctx.text))
        if step.parse is not None and step.answer is not None and taken:
            try:
                ctx.value = step.parse(ctx.text, ctx)
            except Unfit as problem:
                unfit = problem
            else:
                if ctx.value is not None:
                    return await step.answer(ctx)
        found = self.understand(ctx)
        kind = understanding.kind(found.intent) if found is not None else "none"
        handler = self.router.intent_handler(found.intent) if found is not None else None
        strong = unfit is not None and not unfit.weak
        if found is not None and handler is not None and kind != "none":
            if strong and kind != "destructive":
                pass  # "20 tỷ" at the amount step is an amount, however else it reads
            elif kind == "destructive" and (step.keeps or found.intent not in _ONLY_LEAVING):
                ctx.value = found.intent
                return await self.fallbacks.ask_first(ctx)
            elif kind in ("action", "destructive"):
                if step.keeps:
                    busy = as_list(await self.fallbacks.busy(ctx))
                    return [*busy, *as_list(await step.ask(ctx))]
                if kind == "action":
                    user.leave()  # cancelling leaves by itself, and says what it left
                return await handler(ctx)
            else:
                # A question in the middle of a step: answer it, then ask the step again.
                state, data = user.state, user.state_data
                replies = as_list(await handler(ctx))
                user.enter(state or step.name, **data)
                return [*replies, *as_list(await step.ask(ctx))]
        ctx.value = unfit.message if unfit is not None else None
        replies = as_list(await self.fallbacks.not_an_answer(ctx))
        return [*replies, *as_list(await step.ask(ctx))]

    async def _button(self, ctx: Context, button_id: str, step: Step | None) -> Reply | list[Reply]:
        found = self.router.find_button(button_id)
        if found is None:
            log.warning("ignored unknown button %r from %s:%s", button_id[:80], *ctx.event.key)
            return await self.fallbacks.unknown(ctx)
        prefix, handler, parts = found
        if prefix in self.router.official_buttons and not await self._admit(ctx):
            return await self.fallbacks.not_allowed(ctx)
        user = ctx.user
        accepted = step is not None and step.accepts(button_id)
        owner = None if accepted else self.router.step_of(button_id)
        if owner is not None and step is not None:
            # A button of another step (an old message): ask the current step again. Outside
            # any step the handler decides (a replayed confirmation shows its receipt).
            log.info("button %r outside its step from %s:%s", button_id[:80], *ctx.event.key)
            return await step.ask(ctx)
        try:
            payload_type = self.router.payloads.get(prefix)
            if payload_type is not None:
                ctx.payload = payload_type.unpack(parts)
            elif parts:
                raise StalePayload(f"{prefix} takes no parts")
            if step is not None and not accepted:
                user.leave()  # a button from elsewhere (the menu) ends the current step
            return await handler(ctx)
        except StalePayload as stale:
            log.warning(
                "ignored stale button %r from %s:%s: %s", button_id[:80], *ctx.event.key, stale
            )
            if step is not None and user.state == step.name:
                return await step.ask(ctx)
            return await self.fallbacks.unknown(ctx)
