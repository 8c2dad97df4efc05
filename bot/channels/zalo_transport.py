"""Broadcasts on Zalo: the Bot Platform and the Official Account, as plain text under 2000
characters a message. Zalo states no rate limits, so the shared limiter paces them like
Telegram's free rate (configurable)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

from bot.channels.zalo_bot import ZaloBotClient, ZaloBotError
from bot.channels.zalo_oa import OaClient, ZaloOaError
from bot.delivery.limiter import Limiter
from bot.delivery.outbox import Broadcast
from bot.delivery.transport import Permanent, Temporary
from bot.domain.text import split_message

TEXT_LIMIT = 2000


class _ZaloTransport:
    """Sends each part of a broadcast's text in turn, paced by the limiter."""

    def __init__(self, send_text: Callable[[str, str], Awaitable[None]], limiter: Limiter):
        self._send_text, self.limiter = send_text, limiter

    def pause(self, seconds: float) -> None:
        self.limiter.pause(seconds)

    async def send(self, user_id: str, broadcast: Broadcast) -> str:
        """Zalo's answers carry no message id worth keeping."""
        for part in split_message(broadcast.text, TEXT_LIMIT):
            await self.limiter.acquire(user_id, interactive=False)
            try:
                await self._send_text(user_id, part)
            except httpx.HTTPError as error:
                raise Temporary(str(error)) from error
            except (ZaloBotError, ZaloOaError) as error:
                raise self.classify(error) from error
            finally:
                self.limiter.sent(user_id)
        return ""

    def classify(self, error: Exception) -> Exception:
        return Temporary(str(error))


class ZaloBotTransport(_ZaloTransport):
    """The Bot Platform (a private chat's id is the user's)."""

    def __init__(self, client: ZaloBotClient, limiter: Limiter) -> None:
        super().__init__(client.send_message, limiter)

    def classify(self, error: Exception) -> Exception:
        # No code means no answer (network); 5xx-like codes are the server's trouble.
        code = getattr(error, "code", 0)
        return Temporary(str(error)) if code == 0 or code >= 500 else Permanent(str(error))


class ZaloOaTransport(_ZaloTransport):
    """Consultation messages from the Official Account (recipients outside its messaging
    window were already skipped when the broadcast was materialised)."""

    def __init__(self, client: OaClient, limiter: Limiter) -> None:
        super().__init__(client.send_text, limiter)
