"""Dân bàn for the whole province: a province official asks every commune, villagers of any of
them vote, the results come by commune (small ones merged), closed and announced province-wide.
A commune official never gets the choice."""

from __future__ import annotations

import asyncio
import csv
import io
import os
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient
from typer.testing import CliRunner

from bot.app.services import Services
from bot.app.settings import Settings
from bot.core.dispatch import Dispatcher
from bot.delivery.digest import build_digests
from bot.delivery.outbox import get_broadcast
from bot.delivery.scheduler import run_due
from bot.domain.clock import FixedClock
from bot.interfaces.cli.main import app
from bot.interfaces.server import create_app
from bot.storage.polls import Group, NewPoll, Poll, PollStore, Question
from bot.storage.schema import poll_ballots, polls
from bot.web.open_data import _polls as open_data_polls
from tests.conftest import NOW, Chat
from tests.test_polls import (
    OLD,
    OPTIONS,
    REFUSAL,
    count,
    migrated_from,
    onboard,
    recipients_of,
    text_of,
)

CHO_DON, NA_RI, PROVINCE = "02020", "02155", "19"


async def province_official(services: Services, dispatcher: Dispatcher, channel: str) -> Chat:
    """A province official who lives in Chợ Đồn."""
    await services.officials.grant(f"{channel}:tinh", "province_official", PROVINCE, "test")
    chat = Chat(dispatcher, channel, "tinh")
    await onboard(chat)
    return chat


async def up_to_scope(official: Chat) -> str:
    """/taobinhchon, a question and its options: the scope step's question."""
    await official.say("/taobinhchon")
    await official.say("Làm việc nào trước?")
    await official.say("\n".join(OPTIONS))
    await official.press("poll:opts")
    return await official.press("poll:next")


async def whole_province_poll(services: Services, results: str = "after_vote") -> Poll:
    poll, _created = await services.polls.create(
        NewPoll(
            PROVINCE,
            None,
            (Question("Làm việc nào trước?", "one", tuple(OPTIONS)),),
            results,
            NOW + timedelta(days=3),
            "test-province",
            province_code=PROVINCE,
            whole_province=True,
        ),
        actor="test",
    )
    return poll


def province_scope(services: Services) -> str:
    return f"{services.reference.province_name} (mọi xã, phường)"


# --- creating: the choice is the province officials' alone -----------------------------------


async def test_a_province_official_asks_the_whole_province_and_any_commune_votes(
    chat: Chat, dispatcher: Dispatcher, services: Services
) -> None:
    official = await province_official(services, dispatcher, chat.channel)
    asked = await up_to_scope(official)
    assert "Hỏi ý kiến ai?" in asked
    assert official.label("poll:province") == "Toàn tỉnh"
    assert "poll:scope:0" in official.buttons  # their own commune is still offered
    assert "Đóng bình chọn lúc nào?" in await official.press("poll:province")
    await official.say("18:00 5/12")
    preview = await official.press("poll:res:after_vote")
    assert f"🗳 Làm việc nào trước?\nDành cho: {province_scope(services)}" in preview
    assert "Đã mở bình chọn số 1." in await official.say("dung roi")
    poll = await services.polls.get(1)
    assert poll is not None
    assert (poll.level, poll.commune_code, poll.province_code) == ("province", PROVINCE, PROVINCE)
    b = await get_broadcast(services.db, 1)
    assert b is not None and (b.scope_level, b.scope_code) == ("province", PROVINCE)

    # A villager of another commune (Na Rì), on the chat's channel, lists it and votes.
    await onboard(chat, "na ri")
    shown = await chat.say("binh chon")
    assert f"Dành cho: {province_scope(services)}" in shown
    recorded = await chat.say("sua kenh muong ban cuon")
    assert "Đã ghi nhận ý kiến của bạn: Sửa kênh mương Bản Cuôn." in recorded
    assert "Tham gia: 1/2 người nhận tin (50%)" in recorded  # the official and the villager
    replay = await chat.press_unoffered("poll:vote:1:1")  # the update sent again
    assert "Bạn đã chọn Sửa kênh mương Bản Cuôn rồi" in replay
    assert await count(services, poll_ballots) == 1
    # Its ballot is counted in its commune.
    async with services.db.read() as conn:
        groups = (await conn.execute(select(poll_ballots.c.village))).scalars().all()
    assert groups == [NA_RI]


