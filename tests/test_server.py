"""The webhook server: routes per configured channel, secrets, dedup, /healthz, --set-webhooks,
served by uvicorn on 127.0.0.1 against an offline Telegram and a fake Zalo Bot API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from sqlalchemy.ext.asyncio import create_async_engine
from typer.testing import CliRunner, Result

from bot.app.runtime import webhook_channels
from bot.app.services import Services
from bot.app.settings import Settings
from bot.interfaces.cli.channels import register
from bot.interfaces.server import create_app
from tests.conftest import make_settings
from tests.fake_zalo import BOT_TOKEN, FakeZaloBot, eventually, text_update
from tests.live_server import serve
from tests.offline_telegram import TOKEN, Call, OfflineRequest
from tests.offline_telegram import text_update as telegram_update

TG_SECRET = "tg-secret_0123456789"
ZALO_SECRET = "zalo-webhook-secret"
TG_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ZALO_HEADER = "X-Bot-Api-Secret-Token"
ALICE = 1001


class WebhookRequest(OfflineRequest):
    """The offline Bot API, also answering setWebhook."""

    def _answer(self, call: Call) -> Any:
        return True if call.method == "setWebhook" else super()._answer(call)


@pytest.fixture
async def fake() -> AsyncIterator[FakeZaloBot]:
    fake = FakeZaloBot()
    async with serve(fake.app) as url:
        fake.url = url  # type: ignore[attr-defined]
        yield fake


@pytest.fixture
def settings(tmp_path: Path, db_url: str, fake: FakeZaloBot) -> Settings:
    return make_settings(
        tmp_path,
        db_url,
        telegram_token=TOKEN,
        telegram_webhook_secret=TG_SECRET,
        zalo_bot_token=BOT_TOKEN,
        zalo_bot_webhook_secret=ZALO_SECRET,
        zalo_bot_api_url=f"{fake.url}/bot",  # type: ignore[attr-defined]
        zalo_oa_app_id="4318",
        zalo_oa_secret_key="k",
        zalo_oa_app_secret="s",
        zalo_oa_refresh_token="r",
    )


@pytest.fixture
def offline() -> WebhookRequest:
    return WebhookRequest()


@pytest.fixture
async def server(
    settings: Settings, services: Services, offline: WebhookRequest
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, services=services, telegram_request=offline)
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as client:
        yield client
    assert offline.unexpected == []


async def test_healthz_lists_the_channels(server: httpx.AsyncClient) -> None:
    answer = await server.get("/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"database": "ok", "channels": ["telegram", "zalo", "zalo_oa"]}


async def test_healthz_is_503_when_the_database_is_unreachable(
    server: httpx.AsyncClient,
    services: Services,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    broken = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'a-file' / 'db.sqlite3'}")
    monkeypatch.setattr(services.db, "engine", broken)
    try:
        answer = await server.get("/healthz")
    finally:
        await broken.dispose()
    assert answer.status_code == 503
    assert answer.json()["database"] == "unreachable"


async def test_only_channels_with_credentials_are_mounted(
    tmp_path: Path, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path, telegram_token=TOKEN, zalo_bot_token="z")
    assert webhook_channels(settings)[0] == []
    async with serve(create_app(settings, services=services)) as url, httpx.AsyncClient() as http:
        assert (await http.get(f"{url}/healthz")).json()["channels"] == []
        for path in ("/telegram/webhook", "/zalo/bot/webhook", "/zalo/oa/webhook"):
            assert (await http.post(url + path, json={})).status_code == 404
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [
        "not serving telegram: CHUNGSUC_TELEGRAM_WEBHOOK_SECRET is not set",
        "not serving zalo: CHUNGSUC_ZALO_BOT_WEBHOOK_SECRET must be 8–256 characters",
    ]


# --- Telegram ---------------------------------------------------------------------------------


async def test_telegram_webhook_answers_at_once_and_replies(
    server: httpx.AsyncClient, offline: WebhookRequest
) -> None:
    answer = await server.post(
        "/telegram/webhook", json=telegram_update(ALICE, "/start"), headers={TG_HEADER: TG_SECRET}
    )
    assert answer.status_code == 200
    await eventually(lambda: len(offline.sent(ALICE)) == 2)
    assert offline.sent(ALICE)[1]["reply_markup"]["inline_keyboard"][0][0]["text"] == "Tiếng Việt"


@pytest.mark.parametrize("secret", [None, "", "tg-secret_0123456788", TG_SECRET + "x"])
async def test_telegram_webhook_with_a_wrong_secret_is_403(
    server: httpx.AsyncClient,
    offline: WebhookRequest,
    caplog: pytest.LogCaptureFixture,
    secret: str | None,
) -> None:
    headers = {} if secret is None else {TG_HEADER: secret}
    update = telegram_update(ALICE, "/start")
    with caplog.at_level(logging.WARNING):
        answer = await server.post("/telegram/webhook", json=update, headers=headers)
    assert answer.status_code == 403
    assert any("wrong secret token" in r.getMessage() for r in caplog.records)
    await asyncio.sleep(0.1)
    assert offline.sent() == []


async def test_a_telegram_update_delivered_twice_is_handled_once(
    server: httpx.AsyncClient, offline: WebhookRequest
) -> None:
    update = telegram_update(ALICE, "/start")
    for _ in range(3):
        answer = await server.post("/telegram/webhook", json=update, headers={TG_HEADER: TG_SECRET})
        assert answer.status_code == 200
    await eventually(lambda: len(offline.sent(ALICE)) == 2)
    await asyncio.sleep(0.2)  # a second answer would have arrived by now
    assert len(offline.sent(ALICE)) == 2
    bad = await server.post("/telegram/webhook", content=b"{", headers={TG_HEADER: TG_SECRET})
    assert bad.status_code == 400


# --- Zalo Bot ---------------------------------------------------------------------------------


@pytest.mark.parametrize("wrapped", [False, True])
async def test_zalo_webhook_bare_or_wrapped(
    server: httpx.AsyncClient, fake: FakeZaloBot, wrapped: bool
) -> None:
    update = text_update("z1", "/start")
    body = {"ok": True, "result": update} if wrapped else update
    for _ in range(2):  # the second delivery is a retry of the first
        answer = await server.post(
            "/zalo/bot/webhook", json=body, headers={ZALO_HEADER: ZALO_SECRET}
        )
        assert answer.status_code == 200
    await eventually(lambda: len(fake.sent()) == 2)
    await asyncio.sleep(0.2)
    assert len(fake.sent()) == 2
    assert "1. Tiếng Việt" in fake.sent()[1]


@pytest.mark.parametrize("secret", [None, "zalo-webhook-secreT", TG_SECRET])
async def test_zalo_webhook_with_a_wrong_secret_is_403(
    server: httpx.AsyncClient, fake: FakeZaloBot, secret: str | None
) -> None:
    headers = {} if secret is None else {ZALO_HEADER: secret}
    update = text_update("z1", "/start")
    answer = await server.post("/zalo/bot/webhook", json=update, headers=headers)
    assert answer.status_code == 403
    await asyncio.sleep(0.1)
    assert fake.sent() == []


# --- registering webhooks ---------------------------------------------------------------------


async def test_set_webhooks_registers_each_channel(
    settings: Settings,
    services: Services,
    offline: WebhookRequest,
    fake: FakeZaloBot,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = create_app(
        settings, services=services, telegram_request=offline, set_webhooks="https://x.org/"
    )
    with caplog.at_level(logging.INFO, logger="bot.app.runtime"):
        async with serve(app):
            pass
    telegram = offline.params("setWebhook")
    assert [(p["url"], p["secret_token"], p["max_connections"]) for p in telegram] == [
        ("https://x.org/telegram/webhook", TG_SECRET, 40)
    ]
    assert fake.params("setWebhook") == [
        {"url": "https://x.org/zalo/bot/webhook", "secret_token": ZALO_SECRET}
    ]
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.app.runtime"]
    assert "Telegram webhook set: https://x.org/telegram/webhook" in lines
    assert "Zalo Bot webhook set: https://x.org/zalo/bot/webhook" in lines
    assert any("https://x.org/zalo/oa/webhook" in line for line in lines)


async def test_set_webhooks_failures_are_one_line_each(
    settings: Settings,
    services: Services,
    offline: WebhookRequest,
    fake: FakeZaloBot,
    caplog: pytest.LogCaptureFixture,
) -> None:
    offline.fail["setWebhook"] = "Bad Request: bad webhook: failed to resolve host"
    fake.fail["setWebhook"] = [(200, {"ok": False, "error_code": 400, "description": "bad url"})]
    app = create_app(
        settings, services=services, telegram_request=offline, set_webhooks="https://x.org"
    )
    async with serve(app) as url, httpx.AsyncClient() as http:
        assert (await http.get(f"{url}/healthz")).status_code == 200  # still serving
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2
    assert "Telegram webhook NOT set to https://x.org/telegram/webhook" in errors[0]
    assert "failed to resolve host" in errors[0]
    assert errors[1] == (
        "Zalo Bot webhook NOT set to https://x.org/zalo/bot/webhook: setWebhook failed: 400 bad url"
    )
    assert BOT_TOKEN not in "\n".join(errors)


# --- the commands -----------------------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("CHUNGSUC_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CHUNGSUC_DB_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.sqlite3'}")


def invoke(*args: str) -> Result:
    app, run_app = typer.Typer(), typer.Typer()
    app.add_typer(run_app, name="run")
    register(app, run_app)
    return CliRunner().invoke(app, list(args))


@pytest.mark.usefixtures("cli_env")
def test_run_zalo_needs_a_token() -> None:
    result = invoke("run", "zalo")
    assert result.exit_code == 2
    assert "Cannot start the Zalo bot: CHUNGSUC_ZALO_BOT_TOKEN is not set." in result.output


@pytest.mark.usefixtures("cli_env")
async def test_run_zalo_with_a_rejected_token(
    fake: FakeZaloBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHUNGSUC_ZALO_BOT_TOKEN", "0:rejected")
    monkeypatch.setenv("CHUNGSUC_ZALO_BOT_API_URL", f"{fake.url}/bot")  # type: ignore[attr-defined]
    result = await asyncio.to_thread(invoke, "run", "zalo")
    assert result.exit_code == 2
    assert "Cannot start the Zalo bot" in result.output
    assert "getMe failed: 401 Unauthorized" in result.output
    assert "0:rejected" not in result.output


@pytest.mark.usefixtures("cli_env")
@pytest.mark.parametrize(
    "url", ["http://[bad", "http://host:abc/bot", "http://127.0.0.1:99999/bot"]
)
def test_run_zalo_with_a_malformed_url_is_one_line(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("CHUNGSUC_ZALO_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("CHUNGSUC_ZALO_BOT_API_URL", url)
    result = invoke("run", "zalo")
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.output.startswith("Settings are not valid: CHUNGSUC_ZALO_BOT_API_URL: ")
    assert len(result.output.splitlines()) == 1
    assert BOT_TOKEN not in result.output


@pytest.mark.usefixtures("cli_env")
def test_serve_wants_an_https_url_for_webhooks() -> None:
    result = invoke("serve", "--set-webhooks", "http://x.org")
    assert result.exit_code == 2
    assert "--set-webhooks needs the public https:// URL" in result.output


async def test_serve_runs_the_sender_and_delivers_an_announcement_on_zalo(
    settings: Settings, services: Services, offline: WebhookRequest, fake: FakeZaloBot
) -> None:
    from datetime import UTC, datetime

    from bot.delivery import broadcasts

    await services.subscriptions.subscribe("zalo", "z-1", "02020", "vi")
    await broadcasts.create(
        services.db,
        "telegram:cb",
        kind="announcement",
        title="Họp thôn",
        text="Họp thôn tối nay",
        scope_level="commune",
        scope_code="02020",
        topic="commune_news",
        send_at=datetime.now(UTC),
    )
    app = create_app(settings, services=services, telegram_request=offline, jobs=True)
    async with serve(app):
        await eventually(lambda: "Họp thôn tối nay" in fake.sent(), within=10)
    assert [p["chat_id"] for p in fake.params("sendMessage")] == ["z-1"]


# --- bodies: malformed updates, size and time limits --------------------------------------------


@pytest.mark.parametrize(
    ("update", "error"),
    [
        pytest.param({"update_id": 7, "message": "x"}, "AttributeError", id="message-not-object"),
        pytest.param(
            {"update_id": 7, "message": {"message_id": 1, "date": 10**20, "chat": {"id": 1}}},
            "OverflowError",
            id="date-out-of-range",
        ),
        pytest.param({}, "TypeError", id="no-update-id"),
    ],
)
async def test_an_update_ptb_cannot_read_is_200_and_one_line(
    server: httpx.AsyncClient,
    offline: WebhookRequest,
    caplog: pytest.LogCaptureFixture,
    update: dict[str, Any],
    error: str,
) -> None:
    with caplog.at_level(logging.INFO):
        answer = await server.post("/telegram/webhook", json=update, headers={TG_HEADER: TG_SECRET})
    assert answer.status_code == 200  # Telegram would redeliver anything else, forever
    lines = [r for r in caplog.records if r.name == "bot.interfaces.server"]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING
    assert "dropped, PTB cannot read it: " + error in lines[0].getMessage()
    assert not any(r.exc_info for r in caplog.records)
    await asyncio.sleep(0.1)
    assert offline.sent() == []


@pytest.mark.parametrize("body", [b"{", b"\xff\xfe", b'"just a string"'])
async def test_a_telegram_body_that_is_not_a_json_object_is_400(
    server: httpx.AsyncClient, body: bytes
) -> None:
    answer = await server.post("/telegram/webhook", content=body, headers={TG_HEADER: TG_SECRET})
    assert answer.status_code == 400


LIMIT = 4096
SLOW = 0.5  # seconds a body may take in these tests
WEBHOOKS = [
    pytest.param("/telegram/webhook", {TG_HEADER: TG_SECRET}, id="telegram"),
    pytest.param("/zalo/bot/webhook", {ZALO_HEADER: ZALO_SECRET}, id="zalo"),
    pytest.param("/zalo/oa/webhook", {}, id="zalo_oa"),
]


@pytest.fixture
async def limited(
    settings: Settings, services: Services, offline: WebhookRequest
) -> AsyncIterator[str]:
    """The app with a small body limit and a short body time, served; its base URL."""
    small = settings.model_copy(update={"webhook_max_body": LIMIT, "webhook_body_timeout": SLOW})
    async with serve(create_app(small, services=services, telegram_request=offline)) as url:
        yield url


class RawClient:
    """One HTTP/1.1 connection written byte by byte, to send what no polite client sends."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def to(cls, url: str) -> RawClient:
        host, port = url.removeprefix("http://").split(":")
        return cls(*await asyncio.open_connection(host, int(port)))

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def head(self, path: str, headers: dict[str, str]) -> None:
        lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", *map(": ".join, headers.items())]
        await self.send(("\r\n".join(lines) + "\r\n\r\n").encode())

    async def status(self, within: float = 5.0) -> int:
        """The answer's status code, which must come within `within` seconds."""
        line = await asyncio.wait_for(self.reader.readline(), within)
        return int(line.split()[1])

    async def closed_by_server(self, within: float = 5.0) -> bool:
        """Whether the server ends the connection (the rest of the answer is read)."""
        async with asyncio.timeout(within):
            while await self.reader.read(65536):
                pass
        return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


