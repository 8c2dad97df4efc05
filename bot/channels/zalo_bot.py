"""The Zalo Bot Platform channel: a small client on httpx, long polling and webhook updates.

Zalo bots have no buttons: replies carry a numbered list and the core maps a typed number
back to the button. The API answers `{"ok": …}` even on HTTP 200, so every answer is checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import random
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, replace
from typing import Any

import httpx

from bot.channels.numbered import number_hint, render_parts, unprompted_parts, user_locale
from bot.core.conversation import Incoming, Reply
from bot.core.dispatch import Dispatcher
from bot.core.inbox import Inbox
from bot.domain.i18n import use_locale
from bot.domain.text import clean
from bot.storage.events import first_time

log = logging.getLogger(__name__)
CHANNEL = "zalo"
TEXT_LIMIT = 2000
NOTHING_NEW = 408  # getUpdates: the long poll ended without an update
POLL_SECONDS = 30
_UNSUPPORTED = {
    "message.image.received": "photo",
    "message.sticker.received": "sticker",
    "message.voice.received": "voice",
    "message.unsupported.received": "other",
}


class ZaloBotError(Exception):
    """An answer without `"ok": true`, or no answer at all. Never carries the token."""

    def __init__(self, method: str, code: int, description: str) -> None:
        super().__init__(f"{method} failed: {code} {description}".strip())
        self.method, self.code, self.description = method, code, description


class RedactToken(logging.Filter):
    """Replaces a token in log records: httpx logs request URLs, and this URL holds one."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.token in message:
            record.msg, record.args = message.replace(self.token, "<token>"), ()
        return True


def _redact_in_http_logs(token: str) -> None:
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactToken) and f.token == token for f in logger.filters):
            logger.addFilter(RedactToken(token))


class ZaloBotClient:
    """The Bot API methods the bot uses, on one shared httpx client."""

    def __init__(self, http: httpx.AsyncClient, token: str, api_url: str) -> None:
        self._http = http
        self._token = token.strip()
        self._api_url = api_url
        if self._token:
            _redact_in_http_logs(self._token)

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "<token>") if self._token else text

    async def call(self, method: str, read_timeout: float = 30.0, **params: Any) -> Any:
        """POST one method; the `result`, or ZaloBotError."""
        url = f"{self._api_url}{self._token}/{method}"
        timeout = httpx.Timeout(10.0, read=read_timeout)
        try:
            response = await self._http.post(url, json=params, timeout=timeout)
        except (httpx.HTTPError, httpx.InvalidURL, UnicodeError) as error:  # bad URL or host
            # httpx puts the URL, and so the token, in some messages: keep only a clean line.
            detail = self._redact(f"{type(error).__name__}: {error}")
            raise ZaloBotError(method, 0, detail) from None
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or "ok" not in answer:
            raise ZaloBotError(method, response.status_code, "answer is not Bot API JSON")
        if answer["ok"] is not True:
            code = answer.get("error_code") or response.status_code
            description = self._redact(str(answer.get("description") or ""))
            raise ZaloBotError(method, int(code), description)
        return answer.get("result")

    async def get_me(self) -> dict[str, Any]:
        """The bot's own account (checks the token)."""
        result = await self.call("getMe")
        return result if isinstance(result, dict) else {}

    async def get_updates(self, wait: int = POLL_SECONDS) -> list[dict[str, Any]]:
        """Long-poll up to `wait` seconds for the next update: [] when nothing came (408)."""
        try:
            result = await self.call("getUpdates", read_timeout=wait + 10.0, timeout=wait)
        except ZaloBotError as error:
            if error.code == NOTHING_NEW:
                return []
            raise
        # The API returns one update; a list is accepted in case that ever changes.
        updates = result if isinstance(result, list) else [result]
        return [u for u in updates if isinstance(u, dict)]

    async def send_message(self, chat_id: str, text: str) -> None:
        """Send one text of at most 2000 characters."""
        await self.call("sendMessage", chat_id=chat_id, text=text)

    async def set_webhook(self, url: str, secret_token: str) -> None:
        """Have Zalo post updates to `url` with the secret in X-Bot-Api-Secret-Token."""
        await self.call("setWebhook", url=url, secret_token=secret_token)

    async def delete_webhook(self) -> None:
        """Stop webhook delivery, so getUpdates can be used."""
        await self.call("deleteWebhook")


@dataclass(frozen=True)
class ZaloUpdate:
    event: Incoming
    chat_id: str  # where replies go; the user's id in a private chat


def as_object(value: Any) -> dict[str, Any]:
    """A JSON object from an untrusted body, or {} for anything else."""
    return value if isinstance(value, dict) else {}


def unwrap(body: Any) -> dict[str, Any] | None:
    """Webhook bodies come both bare and wrapped in {"ok", "result"}."""
    if isinstance(body, dict) and "result" in body and "ok" in body:
        body = body["result"]
    return body if isinstance(body, dict) else None