async def test_a_province_official_of_no_commune_asks_the_province_only(
    dispatcher: Dispatcher, services: Services
) -> None:
    await services.officials.grant("zalo:tinh2", "province_official", PROVINCE, "test")
    official = Chat(dispatcher, "zalo", "tinh2")
    await official.say("/start")
    await official.press("lang:vi")
    # No commune of their own: the command is typed at the commune question.
    assert "Hỏi ý kiến ai?" in await up_to_scope(official)
    assert [b for b in official.buttons if b.startswith("poll:")] == ["poll:province"]
    assert "Đã mở" not in await official.press_unoffered("poll:scope:0")  # no commune to ask
    assert "Đóng bình chọn lúc nào?" in await official.say("toan tinh")  # the label typed
    await official.say("18:00 5/12")
    await official.press("poll:res:after_close")
    assert "Đã mở bình chọn số 1." in await official.press("poll:ok")


async def test_a_commune_official_never_gets_the_province_and_a_forged_press_is_refused(
    chat: Chat, services: Services
) -> None:
    await services.officials.grant(
        f"{chat.channel}:{chat.user_id}", "commune_official", CHO_DON, "t"
    )
    await onboard(chat)
    await up_to_scope(chat)
    assert "poll:province" not in chat.buttons
    assert "Toàn tỉnh" not in str([chat.label(b) for b in chat.buttons])
    assert await chat.press_unoffered("poll:province") == REFUSAL
    assert await count(services, polls) == 0
    # The refusal changed nothing: the draft goes on, of the commune.
    assert "Đóng bình chọn lúc nào?" in await chat.press_unoffered("poll:scope:0")
    await chat.say("18:00 5/12")
    await chat.press("poll:res:after_vote")
    assert "Đã mở bình chọn số 1." in await chat.press("poll:ok")
    poll = await services.polls.get(1)
    assert poll is not None and (poll.level, poll.commune_code) == ("commune", CHO_DON)


async def test_a_villager_refused_a_province_poll_of_another_province(
    dispatcher: Dispatcher, services: Services
) -> None:
    poll, _created = await services.polls.create(
        NewPoll(
            "01",
            None,
            (Question("Làm việc nào trước?", "one", tuple(OPTIONS)),),
            "after_vote",
            NOW + timedelta(days=3),
            "test-elsewhere",
            province_code="01",
            whole_province=True,
        ),
        actor="test",
    )
    villager = Chat(dispatcher, "zalo", "z1")
    await onboard(villager)
    assert "chưa có bình chọn nào" in await villager.say("/binhchon")
    assert "Đã ghi nhận" not in await villager.press_unoffered(f"poll:vote:{poll.id}:0")
    assert await count(services, poll_ballots) == 0


# --- results by commune, turnout, the close announced province-wide --------------------------


async def test_results_by_commune_merge_small_ones_and_the_close_is_told_province_wide(
    dispatcher: Dispatcher, services: Services
) -> None:
    poll = await whole_province_poll(services, results="after_close")
    others = sorted(c for c in services.reference.communes if c not in (CHO_DON, NA_RI))[:2]
    people = {CHO_DON: 6, NA_RI: 5, others[0]: 3, others[1]: 2}
    n = 0
    for commune, many in people.items():
        for _ in range(many):
            n += 1
            outcome, _r = await services.polls.vote(
                poll, ((n % 2,),), "zalo", f"v{n}", commune=commune
            )
            assert outcome == "recorded"
    # Subscribers of four communes and one of no commune (not counted).
    villagers = {}
    for code in [CHO_DON, NA_RI, *others]:
        villagers[code] = Chat(dispatcher, "telegram", f"s-{code}")
        await onboard(villagers[code], services.reference.communes[code].name)
    results = await services.polls.results(poll)
    assert results.counts == (8, 8) and results.voters == 16
    assert results.subscribers == 4
    # The two small communes (3 and 2) are "khác" together: five.
    assert results.groups == (
        Group(CHO_DON, (3, 3), 6),
        Group(NA_RI, (2, 3), 5),
        Group(None, (3, 2), 5),
    )
    services.clock = FixedClock(NOW + timedelta(days=3))
    assert "polls:close" in await run_due(services, services.now())
    said = await text_of(services, "poll_result")
    assert f"Dành cho: {province_scope(services)}" in said
    assert "Theo xã, phường (nơi dưới 5 người gộp vào “khác”):" in said
    assert "– Xã Chợ Đồn: Làm đường Nà Làng trước 3, Sửa kênh mương Bản Cuôn 3" in said
    assert "– Xã Na Rì: Làm đường Nà Làng trước 2, Sửa kênh mương Bản Cuôn 3" in said
    assert "– khác: Làm đường Nà Làng trước 3, Sửa kênh mương Bản Cuôn 2" in said
    english = await text_of(services, "poll_result", "en")
    assert "By commune or ward (places under 5 voters merged into “other”):" in english
    reached = await recipients_of(services, "poll_result")
    assert {("telegram", f"s-{c}") for c in people} <= reached["vi"]
    # In chat, the closed poll's results name the communes too.
    shown = await villagers[others[0]].say("/binhchon")
    assert "– Xã Chợ Đồn:" in shown and "Đã đóng lúc" in shown
    # The open data names the communes of a province poll's groups, as the chat does.
    rows = await open_data_polls(None, services)  # type: ignore[arg-type]
    assert {r["group"] for r in rows if r["poll_id"] == poll.id} == {
        "",
        "Xã Chợ Đồn",
        "Xã Na Rì",
        "khác",
    }


