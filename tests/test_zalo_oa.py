"""The Zalo OA channel: signed webhook events into the real server, replies to a fake OA API,
access tokens refreshed against a fake OAuth server (both on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from bot.app.services import Services
from bot.app.settings import Settings
from bot.channels.zalo_oa import (
    REFRESH_PAUSE,
    OaClient,
    Rejected,
    ZaloOaError,
    signature,
    verify,
)
from bot.interfaces.server import create_app
from bot.storage import oa_tokens
from bot.storage.oa_tokens import OaTokens
from tests.conftest import make_settings
from tests.fake_zalo import (
    OA_APP_ID,
    OA_APP_SECRET,
    OA_FIRST_REFRESH,
    OA_SECRET_KEY,
    FakeZaloOa,
    eventually,
    oa_event,
    signed,
)
from tests.live_server import serve

USER = "8842156427713412345"
WEBHOOK = "/zalo/oa/webhook"


@pytest.fixture
async def fake() -> AsyncIterator[FakeZaloOa]:
    fake = FakeZaloOa()
    async with serve(fake.app) as url:
        fake.url = url  # type: ignore[attr-defined]
        yield fake


@pytest.fixture
def settings(tmp_path: Path, db_url: str, fake: FakeZaloOa) -> Settings:
    url = fake.url  # type: ignore[attr-defined]
    return make_settings(
        tmp_path,
        db_url,
        zalo_oa_app_id=OA_APP_ID,
        zalo_oa_secret_key=OA_SECRET_KEY,
        zalo_oa_app_secret=OA_APP_SECRET,
        zalo_oa_refresh_token=OA_FIRST_REFRESH,
        zalo_oa_api_url=url,
        zalo_oa_oauth_url=url,
    )


@pytest.fixture
async def server(settings: Settings, services: Services) -> AsyncIterator[httpx.AsyncClient]:
    """The real app under uvicorn, and a client to post to it."""
    async with (
        serve(create_app(settings, services=services)) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        yield client


async def post(server: httpx.AsyncClient, event: dict[str, object], **kw: str) -> int:
    raw, headers = signed(event, **kw)
    return (await server.post(WEBHOOK, content=raw, headers=headers)).status_code


async def test_a_text_is_answered_with_a_numbered_menu(
    server: httpx.AsyncClient, fake: FakeZaloOa, services: Services
) -> None:
    assert await post(server, oa_event("user_send_text", USER, "/start")) == 200
    await eventually(lambda: len(fake.texts(USER)) == 2)
    greeting, languages = fake.texts(USER)
    assert "Xin chào! Mình là Chung Sức" in greeting
    assert "1. Tiếng Việt" in languages and "2. English" in languages
    # The first send fetched an access token with the configured refresh token …
    assert [c.params["refresh_token"] for c in fake.refreshes] == [OA_FIRST_REFRESH]
    assert fake.refreshes[0].headers["secret_key"] == OA_APP_SECRET
    # … and stored the new pair, since the old refresh token is now spent.
    stored = await oa_tokens.load(services.db, OA_APP_ID, OA_FIRST_REFRESH)
    assert (stored.access_token, stored.refresh_token) == ("access-1", "refresh-1")

    assert await post(server, oa_event("user_send_text", USER, "2")) == 200
    await eventually(lambda: len(fake.texts(USER)) == 3)
    assert "Which commune or ward" in fake.texts(USER)[2]
    assert len(fake.refreshes) == 1


@pytest.mark.parametrize(
    "tamper",
    ["wrong key", "no header", "body changed"],
)
async def test_forged_events_get_403_and_a_log_line(
    server: httpx.AsyncClient, fake: FakeZaloOa, caplog: pytest.LogCaptureFixture, tamper: str
) -> None:
    event = oa_event("user_send_text", USER, "/start")
    raw, headers = signed(
        event, secret_key="not the key" if tamper == "wrong key" else OA_SECRET_KEY
    )
    if tamper == "no header":
        del headers["X-ZEvent-Signature"]
    if tamper == "body changed":
        raw = raw.replace(b"/start", b"/tiendo")
    with caplog.at_level(logging.WARNING):
        assert (await server.post(WEBHOOK, content=raw, headers=headers)).status_code == 403
    assert any("bad X-ZEvent-Signature" in r.getMessage() for r in caplog.records)
    assert fake.messages == []


@pytest.mark.parametrize("off", [-3600, 3600])
async def test_signed_but_stale_or_future_events_get_403(
    server: httpx.AsyncClient, fake: FakeZaloOa, caplog: pytest.LogCaptureFixture, off: int
) -> None:
    event = oa_event("user_send_text", USER, "/start")
    event["timestamp"] = str(int((time.time() + off) * 1000))
    with caplog.at_level(logging.WARNING):
        assert await post(server, event) == 403
    assert any("s off (at most 300 s allowed)" in r.getMessage() for r in caplog.records)
    assert fake.messages == []


async def test_the_same_event_twice_is_handled_once(
    server: httpx.AsyncClient, fake: FakeZaloOa
) -> None:
    text, follow = oa_event("user_send_text", USER, "/start"), oa_event("follow", "f1")
    for event in (text, text, follow, follow):
        assert await post(server, event) == 200
    await eventually(lambda: len(fake.texts()) == 4)
    await asyncio.sleep(0.2)  # a second answer to either would have arrived by now
    assert len(fake.texts(USER)) == 2 and len(fake.texts("f1")) == 2


async def test_follow_starts_onboarding_and_unfollow_unsubscribes(
    server: httpx.AsyncClient,
    fake: FakeZaloOa,
    services: Services,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="bot.channels.zalo_oa"):
        assert await post(server, oa_event("follow", USER)) == 200
        await eventually(lambda: len(fake.texts(USER)) == 2)
        assert "Xin chào! Mình là Chung Sức" in fake.texts(USER)[0]
        assert await post(server, oa_event("user_send_text", USER, "Bằng Lãng")) == 200
        await eventually(lambda: len(fake.texts(USER)) == 3)
        subscription = await services.subscriptions.get("zalo_oa", USER)
        assert subscription is not None and subscription.active
        assert await post(server, oa_event("unfollow", USER)) == 200
        assert await post(server, oa_event("user_seen_message", USER)) == 200
        await eventually(lambda: any("unfollowed" in r.getMessage() for r in caplog.records))
    assert any(r.getMessage() == f"zalo_oa:{USER} unfollowed; unsubscribed" for r in caplog.records)
    subscription = await services.subscriptions.get("zalo_oa", USER)
    assert subscription is not None and not subscription.active
    assert len(fake.texts(USER)) == 3


@pytest.mark.parametrize("kind", ["user_send_image", "user_send_sticker", "user_send_audio"])
async def test_images_stickers_audio_get_text_please(
    server: httpx.AsyncClient, fake: FakeZaloOa, kind: str
) -> None:
    assert await post(server, oa_event(kind, USER)) == 200
    await eventually(lambda: bool(fake.texts(USER)))
    assert "Mình chỉ hiểu tin nhắn chữ" in fake.texts(USER)[0]


def test_signature_is_zalos_formula() -> None:
    body = b'{"event_name":"user_send_text"}'
    expected = "mac=" + hashlib.sha256(b"app" + body + b"123" + b"key").hexdigest()
    assert signature("app", body, "123", "key") == expected
    with pytest.raises(Rejected, match="not JSON"):
        verify(b"{", expected, "app", "key", 300)


# --- tokens: the OA client against the fake OAuth server ----------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def oa_client(
    fake: FakeZaloOa, http: httpx.AsyncClient, services: Services, clock: Clock | None = None
) -> OaClient:
    url = fake.url  # type: ignore[attr-defined]
    return OaClient(
        http, services.db, OA_APP_ID, OA_APP_SECRET, OA_FIRST_REFRESH, url, url, clock or Clock()
    )


async def store(services: Services, access: str, refresh: str, expires_in: timedelta) -> None:
    tokens = OaTokens(access, refresh, datetime.now(UTC) + expires_in)
    await oa_tokens.save(services.db, OA_APP_ID, OA_FIRST_REFRESH, tokens)


async def test_a_token_about_to_expire_is_refreshed_before_sending(
    fake: FakeZaloOa, http: httpx.AsyncClient, services: Services
) -> None:
    fake.valid_access.add("old")
    await store(services, "old", OA_FIRST_REFRESH, timedelta(minutes=5))

    await oa_client(fake, http, services).send_text(USER, "xin chào")

    assert len(fake.refreshes) == 1
    assert [c.headers["access_token"] for c in fake.messages] == ["access-1"]
    assert fake.texts(USER) == ["xin chào"]


async def test_a_rejected_token_is_refreshed_and_the_send_retried_once(
    fake: FakeZaloOa, http: httpx.AsyncClient, services: Services
) -> None:
    await store(services, "revoked", OA_FIRST_REFRESH, timedelta(hours=20))

    await oa_client(fake, http, services).send_text(USER, "xin chào")

    assert [c.headers["access_token"] for c in fake.messages] == ["revoked", "access-1"]
    assert fake.texts(USER) == ["xin chào"]


async def test_minus_216_after_a_refresh_does_not_loop(
    fake: FakeZaloOa, http: httpx.AsyncClient, services: Services
) -> None:
    await store(services, "revoked", OA_FIRST_REFRESH, timedelta(hours=20))
    fake.fail_send = [(200, {"error": -216, "message": "invalid"})] * 2

    with pytest.raises(ZaloOaError, match="-216"):
        await oa_client(fake, http, services).send_text(USER, "xin chào")
    assert len(fake.refreshes) == 1 and len(fake.messages) == 2


async def test_a_failed_refresh_is_loud_paused_then_retried(
    fake: FakeZaloOa,
    http: httpx.AsyncClient,
    services: Services,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake.refresh_token = "someone else's"  # ours was spent elsewhere: Zalo says no
    clock = Clock()
    client = oa_client(fake, http, services, clock)

    with pytest.raises(ZaloOaError):
        await client.send_text(USER, "một")
    with pytest.raises(ZaloOaError, match="not retried yet"):
        await client.send_text(USER, "hai")
    assert len(fake.refreshes) == 1
    loud = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(loud) == 1 and "ZALO OA TOKEN REFRESH FAILED" in loud[0].getMessage()
    assert "Invalid refresh token" in loud[0].getMessage()

    fake.refresh_token = OA_FIRST_REFRESH  # the operator fixed it; after the pause, it works
    clock.now += REFRESH_PAUSE
    await client.send_text(USER, "ba")
    assert fake.texts(USER) == ["ba"]


async def test_the_new_refresh_token_is_stored_before_it_is_used(
    fake: FakeZaloOa, http: httpx.AsyncClient, services: Services
) -> None:
    fake.fail_send = [(500, {"error": -1, "message": "internal"})]
    with pytest.raises(ZaloOaError):
        await oa_client(fake, http, services).send_text(USER, "một")
    stored = await oa_tokens.load(services.db, OA_APP_ID, OA_FIRST_REFRESH)
    assert stored.refresh_token == fake.refresh_token == "refresh-1"

    # A restarted process uses the stored token: no refresh, and the message goes out.
    await oa_client(fake, http, services).send_text(USER, "hai")
    assert len(fake.refreshes) == 1
    assert fake.texts(USER) == ["hai"]


async def test_a_new_refresh_token_in_the_settings_wins(services: Services) -> None:
    await store(services, "a", "spent", timedelta(hours=1))
    assert (await oa_tokens.load(services.db, OA_APP_ID, OA_FIRST_REFRESH)).refresh_token == "spent"
    fresh = await oa_tokens.load(services.db, OA_APP_ID, "re-authorised")
    assert (fresh.access_token, fresh.refresh_token) == ("", "re-authorised")
