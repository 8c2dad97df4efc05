"""The public pages through Starlette's TestClient: the province, a commune, the search, in
Vietnamese and English — every link answering, the numbers with their sources, no names."""

from __future__ import annotations

import asyncio
import re

import pytest
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.testclient import TestClient

from bot.storage.cache import TtlCache
from bot.web.site import Site
from tests import public_data
from tests.public_data import (
    ANSWER,
    COMMUNE,
    MONTHS,
    OPEN_QUESTION,
    QUESTION,
    SCHEDULED,
    SECRETS,
    SENT,
)

seeded, client = public_data.seeded, public_data.client  # the shared fixtures

HREF = re.compile(r'href="([^"]+)"')


def links(html: str) -> list[str]:
    return [h.replace("&amp;", "&") for h in HREF.findall(html) if h.startswith("/")]


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_every_link_on_each_page_answers(client: TestClient, lang: str) -> None:
    query = "" if lang == "vi" else "?lang=en"
    for start in ("/", f"/xa/{COMMUNE}", "/du-lieu", "/tim?q=bang+lung"):
        page = client.get(start + (query.replace("?", "&") if "?" in start else query))
        assert page.status_code == 200, start
        assert f'<html lang="{lang}">' in page.text
        assert len(page.content) < 100_000, (start, len(page.content))
        for href in links(page.text):
            assert client.get(href).status_code == 200, (start, href)
            if lang == "en" and not href.startswith(("/static", "/du-lieu/", "/open311")):
                assert "lang=en" in href or href.endswith("lang=vi"), (start, href)


def test_the_province_ranks_communes_and_names_its_sources(client: TestClient) -> None:
    page = client.get("/").text
    assert "Xếp hạng các xã theo số tiêu chí đạt" in page
    assert "Bình quân tỉnh:" in page
    assert "Dữ liệu mẫu — không phải số liệu chính thức." in page  # the sample is labelled
    assert "Nguồn: kết quả đánh giá do cơ quan có thẩm quyền công bố" in page
    assert "Bê tông hóa đường thôn Nà Làng (mẫu)" in page  # the campaign under way
    rows = re.findall(r"<tr><td>(\d+)</td><td><a href=\"/xa/(\d+)\">[^<]+</a></td><td>(\d+)/", page)
    met = [int(n) for _, _, n in rows]
    assert len(rows) > 10 and met == sorted(met, reverse=True)


def test_the_commune_page_shows_status_chart_campaign_polls_reports(client: TestClient) -> None:
    page = client.get(f"/xa/{COMMUNE}").text
    assert "Xã Chợ Đồn" in page and "Đạt " in page and "Căn cứ:" in page
    assert "Nguồn: Dữ liệu mẫu do Chung Sức tạo để minh họa" in page  # source, who, when
    assert "<svg" in page and "<polyline" in page  # criteria met over time
    assert "Còn thiếu:" in page or "Chưa có số liệu:" in page
    # The project its gifts build: progress, budget, what the people gave, the latest update.
    assert "Đường bê tông thôn Nà Làng (mẫu)" in page and "đang thi công" in page
    assert "Kinh phí: 1.450.000.000 đồng (Ngân sách nhà nước: 1,2 tỷ đồng;" in page
    assert "Nhân dân đã góp: 120 m² đất, 3,1 triệu đồng" in page
    assert "Đã đổ bê tông 450 m mặt đường" in page
    # The closed poll with its results; the open one without them.
    assert QUESTION in page and "12 phiếu" in page
    assert OPEN_QUESTION in page and "kết quả công bố khi kết thúc" in page
    # A poll of two questions: the one with options counted (shares of its 6 voters), the
    # one answered in words neither counted nor shown (officials read those).
    assert MONTHS in page and "6 phiếu" in page and "Tháng 2: <strong>3</strong> (50%)" in page
    # Reports: category, village, state, the official's answer — no names, no texts.
    assert "Đường giao thông" in page and "đã giải quyết" in page and ANSWER in page
    assert "Tổng 2 phản ánh; đã giải quyết 1" in page
    # Recent announcements: the news files and what was sent to the commune, not what waits.
    assert "Khởi công bê tông hóa đường thôn Nà Làng (tin mẫu)" in page
    assert SENT in page and SCHEDULED not in page
    for secret in SECRETS:
        assert secret not in page


def test_english_with_lang_en(client: TestClient) -> None:
    page = client.get(f"/xa/{COMMUNE}?lang=en").text
    assert '<html lang="en">' in page
    assert "Still missing:" in page or "No data yet:" in page
    assert "Dân kiểm tra" not in page and "Tiêu chí" not in page
    assert client.get("/?lang=en").text.count("Ranking of communes") == 1


@pytest.mark.parametrize(
    ("lang", "words"), [("vi", "Không tìm thấy xã này."), ("en", "No such commune.")]
)
def test_an_unknown_commune_is_404_in_the_users_language(
    client: TestClient, lang: str, words: str
) -> None:
    page = client.get("/xa/99999", params={"lang": lang})
    assert page.status_code == 404
    assert words in page.text


@pytest.mark.parametrize(
    "typed", ["cho don", "CHO DON", "chodon", "Chợ Đồn", "cho dong", "xa cho don"]
)
def test_the_search_understands_names_as_the_chat_does(client: TestClient, typed: str) -> None:
    found = client.get("/tim", params={"q": typed}, follow_redirects=False)
    assert found.status_code == 303
    assert found.headers["location"] == f"/xa/{COMMUNE}"


def test_an_old_name_says_where_it_went(client: TestClient) -> None:
    page = client.get("/tim", params={"q": "bang lung", "lang": "en"})
    assert page.status_code == 200
    assert "Chợ Đồn" in page.text and 'href="/xa/02020?lang=en"' in page.text


def test_a_search_for_nothing_known_says_so(client: TestClient) -> None:
    page = client.get("/tim", params={"q": "<script>xyz</script>"})
    assert page.status_code == 200
    assert "<script>xyz" not in page.text and "&lt;script&gt;xyz" in page.text


def test_a_ward_gets_no_ntm_title(client: TestClient) -> None:
    page = client.get("/xa/01840").text
    assert "Phường và đặc khu không thuộc chương trình nông thôn mới." in page
    assert "Danh hiệu:" not in page


async def test_an_expired_page_is_rendered_once_while_the_others_get_the_last_one() -> None:
    site = Site()
    site.pages = TtlCache(0.0)  # every page has expired as soon as it is kept
    request = Request({"type": "http", "query_string": b"lang=en", "path": "/", "headers": []})
    renders: list[int] = []
    gate = asyncio.Event()

    async def make() -> Response:
        renders.append(1)
        if len(renders) > 1:
            await gate.wait()  # a slow re-render
        return HTMLResponse(f"v{len(renders)}")

    assert (await site.cached(request, ("p",), make)).body == b"v1"
    slow = asyncio.create_task(site.cached(request, ("p",), make))
    await asyncio.sleep(0)  # the re-render has begun and waits
    meanwhile = await asyncio.wait_for(site.cached(request, ("p",), make), 2)
    assert meanwhile.body == b"v1" and len(renders) == 2
    gate.set()
    assert (await slow).body == b"v2"
    assert (await site.cached(request, ("other",), make)).body == b"v3"  # another page: its own
