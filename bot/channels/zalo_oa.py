"""The Zalo Official Account channel (Open API v3): signed webhook events in, replies out.

Replies are consultation messages with the buttons as numbered text. OA template buttons are
not used yet: which templates the v3 consultation endpoint still accepts is unconfirmed, a
pressed template button would come back as a payload to map, and numbered text already works
on every Zalo client through the core's number-to-button mapping.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy.exc import SQLAlchemyError

from bot.channels.numbered import number_hint, render_parts, unprompted_parts, user_locale
from bot.channels.zalo_bot import Background, as_object
from bot.core.conversation import Incoming, Reply
from bot.core.dispatch import Dispatcher
from bot.core.inbox import Inbox
from bot.domain.clock import WALL
from bot.domain.i18n import use_locale
from bot.domain.text import clean
from bot.storage import oa_tokens
from bot.storage.db import Database
from bot.storage.events import first_time
from bot.storage.oa_tokens import OaTokens

if TYPE_CHECKING:
    from bot.app.services import Services

log = logging.getLogger(__name__)
CHANNEL = "zalo_oa"
TEXT_LIMIT = 2000
TOKEN_EXPIRED = -216
TOKEN_LIFETIME = timedelta(hours=25)  # when the refresh answer does not say
REFRESH_MARGIN = timedelta(minutes=10)  # refresh this long before the token runs out
REFRESH_PAUSE = timedelta(minutes=1)  # after a failed refresh, before trying again
Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return WALL.utcnow()


class ZaloOaError(Exception):
    """The OA API or OAuth said no, or could not be reached. Never carries a token."""


class Rejected(Exception):
    """A webhook request that is not from Zalo, or too old to trust."""


def signature(app_id: str, raw_body: bytes, timestamp: str, secret_key: str) -> str:
    """X-ZEvent-Signature as Zalo computes it."""
    digest = hashlib.sha256(app_id.encode() + raw_body + timestamp.encode() + secret_key.encode())
    return "mac=" + digest.hexdigest()


def verify(
    raw_body: bytes,
    header: str | None,
    app_id: str,
    secret_key: str,
    max_skew: float,
    now: float | None = None,
) -> dict[str, Any]:
    """The event if it is signed by Zalo and recent; Rejected(reason) otherwise."""
    try:
        body = json.loads(raw_body)
    except ValueError:
        raise Rejected("body is not JSON") from None
    if not isinstance(body, dict):
        raise Rejected("body is not a JSON object")
    timestamp = str(body.get("timestamp") or "")
    expected = signature(app_id, raw_body, timestamp, secret_key)
    if header is None or not hmac.compare_digest(header.encode(), expected.encode()):
        raise Rejected("bad X-ZEvent-Signature")
    try:
        sent = int(timestamp) / 1000  # milliseconds
    except ValueError:
        raise Rejected(f"timestamp {timestamp!r} is not a number") from None
    skew = (WALL.now().timestamp() if now is None else now) - sent
    if abs(skew) > max_skew:
        # A signed but old event is a replay, or a clock far off: either way, not handled.
        raise Rejected(f"timestamp is {skew:+.0f} s off (at most {max_skew:.0f} s allowed)")
    return body


def event_key(body: dict[str, Any]) -> str:
    """What makes one delivery the same event as another."""
    message = as_object(body.get("message"))
    msg_id = message.get("msg_id")
    if msg_id:
        return str(msg_id)
    return f"{body.get('event_name')}:{body.get('timestamp')}:{_user_id(body)}"


def _user_id(body: dict[str, Any]) -> str:
    for role in ("sender", "follower"):
        who = body.get(role)
        if isinstance(who, dict) and who.get("id"):
            return str(who["id"])
    return ""


def to_event(body: dict[str, Any]) -> Incoming | None:
    """A user's event as the core sees it; None for receipts, unfollow and the unknown."""
    name, user_id = str(body.get("event_name") or ""), _user_id(body)
    if not user_id:
        return None
    message = as_object(body.get("message"))
    msg_id = str(message.get("msg_id") or "") or None
    if name == "user_send_text":
        text = clean(str(message.get("text") or ""))
        if not text:
            return None
        return Incoming(CHANNEL, user_id, text=text, message_id=msg_id, numbered=True)
    if name.startswith("user_send_"):
        kind = name.removeprefix("user_send_")
        return Incoming(CHANNEL, user_id, unsupported=kind, message_id=msg_id, numbered=True)
    if name == "follow":
        return Incoming(CHANNEL, user_id, text="/start", numbered=True)  # starts onboarding
    return None


