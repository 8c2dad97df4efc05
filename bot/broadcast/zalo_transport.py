"""Broadcasts on Zalo: the Bot Platform and the Official Account, as plain text under 2000
characters a message. Zalo states no rate limits, so the shared limiter paces them like
Telegram's free rate (configurable)."""

from __future__ import annotations

import httpx

from bot.broadcast import Permanent, Temporary
from bot.broadcast.limiter import Limiter
from bot.broadcast.outbox import Broadcast
from bot.channels.zalo_bot import ZaloBotClient, ZaloBotError
from bot.channels.zalo_oa import OaClient, ZaloOaError
from bot.text import split_message

TEXT_LIMIT = 2000


def _parts(broadcast: Broadcast) -> list[str]:
    return split_message(broadcast.text, TEXT_LIMIT)


class ZaloBotTransport:
    """Sends to a Zalo Bot Platform chat (a private chat's id is the user's)."""

    def __init__(self, client: ZaloBotClient, limiter: Limiter) -> None:
        self.client, self.limiter = client, limiter

    def pause(self, seconds: float) -> None:
        self.limiter.pause(seconds)

    async def send(self, user_id: str, broadcast: Broadcast) -> str:
        """Each part in turn; Zalo's answers carry no id worth keeping."""
        for part in _parts(broadcast):
            await self.limiter.acquire(user_id, interactive=False)
            try:
                await self.client.send_message(user_id, part)
            except ZaloBotError as error:
                # No code means no answer (network); 5xx-like codes are the server's trouble.
                if error.code == 0 or error.code >= 500:
                    raise Temporary(str(error)) from error
                raise Permanent(str(error)) from error
            except httpx.HTTPError as error:
                raise Temporary(str(error)) from error
            finally:
                self.limiter.sent(user_id)
        return ""


class ZaloOaTransport:
    """Sends consultation messages from the Official Account (within its messaging window;
    recipients outside it were already skipped when the broadcast was materialised)."""

    def __init__(self, client: OaClient, limiter: Limiter) -> None:
        self.client, self.limiter = client, limiter

    def pause(self, seconds: float) -> None:
        self.limiter.pause(seconds)

    async def send(self, user_id: str, broadcast: Broadcast) -> str:
        for part in _parts(broadcast):
            await self.limiter.acquire(user_id, interactive=False)
            try:
                await self.client.send_text(user_id, part)
            except ZaloOaError as error:
                raise Temporary(str(error)) from error
            except httpx.HTTPError as error:
                raise Temporary(str(error)) from error
            finally:
                self.limiter.sent(user_id)
        return ""
