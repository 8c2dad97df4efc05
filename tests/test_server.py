"""The webhook server: routes per configured channel, secrets, dedup, /healthz, --set-webhooks,
served by uvicorn on 127.0.0.1 against an offline Telegram and a fake Zalo Bot API."""

from __future__ import annotations

import asyncio
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

from bot.cli_channels import register
from bot.server import create_app, plan_channels
from bot.services import Services
from bot.settings import Settings
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
def settings(tmp_path: Path, fake: FakeZaloBot) -> Settings:
    return make_settings(
        tmp_path,
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
    assert plan_channels(settings)[0] == []
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
    with caplog.at_level(logging.INFO, logger="bot.server"):
        async with serve(app):
            pass
    telegram = offline.params("setWebhook")
    assert [(p["url"], p["secret_token"]) for p in telegram] == [
        ("https://x.org/telegram/webhook", TG_SECRET)
    ]
    assert fake.params("setWebhook") == [
        {"url": "https://x.org/zalo/bot/webhook", "secret_token": ZALO_SECRET}
    ]
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.server"]
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
def test_serve_wants_an_https_url_for_webhooks() -> None:
    result = invoke("serve", "--set-webhooks", "http://x.org")
    assert result.exit_code == 2
    assert "--set-webhooks needs the public https:// URL" in result.output


async def test_serve_runs_the_sender_and_delivers_an_announcement_on_zalo(
    settings: Settings, services: Services, offline: WebhookRequest, fake: FakeZaloBot
) -> None:
    from datetime import UTC, datetime

    from bot import broadcasts

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