def to_update(body: Any) -> ZaloUpdate | None:
    """The update as the core sees it, or None for what the bot ignores."""
    update = as_object(unwrap(body))
    message = as_object(update.get("message"))
    if not message:
        return None
    sender, chat = as_object(message.get("from")), as_object(message.get("chat"))
    user_id = str(sender.get("id") or "")
    if not user_id or sender.get("is_bot"):
        return None
    if chat.get("chat_type", "PRIVATE") != "PRIVATE":
        return None  # group chats are in beta; the bot talks to one person at a time
    chat_id = str(chat.get("id") or user_id)
    who = Incoming(
        CHANNEL,
        user_id,
        message_id=str(message.get("message_id") or "") or None,
        display_name=str(sender.get("display_name") or "") or None,
        numbered=True,
    )
    name = str(update.get("event_name") or "")
    if name == "message.text.received" or (not name and "text" in message):
        text = clean(str(message.get("text") or ""))
        return ZaloUpdate(replace(who, text=text), chat_id) if text else None
    kind = _UNSUPPORTED.get(name)
    if kind is None:
        log.debug("ignored Zalo event %r", name)
        return None
    photo = str(message.get("photo_url") or "") or None if kind == "photo" else None
    return ZaloUpdate(replace(who, unsupported=kind, photo=photo), chat_id)


def secret_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a webhook secret header."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


class Background:
    """Tasks that outlive the request or poll that started them, drained at shutdown."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` concurrently; its failure is logged, never lost."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background work failed", exc_info=task.exception())

    async def drain(self, grace: float = 10.0) -> None:
        """Let running work finish (up to `grace` seconds), then cancel the rest."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


@dataclass
class Backoff:
    """Delays after consecutive failures: doubling from `first` up to `most`, with jitter."""

    first: float = 1.0
    most: float = 60.0
    failures: int = 0

    def failed(self) -> float:
        self.failures += 1
        ceiling = min(self.most, self.first * 2 ** min(self.failures - 1, 30))
        # Jitter keeps many bots from hammering a recovering API in step.
        return random.uniform(ceiling / 2, ceiling)

    def succeeded(self) -> None:
        self.failures = 0


class ZaloBot:
    """Zalo Bot updates to the dispatcher; replies back as numbered text."""

    def __init__(
        self,
        client: ZaloBotClient,
        dispatcher: Dispatcher,
        backoff: Backoff | None = None,
        background: Background | None = None,
    ) -> None:
        self.client = client
        self.dispatcher = dispatcher
        self.backoff = backoff or Backoff()
        self.background = background or Background()
        self.inbox: Inbox | None = None  # set by the runtime in `serve` on PostgreSQL
        dispatcher.services.notifier.register(CHANNEL, self.notify)

    async def accept(self, body: Any) -> bool:
        """Deduplicate one update and start answering it; False when it is ignored."""
        update = to_update(body)
        if update is None:
            return False
        key = update.event.message_id
        if self.inbox is not None:  # several workers: recorded, answered in order by any
            key = key or uuid.uuid4().hex  # nothing to know a replay by
            return await self.inbox.accept(CHANNEL, key, update.event.user_id, 0, body)
        if key and not await first_time(self.dispatcher.services.db, CHANNEL, key):
            log.info("duplicate Zalo message %s ignored", key)
            return False
        # Started in arrival order: the dispatcher's per-user lock keeps that order.
        self.background.start(self.handle(update))
        return True

    async def answer_body(self, body: Any) -> None:
        """Answer an update the inbox recorded."""
        update = to_update(body)
        if update is not None:
            await self.handle(update)

    async def handle(self, update: ZaloUpdate) -> None:
        """Answer one update; a failed send is logged, not raised."""

        async def deliver(replies: list[Reply]) -> None:
            await self.send_replies(update.chat_id, replies)

        try:
            await self.dispatcher.handle(update.event, deliver)
        except ZaloBotError as error:
            log.warning("reply to zalo:%s failed: %s", update.event.user_id, error)

    async def send_replies(self, chat_id: str, replies: list[Reply]) -> None:
        """The replies as numbered text, in parts of at most 2000 characters."""
        for part in render_parts(replies, TEXT_LIMIT, number_hint()):
            await self.client.send_message(chat_id, part)

    async def notify(self, user_id: str, replies: list[Reply]) -> None:
        """A notice to someone who did not just write; a private chat's id is the user's."""
        with use_locale(await user_locale(self.dispatcher, Incoming(CHANNEL, user_id))):
            for part in unprompted_parts(replies, TEXT_LIMIT):
                await self.client.send_message(user_id, part)

    async def poll(self, stop: asyncio.Event, wait: int = POLL_SECONDS) -> None:
        """Long-poll getUpdates until `stop` is set; errors back off, 408 polls again."""
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                polling = asyncio.ensure_future(self.client.get_updates(wait))
                await asyncio.wait({polling, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not polling.done():
                    # Zalo has no offset to acknowledge: an update in flight now is lost,
                    # which beats making Ctrl+C wait for the long poll to end.
                    polling.cancel()
                    await asyncio.gather(polling, return_exceptions=True)
                    break
                try:
                    updates = polling.result()
                except ZaloBotError as error:
                    delay = self.backoff.failed()
                    log.warning("Zalo %s; polling again in %.1f s", error, delay)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(stopping), delay)
                    continue
                self.backoff.succeeded()
                for body in updates:
                    await self.accept(body)
        finally:
            stopping.cancel()
            await asyncio.gather(stopping, return_exceptions=True)
            await self.background.drain()
