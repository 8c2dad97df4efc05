"""Project photos on the site, through Starlette's TestClient against the offline Bot API: a
Telegram photo of an update is fetched once, stored without its metadata, served at a stable
address and shown on the commune page and in the open data; a Zalo photo, no token, or a failed
download shows no image (one log line for the failure) and says the photo is in the chat."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

from bot.app.services import Services
from bot.app.settings import Settings
from bot.domain.clock import FixedClock
from bot.interfaces.server import create_app
from bot.storage.projects import BUILDING, NewUpdate
from bot.web.photos import NotJpeg, strip_metadata
from tests import public_data
from tests.conftest import NOW
from tests.offline_telegram import TOKEN, OfflineRequest
from tests.public_data import COMMUNE

seeded, client = public_data.seeded, public_data.client  # the shared fixtures

JPEG = (Path(__file__).parent / "data" / "site-photo.jpg").read_bytes()
# An EXIF segment as a phone writes one (the camera's owner and place), put after SOI.
_TAGS = b"Exif\x00\x00Nguyen Van A 21.59N 105.84E"
EXIF = b"\xff\xe1" + (2 + len(_TAGS)).to_bytes(2, "big") + _TAGS
WITH_EXIF = JPEG[:2] + EXIF + JPEG[2:]
NOTE = "Đã lát xong 600 m mặt đường, còn rãnh thoát nước"
IN_CHAT = "Kèm 1 ảnh — xem trong tin nhắn của Chung Sức."
IN_CHAT_EN = "With 1 photo — see it in the Chung Sức chat."
IMG = re.compile(r'<img class="photo" src="(/anh/cong-trinh/(\d+)\.jpg)" alt="([^"]*)"')


async def _update_with_photo(services: Services, photo: str, channel: str) -> int:
    project = (await services.projects.of_commune(COMMUNE))[0]
    posted = await services.projects.post_update(
        project.id,
        NewUpdate(BUILDING, 80, NOTE, photo, channel, f"photo-test-{photo}"),
        "telegram:1",
    )
    assert posted is not None
    return posted[0].id


def _telegram_app(settings: Settings, offline: OfflineRequest) -> TestClient:
    """`chungsuc serve` with Telegram configured, on the test's database, the Bot API offline."""
    with_token = settings.model_copy(
        update={"telegram_token": SecretStr(TOKEN), "telegram_webhook_secret": SecretStr("tg-s_1")}
    )
    return TestClient(create_app(with_token, telegram_request=offline, clock=FixedClock(NOW)))


@pytest.fixture
def offline() -> OfflineRequest:
    return OfflineRequest()


@pytest.fixture
async def telegram_photo(seeded: Services, offline: OfflineRequest) -> int:
    offline.files["tg-photo-1"] = WITH_EXIF
    return await _update_with_photo(seeded, "tg-photo-1", "telegram")


@pytest.fixture
def site(settings: Settings, offline: OfflineRequest, telegram_photo: int) -> Iterator[TestClient]:
    with _telegram_app(settings, offline) as test_client:
        yield test_client
    assert offline.unexpected == []


def downloads(offline: OfflineRequest) -> int:
    return sum(1 for c in offline.calls if c.method == "download")


def test_the_commune_page_shows_the_telegram_photo_fetched_once(
    site: TestClient, offline: OfflineRequest, telegram_photo: int, settings: Settings
) -> None:
    page = site.get(f"/xa/{COMMUNE}")
    assert page.status_code == 200 and len(page.content) < 100_000
    shown = IMG.findall(page.text)
    assert shown == [(f"/anh/cong-trinh/{telegram_photo}.jpg", str(telegram_photo), NOTE)]
    assert IN_CHAT not in page.text
    image = site.get(shown[0][0])
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/jpeg"
    assert image.headers["cache-control"] == "public, max-age=604800"
    assert image.content == JPEG  # the EXIF segment cut out, the image itself as it was
    assert b"Nguyen Van A" not in image.content
    assert (Path(settings.photo_dir) / f"{telegram_photo}.jpg").read_bytes() == JPEG
    # English page, the image again, the open data: no second download.
    assert IMG.findall(site.get(f"/xa/{COMMUNE}?lang=en").text)[0][0] == shown[0][0]
    assert site.get(shown[0][0]).content == JPEG
    rows = site.get("/du-lieu/cong-trinh-cap-nhat.json").json()
    rows = rows["rows"] if isinstance(rows, dict) else rows
    with_photo = [r for r in rows if r["photo_url"]]
    assert [(r["photo_url"], r["note"]) for r in with_photo] == [(shown[0][0], NOTE)]
    assert downloads(offline) == 1


def test_the_photo_is_fetched_on_its_own_address_first_too(
    site: TestClient, offline: OfflineRequest, telegram_photo: int
) -> None:
    image = site.get(f"/anh/cong-trinh/{telegram_photo}.jpg")
    assert image.status_code == 200 and image.content == JPEG
    assert site.get("/anh/cong-trinh/999999.jpg").status_code == 404
    assert site.get("/anh/cong-trinh/abc.jpg").status_code == 404
    assert downloads(offline) == 1


async def test_a_failed_download_shows_no_image_and_logs_one_line(
    seeded: Services, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    update_id = await _update_with_photo(seeded, "tg-gone", "telegram")
    offline = OfflineRequest(fail={"getFile": "Bad Request: wrong file_id specified"})
    caplog.set_level(logging.WARNING, logger="bot.web.photos")
    with _telegram_app(settings, offline) as test_client:
        for lang, words in (("vi", IN_CHAT), ("en", IN_CHAT_EN), ("vi", IN_CHAT)):
            test_client.get("/du-lieu/cong-trinh-cap-nhat.json")
            page = test_client.get(f"/xa/{COMMUNE}", params={"lang": lang}).text
            assert "<img" not in page and words in page
        assert test_client.get(f"/anh/cong-trinh/{update_id}.jpg").status_code == 404
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.web.photos"]
    assert lines == [f"No photo for project update {update_id}: Wrong file_id specified"]


async def test_a_zalo_photo_or_no_token_shows_no_image_but_says_it_is_in_chat(
    seeded: Services, settings: Settings
) -> None:
    zalo = await _update_with_photo(seeded, "zalo-photo-id", "zalo")
    offline = OfflineRequest()
    with _telegram_app(settings, offline) as test_client:
        page = test_client.get(f"/xa/{COMMUNE}").text
        assert "<img" not in page and IN_CHAT in page
        assert test_client.get(f"/anh/cong-trinh/{zalo}.jpg").status_code == 404
    assert offline.unexpected == [] and downloads(offline) == 0


async def test_no_token_shows_no_image(seeded: Services, settings: Settings) -> None:
    await _update_with_photo(seeded, "tg-photo-2", "telegram")
    with TestClient(create_app(settings, clock=FixedClock(NOW))) as test_client:
        page = test_client.get(f"/xa/{COMMUNE}").text
        assert "<img" not in page and IN_CHAT in page
        rows = test_client.get("/du-lieu/cong-trinh-cap-nhat.csv").text
        assert "/anh/cong-trinh/" not in rows
    assert not Path(settings.photo_dir).exists()


def test_metadata_is_cut_and_what_is_no_jpeg_refused() -> None:
    assert strip_metadata(WITH_EXIF) == JPEG
    for bad in (b"", b"GIF89a....", b"\xff\xd8\xff\xe1\xff\xff", JPEG[:2] + b"\x00\x00\x00"):
        with pytest.raises(NotJpeg):
            strip_metadata(bad)