async def on_unfollow(services: Services, channel: str, user_id: str) -> None:
    """The user unfollowed the OA: they are unsubscribed from everything."""
    log.info("%s:%s unfollowed; unsubscribed", channel, user_id)
    await services.subscriptions.stop(channel, user_id)


class OaClient:
    """Consultation messages, with the access token refreshed before expiry and on -216."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        db: Database,
        app_id: str,
        app_secret: str,
        refresh_token: str,
        api_url: str = "https://openapi.zalo.me",
        oauth_url: str = "https://oauth.zaloapp.com",
        clock: Clock = _utcnow,
    ) -> None:
        self._http, self._db, self._clock = http, db, clock
        self._app_id, self._app_secret, self._seed = app_id, app_secret, refresh_token
        self._api_url, self._oauth_url = api_url.rstrip("/"), oauth_url.rstrip("/")
        self._tokens: OaTokens | None = None
        self._lock = asyncio.Lock()
        self._refresh_failed_at: datetime | None = None

    async def send_text(self, user_id: str, text: str) -> None:
        """Send one text; a rejected token is refreshed and the send retried once."""
        token = await self._access_token()
        answer = await self._post_message(token, user_id, text)
        if answer.get("error") == TOKEN_EXPIRED:
            log.info("Zalo OA access token rejected (-216); refreshing it")
            token = await self._refresh(spent=token)
            answer = await self._post_message(token, user_id, text)
        if answer.get("error") != 0:
            raise ZaloOaError(f"message/cs: {answer.get('error')} {answer.get('message', '')}")

    async def _post_message(self, token: str, user_id: str, text: str) -> dict[str, Any]:
        body = {"recipient": {"user_id": user_id}, "message": {"text": text}}
        url = f"{self._api_url}/v3.0/oa/message/cs"
        try:
            response = await self._http.post(url, json=body, headers={"access_token": token})
            answer = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise ZaloOaError(f"message/cs: {type(error).__name__}") from None
        if not isinstance(answer, dict):
            raise ZaloOaError(f"message/cs: HTTP {response.status_code}, not OA JSON")
        return answer

    async def _access_token(self) -> str:
        if self._tokens is None:
            self._tokens = await oa_tokens.load(self._db, self._app_id, self._seed)
        tokens = self._tokens
        if not tokens.access_token or self._clock() >= tokens.expires_at - REFRESH_MARGIN:
            return await self._refresh(spent=tokens.access_token)
        return tokens.access_token

    async def _refresh(self, spent: str) -> str:
        """A new access token for the `spent` one; one attempt, then a pause."""
        async with self._lock:
            current = self._tokens
            if current is not None and current.access_token and current.access_token != spent:
                return current.access_token  # another send refreshed it meanwhile
            now = self._clock()
            if self._refresh_failed_at and now - self._refresh_failed_at < REFRESH_PAUSE:
                raise ZaloOaError("token refresh failed moments ago; not retried yet")
            try:
                fresh = await self._ask_for_tokens(current.refresh_token if current else self._seed)
            except ZaloOaError as error:
                self._refresh_failed_at = now
                log.error(
                    "ZALO OA TOKEN REFRESH FAILED: %s. OA users get no replies until it works; "
                    "if the refresh token is spent or expired, re-authorise the app and set "
                    "CHUNGSUC_ZALO_OA_REFRESH_TOKEN.",
                    error,
                )
                raise
            self._refresh_failed_at = None
            self._tokens = fresh
            # Before any use: the old refresh token is spent the moment Zalo answered.
            try:
                await oa_tokens.save(self._db, self._app_id, self._seed, fresh)
            except SQLAlchemyError:
                log.exception("ZALO OA TOKENS NOT STORED: kept in memory until this process ends")
            log.info("Zalo OA access token refreshed; valid until %s", fresh.expires_at)
            return fresh.access_token

    async def _ask_for_tokens(self, refresh_token: str) -> OaTokens:
        form = {"refresh_token": refresh_token, "app_id": self._app_id}
        try:
            response = await self._http.post(
                f"{self._oauth_url}/v4/oa/access_token",
                data=form | {"grant_type": "refresh_token"},
                headers={"secret_key": self._app_secret},
            )
            answer = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise ZaloOaError(f"access_token: {type(error).__name__}") from None
        if not isinstance(answer, dict) or not answer.get("access_token"):
            detail = answer if not isinstance(answer, dict) else answer.get("error_name", answer)
            raise ZaloOaError(f"access_token: HTTP {response.status_code}, {detail}")
        if not answer.get("refresh_token"):
            raise ZaloOaError("access_token: answer has no new refresh token")
        try:
            lifetime = timedelta(seconds=int(answer.get("expires_in") or 0)) or TOKEN_LIFETIME
        except ValueError:
            lifetime = TOKEN_LIFETIME
        expires_at = self._clock() + lifetime
        return OaTokens(str(answer["access_token"]), str(answer["refresh_token"]), expires_at)


@dataclass
class ZaloOa:
    """OA webhook events to the dispatcher; replies through the OA client."""

    client: OaClient
    dispatcher: Dispatcher
    app_id: str
    secret_key: str
    max_skew: float = 300.0
    background: Background = field(default_factory=Background)
    inbox: Inbox | None = None  # `serve` on PostgreSQL: a user's events answered in order

    def __post_init__(self) -> None:
        self.dispatcher.services.notifier.register(CHANNEL, self.notify)

    def verify(self, raw_body: bytes, header: str | None) -> dict[str, Any]:
        """The event if Zalo signed it recently; Rejected otherwise."""
        return verify(raw_body, header, self.app_id, self.secret_key, self.max_skew)

    async def accept(self, body: dict[str, Any]) -> bool:
        """Deduplicate a verified event and start answering it; False when ignored."""
        name = body.get("event_name")
        if name not in ("follow", "unfollow") and not str(name).startswith("user_send_"):
            return False  # receipts (user_received_message, user_seen_message), OA echoes
        services = self.dispatcher.services
        if self.inbox is not None and name != "unfollow":
            event = to_event(body)
            if event is None:
                return False
            seq = str(body.get("timestamp") or "")  # milliseconds: the order they were sent in
            seq_ms = int(seq) if seq.isascii() and seq.isdigit() and len(seq) <= 18 else 0
            return await self.inbox.accept(CHANNEL, event_key(body), event.user_id, seq_ms, body)
        if not await first_time(services.db, CHANNEL, event_key(body)):
            log.info("duplicate Zalo OA event %s ignored", event_key(body))
            return False
        if name == "unfollow":
            try:
                await on_unfollow(services, CHANNEL, _user_id(body))
            except Exception:  # a later feature's bug must not fail the webhook
                log.exception("on_unfollow failed for %s", _user_id(body))
            return True
        event = to_event(body)
        if event is None:
            return False
        self.background.start(self.handle(event))
        return True

    async def answer_body(self, body: dict[str, Any]) -> None:
        """Answer an event the inbox recorded."""
        event = to_event(body)
        if event is not None:
            await self.handle(event)

    async def handle(self, event: Incoming) -> None:
        """Answer one event; a failed send is logged, not raised."""

        async def deliver(replies: list[Reply]) -> None:
            await self.send_replies(event, replies)

        try:
            await self.dispatcher.handle(event, deliver)
        except ZaloOaError as error:
            log.warning("reply to %s:%s failed: %s", CHANNEL, event.user_id, error)

    async def send_replies(self, event: Incoming, replies: list[Reply]) -> None:
        """The replies as numbered text, in parts of at most 2000 characters."""
        for part in render_parts(replies, TEXT_LIMIT, number_hint()):
            await self.client.send_text(event.user_id, part)

    async def notify(self, user_id: str, replies: list[Reply]) -> None:
        """A notice to someone who did not just write (within the OA's messaging window)."""
        event = Incoming(CHANNEL, user_id)
        with use_locale(await user_locale(self.dispatcher, event)):
            for part in unprompted_parts(replies, TEXT_LIMIT):
                await self.client.send_text(user_id, part)
