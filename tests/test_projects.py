"""Công trình: transcripts of villagers asking how a project is going, officials recording one
and posting its progress, subscribers told once per update, digests, and project files."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from telegram import Update
from typer.testing import CliRunner

from bot.app.services import Services
from bot.app.settings import Settings
from bot.channels.telegram import build_application
from bot.content.project_files import SAMPLES_DIR, ProjectFileError, load_project_files
from bot.content.project_texts import bar, status_of
from bot.core.conversation import Incoming
from bot.core.dispatch import Dispatcher
from bot.delivery.digest import build_digests
from bot.delivery.outbox import get_broadcast
from bot.interfaces.cli.main import app
from bot.storage.projects import NewUpdate
from bot.storage.schema import audit_log, broadcasts, project_updates, projects
from tests.conftest import NOW, Chat, make_settings
from tests.offline_telegram import TOKEN, OfflineRequest, text_update
from tests.test_polls import count, onboard, recipients_of

OFFICIAL = "official-1"
REFUSAL = "Việc này chỉ cán bộ xã phụ trách mới làm được."
CHO_DON, NA_RI = "02020", "02155"
ROAD = "mau-duong-thon-na-lang"  # the sample project of Chợ Đồn (content/samples/projects/)


@pytest.fixture(params=["telegram", "terminal", "zalo"])
async def official(
    services: Services, dispatcher: Dispatcher, request: pytest.FixtureRequest
) -> Chat:
    channel = request.param
    await services.officials.grant(f"{channel}:{OFFICIAL}", "commune_official", CHO_DON, "test")
    chat = Chat(dispatcher, channel=channel, user_id=OFFICIAL)
    await onboard(chat)
    return chat


async def road(services: Services) -> int:
    project = await services.projects.by_slug(ROAD)
    assert project is not None
    return project.id


async def post(official: Chat, project_id: int, status: str, progress: str | None, note: str):
    """The update flow to its preview: project, status, percent (unless finished), note."""
    assert "Cập nhật công trình nào?" in await official.say("/capnhatcongtrinh")
    assert "Nay thế nào?" in await official.press(f"projup:pick:{project_id}")
    asked = await official.press(f"projup:st:{status}")
    if progress is not None:
        assert "bao nhiêu phần trăm" in asked
        asked = await official.say(progress)
    assert "Ghi chú cho bà con" in asked
    preview = await official.say(note)
    assert "Xem trước — bà con nhận tin công trình sẽ thấy:" in preview
    return preview


# --- villagers ------------------------------------------------------------------------------


async def test_a_villager_sees_the_project_card_with_what_the_people_gave(
    chat: Chat, services: Services
) -> None:
    await onboard(chat)
    card = await chat.say("/congtrinh")  # the commune's only project: its card at once
    assert card.startswith("🏗 Đường bê tông thôn Nà Làng (mẫu)\nthôn Nà Làng, Xã Chợ Đồn")
    assert "⚠️ Dữ liệu mẫu — không phải số liệu chính thức." in card
    assert "đang thi công · ▓▓▓▓░░░░░░ 45%" in card
    # The confirmed sample gifts of its campaign (content/sample.py), never the pending ones.
    assert "Bà con đã góp (5 hộ, đã xác nhận):" in card
    for given in ("• 2,5 triệu đồng", "• 3 ngày công", "• 120 m² đất", "• 5 bao xi măng"):
        assert given in card
    assert "Kinh phí: 1.450.000.000 đồng\n• Ngân sách nhà nước: 1,2 tỷ đồng" in card
    assert "• Nhân dân đóng góp: 200 triệu đồng\n• Doanh nghiệp: 50 triệu đồng" in card
    assert "Cập nhật 09/11/2026: Đã đổ bê tông 450 m mặt đường" in card
    assert chat.buttons == ["proj:list", "menu:main"]


@pytest.mark.parametrize(
    "typed",
    [
        "đường thôn Nà Làng làm đến đâu rồi",
        "duong thon na lang lam den dau r",
        "cong trinh xa minh",
        "tien do cong trinh the nao",
        "Công trình của xã",  # the button's label, typed
    ],
)
async def test_villagers_ask_in_their_words(chat: Chat, typed: str) -> None:
    await onboard(chat)
    assert "🏗 Đường bê tông thôn Nà Làng (mẫu)" in await chat.say(typed)


async def test_several_projects_a_list_and_the_one_a_message_names(
    chat: Chat, services: Services
) -> None:
    await services.projects.save(
        {
            "slug": "nvh-ban-cuon",
            "name": "Nhà văn hóa thôn Bản Cuôn",
            "description": None,
            "commune_code": CHO_DON,
            "village": "Bản Cuôn",
            "campaigns": [],
            "budget": {},
            "starts_on": None,
            "ends_on": None,
            "status": "preparing",
            "progress": 0,
            "source": "test",
            "is_sample": False,
        },
        actor="test",
    )
    await onboard(chat)
    listed = await chat.say("/congtrinh")
    assert "Công trình của Xã Chợ Đồn: chọn một để xem tiến độ." in listed
    new = await services.projects.by_slug("nvh-ban-cuon")
    assert new is not None
    assert chat.buttons[:2] == [f"proj:show:{await road(services)}", f"proj:show:{new.id}"]
    card = await chat.press(f"proj:show:{new.id}")
    assert (
        "🏗 Nhà văn hóa thôn Bản Cuôn\nthôn Bản Cuôn, Xã Chợ Đồn\nchuẩn bị · ░░░░░░░░░░ 0%" in card
    )
    assert "Bà con đã góp: chưa có đóng góp nào được xác nhận." in card
    assert "Nhà văn hóa thôn Bản Cuôn" in await chat.say("nha van hoa ban cuon xong chua")
    assert "Đường bê tông thôn Nà Làng" in await chat.say("duong thon na lang lam den dau roi")


async def test_a_project_named_elsewhere_is_that_one_not_the_communes_only_one(
    chat: Chat,
) -> None:
    # Chợ Đồn has one project (the road); asked about Na Rì's cultural house, the villager
    # gets that house's card, which says whose it is — not the road in its place.
    await onboard(chat)
    card = await chat.say("nha van hoa na ri lam den dau roi")
    assert "Nhà văn hóa xã Na Rì" in card and "Xã Na Rì" in card
    assert "Đường bê tông" not in card
    assert "Đường bê tông thôn Nà Làng" in await chat.say("cong trinh xa minh the nao")


async def test_a_commune_without_projects_says_so(chat: Chat) -> None:
    await onboard(chat, "bang van")
    assert "chưa có công trình nào" in await chat.say("/projects")
    assert "status:card" in chat.buttons


# --- officials record a project -------------------------------------------------------------


async def test_an_official_records_a_project_with_a_preview_then_confirms(
    official: Chat, services: Services
) -> None:
    before = await count(services, projects)
    assert "Tên công trình?" in await official.say("/taocongtrinh")
    assert "Công trình ở thôn nào?" in await official.say("Nhà văn hóa thôn Bản Cuôn")
    assert "Cuộc vận động nào góp cho công trình này?" in await official.press("proj:vil:1")
    campaign = next(b for b in official.buttons if b.startswith("proj:camp:"))
    await official.press(campaign)
    assert official.label(campaign).startswith("✅ ")
    assert "Kinh phí theo nguồn?" in await official.press("proj:camps")
    assert "Chưa hiểu kinh phí" in await official.say("nhiều lắm 5")
    asked = await official.say("nhà nước 1,2 tỷ; dân góp 200 triệu, doanh nghiệp 50 triệu")
    assert "Ngày khởi công và dự kiến xong?" in asked
    assert "Ngày xong phải sau ngày khởi công." in await official.say("15/12/2026 - 01/12/2026")
    preview = await official.say("01/12/2026 - 30/06/2027")
    assert "Xem trước — bà con sẽ thấy:" in preview
    assert "🏗 Nhà văn hóa thôn Bản Cuôn\nthôn Bản Cuôn, Xã Chợ Đồn\nchuẩn bị" in preview
    assert "Khởi công 01/12/2026, dự kiến xong 30/06/2027" in preview
    assert "Cuộc vận động: Bê tông hóa đường thôn Nà Làng (mẫu)" in preview
    assert "Kinh phí: 1.450.000.000 đồng" in preview
    assert await count(services, projects) == before  # nothing stored before the confirmation
    assert "Đã lưu công trình “Nhà văn hóa thôn Bản Cuôn”." in await official.say("đúng")
    [made] = [p for p in await services.projects.of_commune(CHO_DON) if p.source == "chat"]
    assert (made.village, made.campaigns, made.status, made.progress) == (
        "Bản Cuôn",
        (ROAD,),
        "preparing",
        0,
    )
    assert made.budget == {"state": 1_200_000_000, "people": 200_000_000, "enterprises": 50_000_000}
    async with services.db.read() as conn:
        actions = (await conn.execute(select(audit_log.c.action, audit_log.c.actor))).all()
    assert ("project.create", f"{official.channel}:{OFFICIAL}") in actions
    # What the people gave to it: its campaign's confirmed totals.
    gave = await services.projects.people_gave(made)
    assert gave.totals["money"] == 2_500_000 and gave.households == 5


async def test_skipping_budget_and_dates(official: Chat, services: Services) -> None:
    await official.say("/newproject")
    await official.say("Kênh mương nội đồng")
    await official.press("proj:vil:0")
    await official.press("proj:camps")
    await official.say("bỏ qua")
    preview = await official.say("bo qua")
    assert "Kênh mương nội đồng\nXã Chợ Đồn\nchuẩn bị" in preview and "Kinh phí" not in preview
    await official.press("proj:ok")
    assert "Đã lưu công trình" in official.last[0].text
    replayed = await official.press_unoffered("proj:ok")  # a replay saves nothing more
    assert "Đã lưu" not in replayed
    made = [p for p in await services.projects.of_commune(CHO_DON) if p.source == "chat"]
    assert len(made) == 1


# --- officials post progress; subscribers are told once -------------------------------------


async def test_an_update_moves_the_project_and_tells_subscribers_once(
    official: Chat, services: Services, dispatcher: Dispatcher
) -> None:
    villager, quiet, english = (Chat(dispatcher, "zalo", n) for n in ("v1", "v2", "v3"))
    await onboard(villager)
    await onboard(quiet)
    await english.say("/start")
    await english.press("lang:en")
    await english.say("cho don")
    await quiet.say("/thongbao")
    assert "⬜" not in quiet.label("sub:t:projects") and "Tiến độ công trình" in quiet.label(
        "sub:t:projects"
    )
    await quiet.press("sub:t:projects")  # off: this one is not told
    project_id = await road(services)
    before = await count(services, project_updates)
    preview = await post(official, project_id, "building", "60%", "Xong 600 m mặt đường")
    assert "🏗 Tiến độ công trình Đường bê tông thôn Nà Làng (mẫu)" in preview
    assert "đang thi công · ▓▓▓▓▓▓░░░░ 60%\nXong 600 m mặt đường" in preview
    assert await count(services, project_updates) == before  # nothing before the confirmation
    done = await official.say("ok")
    assert "Đã đăng cập nhật: Đường bê tông thôn Nà Làng (mẫu) — đang thi công" in done
    assert "Đã gửi tin tới bà con nhận tin công trình" in done
    project = await services.projects.get(project_id)
    assert project is not None and (project.status, project.progress) == ("building", 60)
    reached = await recipients_of(services, "project")
    assert ("zalo", "v1") in reached["vi"] and ("zalo", "v2") not in reached["vi"]
    assert ("zalo", "v3") in reached["en"] and ("zalo", "v3") not in reached["vi"]
    # A replayed confirmation records and announces nothing more.
    await official.press_unoffered("projup:ok")
    assert await count(services, project_updates) == before + 1
    async with services.db.read() as conn:
        kinds = (await conn.execute(select(broadcasts.c.kind))).scalars().all()
        actions = (await conn.execute(select(audit_log.c.action))).scalars().all()
    assert kinds.count("project") == 2  # one per language
    async with services.db.read() as conn:
        topics = set(
            (await conn.execute(select(broadcasts.c.topic).where(broadcasts.c.kind == "project")))
            .scalars()
            .all()
        )
    assert topics == {"projects"}
    assert actions.count("project.progress") == before + 1  # the files' and this one
    # The villager's card shows it.
    assert "Cập nhật 29/11/2026: Xong 600 m mặt đường" in await villager.say("/congtrinh")


async def test_a_completion_is_announced_as_one(official: Chat, services: Services) -> None:
    preview = await post(official, await road(services), "done", None, "Đã xong toàn tuyến")
    assert (
        "✅ Công trình Đường bê tông thôn Nà Làng (mẫu) (thôn Nà Làng, Xã Chợ Đồn) đã hoàn thành!"
        in preview
    )
    assert "hoàn thành · ▓▓▓▓▓▓▓▓▓▓ 100%" in preview
    await official.press("projup:ok")
    async with services.db.read() as conn:
        [text] = (
            await conn.execute(
                select(broadcasts.c.text).where(
                    broadcasts.c.kind == "project", broadcasts.c.locale == "en"
                )
            )
        ).scalars()
    assert "has been completed!" in text


async def test_a_photo_goes_with_the_update_and_shows_on_telegram(
    services: Services, dispatcher: Dispatcher
) -> None:
    await services.officials.grant("telegram:cb", "commune_official", CHO_DON, "test")
    official = Chat(dispatcher, "telegram", "cb")
    await onboard(official)
    project_id = await road(services)
    await official.say("/capnhatcongtrinh")
    await official.press(f"projup:pick:{project_id}")
    await official.press("projup:st:building")
    await official.say("70")
    got = await official.send(Incoming("telegram", "cb", unsupported="photo", photo="AgAC-road"))
    assert "Đã nhận ảnh. Giờ gõ ghi chú cho bà con." in got
    assert "[kèm 1 ảnh]" in await official.say("Mặt đường đã phủ xong")
    await official.press("projup:ok")
    async with services.db.read() as conn:
        photos = set((await conn.execute(select(broadcasts.c.photo))).scalars())
    assert "AgAC-road" in photos
    on_telegram = Chat(dispatcher, "telegram", "v-tg")
    await onboard(on_telegram)
    await on_telegram.say("/congtrinh")
    assert on_telegram.last[0].photo == "AgAC-road"
    on_terminal = Chat(dispatcher, "terminal", "v-term")
    await onboard(on_terminal)
    assert "[kèm 1 ảnh — xem trên Telegram]" in await on_terminal.say("/congtrinh")
    assert on_terminal.last[0].photo is None


async def test_progress_is_read_as_officials_type_it(official: Chat, services: Services) -> None:
    await official.say("/capnhatcongtrinh")
    await official.press(f"projup:pick:{await road(services)}")
    await official.press("projup:st:building")
    assert "Tối đa là 100%." in await official.say("150")
    assert "Gõ một số từ 0 đến 100" in await official.say("nhanh lắm")
    assert "Ghi chú cho bà con" in await official.say("đạt 80 phần trăm")
    user = await services.users.load(official.channel, official.user_id, "vi")
    assert (user.state, user.state_data["progress"]) == ("projup:note", 80)


# --- who may ---------------------------------------------------------------------------------


async def test_a_villager_is_refused_and_nothing_changes(chat: Chat, services: Services) -> None:
    await onboard(chat)
    before = (await count(services, projects), await count(services, project_updates))
    assert await chat.say("/taocongtrinh") == REFUSAL
    assert await chat.say("/capnhatcongtrinh") == REFUSAL
    assert await chat.press_unoffered(f"projup:pick:{await road(services)}") == REFUSAL
    assert await chat.press_unoffered("projup:ok") == REFUSAL
    assert (await count(services, projects), await count(services, project_updates)) == before


async def test_an_official_of_another_commune_sees_only_theirs(
    services: Services, dispatcher: Dispatcher
) -> None:
    await services.officials.grant("zalo:nari", "commune_official", NA_RI, "test")
    other = Chat(dispatcher, "zalo", "nari")
    await onboard(other, "na ri")
    await other.say("/capnhatcongtrinh")
    nha_van_hoa = await services.projects.by_slug("mau-nha-van-hoa-na-ri")
    assert nha_van_hoa is not None
    assert other.buttons[0] == f"projup:pick:{nha_van_hoa.id}"
    before = await count(services, project_updates)
    # Chợ Đồn's road, forged: not on offer, so stale; the step is asked again.
    assert "Cập nhật công trình nào?" in await other.press_unoffered(
        f"projup:pick:{await road(services)}"
    )
    assert await count(services, project_updates) == before


async def test_a_grant_revoked_before_the_confirmation_stops_it(
    services: Services, dispatcher: Dispatcher
) -> None:
    await services.officials.grant("terminal:cb", "commune_official", CHO_DON, "test")
    official = Chat(dispatcher, "terminal", "cb")
    await onboard(official)
    await post(official, await road(services), "building", "50", "Tiếp tục thi công")
    await services.officials.revoke("terminal:cb", "commune_official", CHO_DON)
    before = await count(services, project_updates)
    assert REFUSAL in await official.say("đúng")
    assert await count(services, project_updates) == before


# --- digests, files -------------------------------------------------------------------------


async def test_digests_include_the_updates_of_the_period(
    official: Chat, chat: Chat, services: Services
) -> None:
    await onboard(chat)
    await services.subscriptions.choose(chat.channel, chat.user_id, digest="daily")
    await post(official, await road(services), "building", "55", "Đổ bê tông đoạn giữa")
    await official.press("projup:ok")
    [digest_id] = await build_digests(services, "daily", NOW - timedelta(hours=1), NOW)
    b = await get_broadcast(services.db, digest_id)
    assert b is not None
    assert "Công trình:\n• Đường bê tông thôn Nà Làng (mẫu): đang thi công · " in b.text
    assert "55% — Đổ bê tông đoạn giữa" in b.text and "Xem tiến độ: /congtrinh" in b.text


def test_statuses_as_offices_write_them() -> None:
    assert [status_of(s) for s in ("Đang thi công", "hoan thanh", "building", "xyz")] == [
        "building",
        "done",
        "building",
        None,
    ]
    assert bar(0) == "░░░░░░░░░░ 0%" and bar(100) == "▓▓▓▓▓▓▓▓▓▓ 100%"


async def test_a_wrong_project_file_changes_nothing(services: Services, tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(
        'name = "Đường Pác Nặm"\ncommune = "02020"\nstarts_on = 2026-09-01\n'
        '[[updates]]\non = 2026-10-01\nstatus = "thi công"\nprogress = 20\nnote = "Khởi công"\n',
        "utf-8",
    )
    (tmp_path / "b.toml").write_text('name = "X"\ncommune = "02020"\nprogress = 140\n')
    before = await count(services, projects)
    with pytest.raises(ProjectFileError, match=r"b\.toml: progress 140"):
        await load_project_files(services.projects, set(services.reference.communes), tmp_path)
    assert await count(services, projects) == before


async def test_files_load_once_and_never_undo_a_chat_update(
    services: Services, tmp_path: Path
) -> None:
    communes = set(services.reference.communes)
    today = services.today()
    # Loading the samples again changes nothing.
    again = await load_project_files(services.projects, communes, SAMPLES_DIR, True, today)
    assert again == 0
    project_id = await road(services)
    await services.projects.post_update(
        project_id, NewUpdate("done", 100, "Xong", None, None, "t-1"), actor="test"
    )
    await load_project_files(services.projects, communes, SAMPLES_DIR, True, today)
    project = await services.projects.get(project_id)
    assert project is not None and (project.status, project.progress) == ("done", 100)


def test_chungsuc_projects_load(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith("CHUNGSUC_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CHUNGSUC_DB_URL", str(services.db.engine.url))
    (tmp_path / "cau.toml").write_text(
        'name = "Cầu treo bản Cuôn"\ncommune = "02020"\nstatus = "đang thi công"\nprogress = 30\n'
        '[budget]\nstate = "3 tỷ"\n',
        "utf-8",
    )
    result = CliRunner().invoke(app, ["projects", "load", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "Projects loaded: 1" in result.output
    (tmp_path / "cau.toml").write_text('name = "Cầu"\ncommune = "99999"\n', "utf-8")
    result = CliRunner().invoke(app, ["projects", "load", str(tmp_path)])
    assert result.exit_code == 1 and "unknown commune '99999'" in result.output


async def test_the_read_api_for_pages_and_open_data(services: Services) -> None:
    found = await services.projects.in_progress(services.reference.province_code)
    assert [p.slug for p in found] == [ROAD]  # Na Rì's cultural house is done
    every = await services.projects.every()
    assert {p.slug for p in every} == {ROAD, "mau-nha-van-hoa-na-ri"}
    assert all(p.is_sample for p in every)
    updates = await services.projects.every_update()
    assert len(updates) == 4 and updates == sorted(updates, key=lambda u: u.created_at)
    [latest] = await services.projects.updates(await road(services), limit=1)
    assert (latest.status, latest.progress, latest.photo) == ("building", 45, None)


# --- on Telegram, the photo is sent with the card as its caption ----------------------------


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return make_settings(tmp_path, db_url, telegram_token=TOKEN)


async def test_on_telegram_the_card_comes_as_a_photo_with_its_caption(
    services: Services, dispatcher: Dispatcher, settings: Settings
) -> None:
    project_id = await road(services)
    await services.projects.post_update(
        project_id,
        NewUpdate("building", 80, "Phủ mặt đường", "AgAC-photo", "telegram", "t-photo"),
        actor="test",
    )
    offline = OfflineRequest()
    application = build_application(settings, dispatcher, request=offline)
    async with application:
        for text in ("/start", "Tiếng Việt", "cho don", "/congtrinh"):
            await application.process_update(Update.de_json(text_update(77, text), application.bot))
    assert offline.unexpected == []
    [photo] = offline.params("sendPhoto")
    assert photo["photo"] == "AgAC-photo" and photo["chat_id"] == 77
    assert photo["caption"].startswith("🏗 Đường bê tông thôn Nà Làng (mẫu)")
    assert "Cập nhật 29/11/2026: Phủ mặt đường" in photo["caption"]
    assert "proj:list" in str(photo["reply_markup"])


async def test_a_photo_sent_from_zalo_is_said_to_be_there(
    services: Services, dispatcher: Dispatcher
) -> None:
    await services.projects.post_update(
        await road(services),
        NewUpdate("building", 50, "Ảnh từ Zalo", "https://zalo.example/p.jpg", "zalo", "t-z"),
        actor="test",
    )
    viewer = Chat(dispatcher, "telegram", "v-tg")
    await onboard(viewer)
    card = await viewer.say("/congtrinh")
    assert "[kèm 1 ảnh]" in card and "xem trên Telegram" not in card
    assert viewer.last[0].photo is None  # a Zalo photo means nothing to Telegram


@pytest.mark.parametrize(
    ("typed", "asked"), [("dang thi cong", "phần trăm"), ("hoan thanh", "Ghi chú")]
)
async def test_a_status_label_typed_picks_it(
    official: Chat, services: Services, typed: str, asked: str
) -> None:
    await official.say("/capnhatcongtrinh")
    await official.press(f"projup:pick:{await road(services)}")  # by its number where numbered
    assert asked in await official.say(typed)  # the label typed, without its marks