async def test_a_commune_digest_and_the_export_show_the_province_poll(
    dispatcher: Dispatcher, services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    poll = await whole_province_poll(services)
    for n in range(5):
        await services.polls.vote(poll, ((0,),), "zalo", f"c{n}", commune=CHO_DON)
    for n in range(5):
        await services.polls.vote(poll, ((1,),), "zalo", f"n{n}", commune=NA_RI)
    villager = Chat(dispatcher, "telegram", "d1")
    await onboard(villager, "na ri")
    await services.subscriptions.choose("telegram", "d1", digest="daily")
    [digest] = await build_digests(services, "daily", NOW - timedelta(hours=1), NOW)
    b = await get_broadcast(services.db, digest)
    assert b is not None and "• Làm việc nào trước? (toàn tỉnh) — mở, hạn chót" in b.text

    for name in [n for n in os.environ if n.startswith("CHUNGSUC_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CHUNGSUC_DB_URL", str(services.db.engine.url))
    done = await asyncio.to_thread(CliRunner().invoke, app, ["export", "polls"])
    assert done.exit_code == 0, done.output
    rows = list(csv.reader(io.StringIO(done.stdout)))
    table = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    assert {r["ten_xa"] for r in table} == {services.reference.province_name}
    assert [(r["nhom"], r["so_phieu"]) for r in table] == [
        ("tất cả", "5"),
        ("tất cả", "5"),
        ("Xã Chợ Đồn", "5"),
        ("Xã Chợ Đồn", "0"),
        ("Xã Na Rì", "0"),
        ("Xã Na Rì", "5"),
    ]


# --- the migration -----------------------------------------------------------------------


async def test_polls_of_before_0014_become_of_their_commune_or_village_and_province(
    tmp_path: Path,
) -> None:
    polls_then = [
        "INSERT INTO polls (id, commune_code, village, question, results, closes_at, status,"
        f" created_by, created_at, source_key) VALUES ({n}, '02020', {village}, 'Hỏi?',"
        f" 'after_vote', '2026-12-05 11:00:00.000000', 'open', 'cb', {OLD}, 'old-{n}')"
        for n, village in [(1, "NULL"), (2, "'Nà Làng'")]
    ]
    commune = (
        "INSERT INTO areas (era, level, code, kind, name, parent_code, province_code)"
        " VALUES ('2025', 'commune', '02020', 'xa', 'Xã Chợ Đồn', '19', '19')"
    )
    async with migrated_from(tmp_path, "0013", commune, *polls_then) as db:
        store = PollStore(db)
        first, second = await store.get(1), await store.get(2)
        assert first is not None and second is not None
        assert (first.level, first.province_code) == ("commune", "19")
        assert (second.level, second.province_code, second.village) == ("village", "19", "Nà Làng")


async def test_the_commune_page_lists_the_province_poll(
    services: Services, settings: Settings
) -> None:
    # Every commune's public page shows the polls its people may answer, the province's too.
    poll = await whole_province_poll(services)
    with TestClient(create_app(settings, clock=FixedClock(NOW))) as client:
        page = client.get(f"/xa/{NA_RI}").text
    assert poll.question in page and "Toàn tỉnh ·" in page
