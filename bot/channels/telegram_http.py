"""python-telegram-bot's HTTP layer on aiohttp, and sends whose answer stays JSON.

PTB sends through httpx by default. At paid-broadcast rates that path is CPU-bound here:
httpx's connection pool (over anyio) costs about 900 µs of CPU per request against a local Bot
API, aiohttp about 250 µs (bench/broadcast.py). PTB lets the HTTP layer be swapped
(`telegram.request.BaseRequest`), so everything above it — serialising the call, turning
401/403/400/429/5xx answers into PTB's errors — stays PTB's own.

`send` makes a Bot API call and keeps Telegram's answer as JSON: replies and broadcasts never
read the Message that comes back, and building PTB's `Message` from it (with its chat, sender
and keyboard) costs as much CPU as the request itself.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import aiohttp
from telegram import Bot
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData
from telegram.warnings import PTBUserWarning

if TYPE_CHECKING:
    from bot.app.settings import Settings


# do_api_request asks to use Bot.send_message instead; here its raw answer is the point.
warnings.filterwarnings("ignore", r"Please use 'Bot\.send", PTBUserWarning)
_URL_ENCODED = {"Content-Type": "application/x-www-form-urlencoded"}
_DEFAULT = type(BaseRequest.DEFAULT_NONE)  # "not given": use this request's own timeout
_URL_PATH = re.compile(r"(\w+://[^/\s'\"]+)/[^\s'\"]*")


class AiohttpRequest(BaseRequest):
    """A `BaseRequest` on one aiohttp session with a bounded connection pool.

    Timeouts map onto aiohttp's: `connect_timeout` → `sock_connect`, `read_timeout` →
    `sock_read`, and `pool_timeout` bounds the wait for a pooled connection (aiohttp's
    `connect`, which covers the pool wait and the connect). aiohttp has no write timeout;
    `write_timeout` is accepted and ignored.
    """

    def __init__(
        self,
        connection_pool_size: int = 16,
        read_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
    ) -> None:
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        """The default read timeout (PTB adds the long-polling time to it for getUpdates)."""
        return self._read_timeout

    async def initialize(self) -> None:
        """Open the session (in the running event loop)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size),
                headers={"User-Agent": self.USER_AGENT},  # PTB's own
            )

    async def shutdown(self) -> None:
        """Close the session and its connections."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """One HTTP request; its status and body. Network trouble becomes PTB's errors."""
        if self._session is None or self._session.closed:
            raise RuntimeError("AiohttpRequest is not initialized")
        read = self._read_timeout if isinstance(read_timeout, _DEFAULT) else read_timeout
        connect = (
            self._connect_timeout if isinstance(connect_timeout, _DEFAULT) else connect_timeout
        )
        pool = self._pool_timeout if isinstance(pool_timeout, _DEFAULT) else pool_timeout
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=None if pool is None or connect is None else pool + connect,
            sock_connect=connect,
            sock_read=read,
        )
        data: Any = None
        headers = None
        if request_data is not None and request_data.contains_files:
            data = _form(request_data)
        elif request_data is not None:  # url-encoded, as PTB's httpx request sends it
            data = request_data.url_encoded_parameters().encode()
            headers = _URL_ENCODED
        try:
            async with self._session.request(
                method, url, data=data, headers=headers, timeout=timeout
            ) as answer:
                return answer.status, await answer.read()
        except (TimeoutError, aiohttp.ServerTimeoutError) as error:
            raise TimedOut(f"aiohttp: {type(error).__name__}") from error
        except aiohttp.InvalidURL as error:  # its message is the URL, and the token is in it
            raise NetworkError(f"aiohttp.{type(error).__name__}: not a valid URL") from None
        except aiohttp.ClientError as error:
            raise NetworkError(f"aiohttp.{type(error).__name__}: {_no_paths(error)}") from error


def _no_paths(error: Exception) -> str:
    """The error's message with URL paths cut (a Bot API path holds the token); hosts stay."""
    return _URL_PATH.sub(r"\1/…", str(error))


def telegram_request(settings: Settings, replies: int = 0) -> AiohttpRequest:
    """The HTTP layer for sending on Telegram: a connection per broadcast send in flight, and
    `replies` more for the answers to villagers sent beside them."""
    return AiohttpRequest(
        connection_pool_size=settings.broadcast_in_flight + replies + 1,
        read_timeout=10.0,
        pool_timeout=10.0,  # a send waits for a free connection rather than fail
    )


def _form(request_data: RequestData) -> aiohttp.FormData:
    """multipart/form-data: the plain parameters, then the files PTB prepared."""
    form = aiohttp.FormData()
    for name, value in request_data.json_parameters.items():
        form.add_field(name, value)
    for name, (filename, content, mime) in request_data.multipart_data.items():
        form.add_field(name, content, filename=filename or name, content_type=mime)
    return form


@asynccontextmanager
async def closing_on_failure(bot: Bot) -> AsyncIterator[None]:
    """Around `initialize()`: if it fails (Telegram unreachable, token refused), the bot's HTTP
    sessions are closed before the error goes on. PTB leaves them open, and aiohttp would then
    warn of an unclosed session."""
    try:
        yield
    except BaseException:
        await bot.request.shutdown()
        raise


async def send(bot: Bot, method: str, params: dict[str, Any]) -> dict[str, Any]:
    """A Bot API send method (sendMessage, sendPhoto …); Telegram's answer as JSON.

    PTB still serialises the parameters and raises its errors (Forbidden, RetryAfter …).
    """
    answer: dict[str, Any] = await bot.do_api_request(method, api_kwargs=params)
    return answer