@pytest.mark.parametrize(("path", "headers"), WEBHOOKS)
async def test_a_body_declared_too_large_is_413_before_it_is_read(
    limited: str, caplog: pytest.LogCaptureFixture, path: str, headers: dict[str, str]
) -> None:
    client = await RawClient.to(limited)
    try:
        await client.head(path, headers | {"Content-Length": str(10_000_000)})
        await client.send(b"x" * 1000)  # of ten million: the answer cannot wait for the rest
        assert await client.status() == 413
        assert await client.closed_by_server()
    finally:
        await client.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.interfaces.server"]
    assert lines == [
        f"webhook {path} from 127.0.0.1: Content-Length 10000000 is over the {LIMIT}-byte limit"
    ]


@pytest.mark.parametrize(("path", "headers"), WEBHOOKS)
async def test_a_chunked_body_is_counted_as_it_arrives(
    limited: str, path: str, headers: dict[str, str]
) -> None:
    client = await RawClient.to(limited)
    try:
        await client.head(path, headers | {"Transfer-Encoding": "chunked"})
        chunk = b"%x\r\n%s\r\n" % (1024, b"x" * 1024)
        await client.send(chunk * (LIMIT // 1024 + 1))  # over the limit, and never ended
        assert await client.status() == 413
    finally:
        await client.close()


@pytest.mark.parametrize(("path", "headers"), WEBHOOKS)
async def test_a_slow_body_is_cut_off_with_408(
    limited: str, path: str, headers: dict[str, str]
) -> None:
    client = await RawClient.to(limited)
    try:
        await client.head(path, headers | {"Content-Length": "100"})
        await client.send(b'{"update_id": ')  # and then nothing more
        started = asyncio.get_running_loop().time()
        assert await client.status(within=SLOW + 5) == 408
        assert asyncio.get_running_loop().time() - started >= SLOW * 0.8
        assert await client.closed_by_server()
    finally:
        await client.close()


@pytest.mark.parametrize(("path", "headers"), WEBHOOKS)
async def test_a_client_that_leaves_mid_body_is_one_line_without_a_traceback(
    limited: str, caplog: pytest.LogCaptureFixture, path: str, headers: dict[str, str]
) -> None:
    with caplog.at_level(logging.INFO):
        client = await RawClient.to(limited)
        await client.head(path, headers | {"Content-Length": "100"})
        await client.send(b'{"update_id": ')
        await client.close()
        await eventually(lambda: any("disconnected" in r.getMessage() for r in caplog.records))
        await asyncio.sleep(0.1)  # a traceback logged after the line would be here by now
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert lines == [
        f"webhook {path} from 127.0.0.1: client disconnected before sending the whole body"
    ]
    assert not any(r.exc_info for r in caplog.records)


async def test_a_body_within_the_limit_is_still_handled(
    limited: str, offline: WebhookRequest
) -> None:
    async with httpx.AsyncClient(base_url=limited) as http:
        answer = await http.post(
            "/telegram/webhook",
            json=telegram_update(ALICE, "/start"),
            headers={TG_HEADER: TG_SECRET},
        )
    assert answer.status_code == 200
    await eventually(lambda: len(offline.sent(ALICE)) == 2)
