"""python-telegram-bot on aiohttp: Bot API calls, uploads, and every failure as PTB's error.

Each test runs a real `Bot` with `AiohttpRequest` against a server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email import message_from_bytes
from email.policy import HTTP
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from telegram import Bot, InputFile
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from bot.channels.telegram_http import AiohttpRequest
from tests.fake_bot_api import PTB_RETRY_AFTER_WARNING, FakeBotApi
from tests.live_server import serve, unused_port
from tests.offline_telegram import BOT_USER, TOKEN


@asynccontextmanager
async def bot_on(url: str, **timeouts: Any) -> AsyncIterator[Bot]:
    """A started Bot whose HTTP goes through aiohttp to `url`."""
    async with Bot(TOKEN, base_url=f"{url}/bot", request=AiohttpRequest(4, **timeouts)) as bot:
        yield bot


async def test_a_message_goes_out_and_comes_back_as_a_message() -> None:
    fake = FakeBotApi(rate=None, paid_rate=None)
    async with serve(fake.app) as url, bot_on(url) as bot:
        message = await bot.send_message(42, "Xin chào <b>bà con</b>", parse_mode="HTML")
        assert bot.username == BOT_USER["username"]  # getMe on start
    assert message.chat.id == 42 and message.text == "Xin chào <b>bà con</b>"
    assert [(s.chat_id, s.text, s.parse_mode) for s in fake.accepted] == [
        (42, "Xin chào <b>bà con</b>", "HTML")
    ]


async def test_telegrams_refusals_become_ptbs_errors() -> None:
    fake = FakeBotApi(rate=None, paid_rate=None)
    fake.blocked.add(403)
    fake.missing.add(400)
    fake.failing[502] = -1
    async with serve(fake.app) as url, bot_on(url) as bot:
        with pytest.raises(Forbidden, match="blocked"):
            await bot.send_message(403, "?")
        with pytest.raises(BadRequest, match="hat not found"):
            await bot.send_message(400, "?")
        with pytest.raises(NetworkError, match="Bad Gateway"):
            await bot.send_message(502, "?")


@PTB_RETRY_AFTER_WARNING
async def test_429_carries_retry_after() -> None:
    fake = FakeBotApi(rate=None, paid_rate=None, retry_after=7)
    fake.force_429[1] = 1
    async with serve(fake.app) as url, bot_on(url) as bot:
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(1, "?")
        assert "7" in str(caught.value)
        assert (await bot.send_message(1, "lần hai")).text == "lần hai"


async def uploads(request: Request) -> JSONResponse:
    """sendDocument as multipart/form-data (read with the standard library's MIME parser):
    the answer tells what arrived."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    mime: Any = message_from_bytes(head + await request.body(), policy=HTTP)
    form = {
        part.get_param("name", header="content-disposition"): part for part in mime.iter_parts()
    }
    upload = form["document"]
    content = upload.get_payload(decode=True)
    caption = form["caption"].get_payload(decode=True).decode()
    message = {
        "message_id": 1,
        "date": 0,
        "chat": {"id": int(form["chat_id"].get_payload()), "type": "private"},
        "caption": f"{upload.get_filename()}:{len(content)}:{caption}",
    }
    return JSONResponse({"ok": True, "result": message})


async def get_me(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True, "result": BOT_USER})


async def slow(request: Request) -> JSONResponse:
    await asyncio.sleep(2)
    return JSONResponse({"ok": True, "result": True})


UPLOADS = Starlette(
    routes=[
        Route(f"/bot{TOKEN}/getMe", get_me, methods=["POST"]),
        Route(f"/bot{TOKEN}/sendDocument", uploads, methods=["POST"]),
        Route(f"/bot{TOKEN}/setMyCommands", slow, methods=["POST"]),
    ]
)


async def test_a_file_is_uploaded_as_multipart() -> None:
    document = InputFile(b"ma,so\n1,2\n", filename="dong-gop.csv")
    async with serve(UPLOADS) as url, bot_on(url) as bot:
        message = await bot.send_document(7, document, caption="Bảng đóng góp")
    assert message.caption == "dong-gop.csv:10:Bảng đóng góp"


async def test_a_slow_answer_times_out() -> None:
    async with serve(UPLOADS) as url, bot_on(url, read_timeout=0.2) as bot:
        with pytest.raises(TimedOut):
            await bot.set_my_commands([])


async def test_no_server_is_a_network_error() -> None:
    port = unused_port()
    request = AiohttpRequest(1)
    await request.initialize()
    try:
        with pytest.raises(NetworkError, match="aiohttp"):
            await request.post(f"http://127.0.0.1:{port}/bot{TOKEN}/getMe")
    finally:
        await request.shutdown()


@pytest.mark.parametrize(
    "url",
    [
        pytest.param(f"http://[bad/bot{TOKEN}/getMe", id="invalid-url"),
        pytest.param(f"http://127.0.0.1:{unused_port()}/bot{TOKEN}/getMe", id="unreachable"),
    ],
)
async def test_a_network_error_never_carries_the_token(url: str) -> None:
    request = AiohttpRequest(1)
    await request.initialize()
    try:
        with pytest.raises(NetworkError) as raised:
            await request.post(url)
    finally:
        await request.shutdown()
    assert TOKEN not in str(raised.value) and "aiohttp" in str(raised.value)
