"""Dân kiểm tra: transcripts of villagers reporting problems, officials handling them, the
reporter told at each step, rating and reopening, and the limits around all of it."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from telegram import Update

from bot.app.services import Services
from bot.channels.telegram import to_event
from bot.channels.zalo_bot import to_update
from bot.core.conversation import Incoming
from bot.core.dispatch import Dispatcher
from bot.domain.clock import FixedClock
from bot.storage.reports import parse_ref
from bot.storage.schema import audit_log, deliveries, reports
from handlers.reports import guess_category
from tests.conftest import NOW, Chat
from tests.fake_zalo import image_update
from tests.offline_telegram import _message

REFUSAL = "Việc này chỉ cán bộ xã phụ trách mới làm được."
CHO_DON, NA_RI = "02020", "02155"
_ids = itertools.count(1)


async def count(services: Services, table: Any, *where: Any) -> int:
    async with services.db.read() as conn:
        query = select(func.count()).select_from(table).where(*where)
        return int((await conn.execute(query)).scalar_one())


async def onboard(chat: Chat, commune: str = "cho don") -> None:
    await chat.say("/start")
    await chat.press("lang:vi")
    await chat.say(commune)


async def official_of(
    services: Services, dispatcher: Dispatcher, channel: str = "telegram", commune: str = CHO_DON
) -> Chat:
    user_id = f"cb{next(_ids)}"
    await services.officials.grant(f"{channel}:{user_id}", "commune_official", commune, "test")
    chat = Chat(dispatcher, channel, user_id)
    await onboard(chat, "cho don" if commune == CHO_DON else "na ri")
    return chat


async def notices_to(services: Services, chat: Chat) -> list[str]:
    """The texts of the notices the outbox holds for this person, oldest first."""
    async with services.db.read() as conn:
        rows = await conn.execute(
            select(deliveries.c.text)
            .where(
                deliveries.c.broadcast_id.is_(None),
                deliveries.c.channel == chat.channel,
                deliveries.c.user_id == chat.user_id,
            )
            .order_by(deliveries.c.id)
        )
        return [str(r.text) for r in rows]


# Road problems unlike each other (no near-duplicate check stops a test filing several).
ROAD_TEXTS = (
    "Đường thôn Nà Làng bị sạt, xe máy không qua được",
    "Cầu tràn Bản Cuôn ngập sau mưa lớn",
    "Ổ gà lớn trước cổng trường tiểu học",
    "Cống thoát nước đầu dốc Pác Nặm bị vỡ",
    "Mặt đường bê tông khu chợ nứt toác một đoạn dài",
    "Rãnh ven tỉnh lộ 254 đất đá lấp kín",
    "Biển báo khúc cua gần UBND bị đổ",
    "Taluy dương sau nhà văn hóa có nguy cơ lở",
)
_texts = itertools.cycle(ROAD_TEXTS)


async def file_report(chat: Chat, text: str | None = None) -> str:
    """The whole flow by buttons (or their numbers): roads, a description, no photo, no village;
    each call another road problem unless `text` says which."""
    text = text or next(_texts)
    assert "Bạn muốn phản ánh về việc gì?" in await chat.say("/phananh")
    assert "mô tả ngắn" in await chat.press("report:cat:roads")
    assert "Bạn có ảnh không?" in await chat.say(text)
    assert "thôn, bản nào?" in await chat.press("report:skip")
    assert "Xem lại phản ánh của bạn:" in await chat.press("report:novil")
    done = await chat.press(next(b for b in chat.buttons if b.startswith("report:ok:")))
    assert "Mã phản ánh: PA-26-" in done
    return done.split("Mã phản ánh: ")[1].split()[0]


def report_id(ref: str) -> int:
    found = parse_ref(ref)
    assert found is not None
    return found


# --- a villager reports ----------------------------------------------------------------------


async def test_a_report_with_a_photo_and_a_location_on_telegram(
    dispatcher: Dispatcher, services: Services
) -> None:
    chat = Chat(dispatcher, "telegram", "v1")
    await onboard(chat)
    assert "Bạn muốn phản ánh về việc gì?" in await chat.say("muon phan anh")
    assert "Điện, chiếu sáng: bạn mô tả" in await chat.press("report:cat:power")
    asked = await chat.say("Đèn đường trước nhà văn hóa thôn tắt cả tuần nay")
    assert "vị trí (📎 → Vị trí)" in asked
    photo = Incoming("telegram", "v1", unsupported="photo", photo="FILE-1", text="")
    assert "Đã nhận ảnh." in await chat.send(photo)
    place = Incoming("telegram", "v1", unsupported="location", location=(22.1856, 105.6043))
    assert "thôn, bản nào?" in await chat.send(place)
    preview = await chat.say("na lang")  # a village's label typed without marks
    assert "Thôn: Nà Làng" in preview and "[kèm 1 ảnh]" in preview and "[kèm vị trí]" in preview
    assert await count(services, reports) == 0  # nothing before the confirmation
    assert "Mã phản ánh: PA-26-00001" in await chat.say("dung")
    [report] = await services.reports.of_user("telegram", "v1")
    assert (report.category, report.village, report.photo) == ("power", "Nà Làng", "FILE-1")
    assert (report.latitude, report.longitude) == (22.1856, 105.6043)
    assert report.state == "new"


def test_telegram_gives_a_location_to_the_core() -> None:
    message = _message(7, "vi", location={"latitude": 22.18, "longitude": 105.6})
    event = to_event(Update.de_json({"update_id": 1, "message": message}, None))
    assert event is not None and event.location == (22.18, 105.6)
    assert event.unsupported == "location"


async def test_a_report_typed_without_diacritics_in_words(chat: Chat, services: Services) -> None:
    await onboard(chat)
    # The sentence names the category: roads, asked for the description at once.
    assert "Đường giao thông: bạn mô tả" in await chat.say("duong thon toi bi sat")
    assert "viết rõ hơn" in await chat.say("sat")
    await chat.say("duong tu thon ban cuon ra truong bi sat taluy")
    assert "thôn, bản nào?" in await chat.say("khong")  # no photo
    preview = await chat.say("thon moi")  # a village the bot does not know, kept as typed
    assert "Thôn: thon moi" in preview
    assert "Mã phản ánh: PA-26-00001" in await chat.say("ok")
    [report] = await services.reports.of_user(chat.channel, chat.user_id)
    assert (report.category, report.village) == ("roads", "thon moi")


async def test_a_sentence_that_names_and_describes_the_problem_is_not_asked_again(
    chat: Chat, services: Services
) -> None:
    await onboard(chat)
    sentence = "duong tu ban cuon ra truong bi sat lo mot doan dai"
    assert "Bạn có ảnh không?" in await chat.say(sentence)  # category and description at once
    await chat.say("/huy")
    await chat.say("/phananh")
    assert "Bạn có ảnh không?" in await chat.say(sentence)  # typed at the category step too
    await chat.say("khong")
    preview = await chat.say("ban cuon")
    assert f"Nội dung: {sentence}" in preview and "Đường giao thông" in preview
    # A short one ("duong thon toi bi sat") still asks for the details.
    await chat.say("/huy")
    assert "bạn mô tả ngắn" in await chat.say("duong thon toi bi sat")


async def test_a_report_in_the_words_of_the_try_out(chat: Chat, services: Services) -> None:
    # What villagers typed when they tried it: each reaches its step's answer.
    await onboard(chat)
    assert "bạn mô tả ngắn" in await chat.say("bao duong bi sat")
    await chat.say("doan qua nha ong tu sat mat mot nua mat duong")
    assert "thôn, bản nào?" in await chat.say("ko co anh")  # no photo
    assert "Loại việc: Đường giao thông" in await chat.say("ban cuon")
    assert "Mã phản ánh: PA-26-" in await chat.say("dung roi gui di")
    assert len(await services.reports.of_user(chat.channel, chat.user_id)) == 1


@pytest.mark.parametrize("typed", ["thon ban cuon", "Bản Cuôn", "o ban cuon", "xom Ban Cuon"])
async def test_a_known_village_typed_with_its_word_is_that_village(
    chat: Chat, services: Services, typed: str
) -> None:
    # Stored as the commune writes it, so the near-duplicate check and the figures find it.
    await onboard(chat)
    await chat.say("duong thon toi bi sat")
    await chat.say("duong tu ban cuon ra truong bi sat taluy")
    await chat.say("khong")  # no photo
    assert "Thôn: Bản Cuôn" in await chat.say(typed)


async def test_phan_anh_typed_under_a_receipt_files_a_new_report(chat: Chat) -> None:
    # The receipt offers "Phản ánh của tôi"; the words "phan anh" are a request of their own.
    await onboard(chat)
    await file_report(chat)
    assert "Bạn muốn phản ánh về việc gì?" in await chat.say("phan anh")


async def test_the_receipts_label_typed_whole_lists_my_reports(chat: Chat) -> None:
    await onboard(chat)
    ref = await file_report(chat)
    assert f"• {ref}" in await chat.say("phan anh cua toi")


@pytest.mark.parametrize("typed", ["moi truong", "rac", "Môi trường, rác thải"])
async def test_the_category_typed(dispatcher: Dispatcher, typed: str) -> None:
    chat = Chat(dispatcher, "zalo", "z1")
    await onboard(chat)
    await chat.say("/phananh")
    assert "Môi trường, rác thải: bạn mô tả" in await chat.say(typed)


async def test_a_replayed_confirmation_records_once(chat: Chat, services: Services) -> None:
    await onboard(chat)
    await chat.say("/report")
    await chat.press("report:cat:water")
    await chat.say("Kênh mương nội đồng bị vỡ một đoạn")
    await chat.press("report:skip")
    await chat.press("report:novil")
    ok = next(b for b in chat.buttons if b.startswith("report:ok:"))
    first = await chat.press(ok)
    again = await chat.press_unoffered(ok)  # the messenger sends it again
    assert "Đã ghi nhận trước đó." in again
    assert first.split("Mã phản ánh: ")[1][:11] == again.split("Mã phản ánh: ")[1][:11]
    assert await count(services, reports) == 1


async def test_at_most_the_cap_of_open_reports_per_person(
    dispatcher: Dispatcher, services: Services
) -> None:
    services.settings.report_max_open = 2
    chat = Chat(dispatcher, "telegram", "v1")
    await onboard(chat)
    await file_report(chat)
    await file_report(chat)
    refused = await chat.say("/phananh")
    assert "Bạn đang có 2 phản ánh chưa xử lý xong, tối đa là 2." in refused
    assert await count(services, reports) == 2


async def test_my_reports_list_state_and_answer(dispatcher: Dispatcher, services: Services) -> None:
    chat = Chat(dispatcher, "terminal", "v1")
    await onboard(chat)
    assert "Bạn chưa gửi phản ánh nào." in await chat.say("/phananhcuatoi")
    ref = await file_report(chat)
    listed = await chat.say("phan anh cua toi")
    assert f"• {ref} · Đường giao thông — mới" in listed
    assert f"• {ref}" in await chat.say(f"{ref.lower()} sao roi")


# --- officials handle it ---------------------------------------------------------------------


async def test_an_official_moves_a_report_through_every_state_and_the_reporter_hears(
    dispatcher: Dispatcher, services: Services
) -> None:
    villager = Chat(dispatcher, "telegram", "v1")
    await onboard(villager)
    ref = await file_report(villager)
    rid = report_id(ref)
    official = await official_of(services, dispatcher, "zalo")
    listed = await official.say("/xulyphananh")
    assert f"{ref} · Xã Chợ Đồn" in listed and "Người phản ánh: " in listed
    assert "telegram:v1" in listed  # the commune's officials see who reported it
    assert "đã tiếp nhận" in await official.press(f"report:recv:{rid}")
    await official.say("/reports")
    assert "“đang xử lý”" in await official.press(f"report:work:{rid}")
    await official.say("/reports")
    asked = await official.press(f"report:end:{rid}:resolved")
    assert "việc đã giải quyết thế nào?" in asked
    photo = Incoming("zalo", official.user_id, unsupported="photo", photo="DONE-1", text="")
    assert "việc đã giải quyết thế nào?" in await official.send(photo)  # still needs words
    assert "“đã giải quyết”" in await official.say("Đã đắp lại taluy, xe qua được rồi")
    notices = await notices_to(services, villager)
    assert notices == [
        f"Phản ánh {ref} của bạn đã được cán bộ xã tiếp nhận.",
        f"Phản ánh {ref} của bạn đang được xử lý.",
        f"Phản ánh {ref} của bạn đã được giải quyết. Xã trả lời: Đã đắp lại taluy, xe qua được rồi",
    ]
    report = await services.reports.get(rid)
    assert report is not None
    assert (report.state, report.evidence_photo) == ("resolved", "DONE-1")
    async with services.db.read() as conn:
        actions = [
            r.action
            for r in await conn.execute(
                select(audit_log.c.action)
                .where(audit_log.c.entity == "report")
                .order_by(audit_log.c.id)
            )
        ]
    assert actions == ["report.received", "report.in_progress", "report.resolved"]
    listed = await villager.say("/myreports")
    assert "đã giải quyết" in listed and "Xã trả lời: Đã đắp lại taluy" in listed


async def test_the_reporter_hears_in_their_language(
    dispatcher: Dispatcher, services: Services
) -> None:
    villager = Chat(dispatcher, "telegram", "en1")
    await onboard(villager)
    ref = await file_report(villager)
    await villager.say("/ngonngu")
    await villager.press("lang:en")
    official = await official_of(services, dispatcher)
    await official.say("/xulyphananh")
    await official.press(f"report:recv:{report_id(ref)}")
    [notice] = await notices_to(services, villager)
    assert ref in notice and "Phản ánh" not in notice


@pytest.mark.parametrize(
    ("how", "answer", "said"),
    [
        ("out_of_scope", "Điện lực Chợ Đồn, số 0209 3882 xxx", "không thuộc thẩm quyền của xã"),
        ("declined", "Đoạn đường này thuộc dự án của tỉnh", "sẽ không được xử lý. Lý do:"),
    ],
)
async def test_closing_needs_a_written_answer(
    dispatcher: Dispatcher, services: Services, how: str, answer: str, said: str
) -> None:
    villager = Chat(dispatcher, "terminal", "v1")
    await onboard(villager)
    rid = report_id(await file_report(villager))
    official = await official_of(services, dispatcher, "terminal")
    await official.say("/xulyphananh")
    await official.press(f"report:end:{rid}:{how}")
    refused = await official.say("ok")
    assert "Cần một câu trả lời viết rõ" in refused
    report = await services.reports.get(rid)
    assert report is not None and report.state == "new"
    with pytest.raises(ValueError, match="written answer"):
        await services.reports.move(rid, how, "x", [CHO_DON], lambda *_: None, answer=" ")  # type: ignore[arg-type,return-value]
    assert "người phản ánh đã được báo" in await official.say(answer)
    assert said in (await notices_to(services, villager))[-1]


async def test_a_duplicate_is_linked_to_the_other_report(
    dispatcher: Dispatcher, services: Services
) -> None:
    first, second = Chat(dispatcher, "telegram", "v1"), Chat(dispatcher, "telegram", "v2")
    await onboard(first)
    await onboard(second)
    ref1, ref2 = await file_report(first), await file_report(second)
    official = await official_of(services, dispatcher)
    await official.say("/xulyphananh")
    assert "trùng với phản ánh nào?" in await official.press(
        f"report:end:{report_id(ref2)}:duplicate"
    )
    assert "chính phản ánh này" in await official.say(ref2)
    assert f"việc đang xử lý theo {ref1}" in await official.say(ref1.lower())
    await official.say("Xã đã nhận phản ánh trước đó, đang cho sửa")
    report = await services.reports.get(report_id(ref2))
    assert report is not None and (report.state, report.duplicate_of) == ("duplicate", 1)
    assert f"trùng với phản ánh {ref1}" in (await notices_to(services, second))[-1]
    # The second reporter now follows the first report: told when it is solved.
    told = len(await notices_to(services, second))
    await close_as_resolved(services, dispatcher, report_id(ref1))
    heard = await notices_to(services, second)
    assert len(heard) == told + 1 and "Đã sửa xong đoạn đường" in heard[-1]


async def close_as_resolved(services: Services, dispatcher: Dispatcher, rid: int) -> None:
    official = await official_of(services, dispatcher)
    await official.say("/xulyphananh")
    await official.press(f"report:end:{rid}:resolved")
    await official.say("Đã sửa xong đoạn đường")


async def test_rated_and_reopened_once_within_fourteen_days(
    dispatcher: Dispatcher, services: Services
) -> None:
    villager = Chat(dispatcher, "telegram", "v1")
    await onboard(villager)
    ref = await file_report(villager)
    rid = report_id(ref)
    await close_as_resolved(services, dispatcher, rid)
    listed = await villager.say("/phananhcuatoi")
    assert (
        f"report:rate:{rid}:bad" in villager.buttons and f"report:reopen:{rid}" in villager.buttons
    )
    assert ref in listed
    rated = await villager.press(f"report:rate:{rid}:bad")
    assert "Cảm ơn bạn đã đánh giá" in rated and "mở lại một lần trong 14 ngày" in rated
    services.clock = FixedClock(NOW + timedelta(days=13))
    assert "Đã mở lại" in await villager.press(f"report:reopen:{rid}")
    report = await services.reports.get(rid)
    assert report is not None and (report.state, report.reopened) == ("new", 1)
    await close_as_resolved(services, dispatcher, rid)
    again = await villager.press_unoffered(f"report:reopen:{rid}")
    assert "đã được mở lại một lần rồi" in again
    report = await services.reports.get(rid)
    assert report is not None and report.state == "resolved"
    good = await villager.press_unoffered(f"report:rate:{rid}:good")
    assert "Cảm ơn bạn đã đánh giá" in good


async def test_a_reopen_after_fourteen_days_is_refused(
    dispatcher: Dispatcher, services: Services
) -> None:
    villager = Chat(dispatcher, "zalo", "v1")
    await onboard(villager)
    rid = report_id(await file_report(villager))
    await close_as_resolved(services, dispatcher, rid)
    services.clock = FixedClock(NOW + timedelta(days=14, minutes=1))
    refused = await villager.press_unoffered(f"report:reopen:{rid}")
    assert "đã đóng quá 14 ngày" in refused
    report = await services.reports.get(rid)
    assert report is not None and report.state == "resolved"


async def test_only_the_reporter_rates_or_reopens(
    dispatcher: Dispatcher, services: Services
) -> None:
    villager = Chat(dispatcher, "telegram", "v1")
    await onboard(villager)
    rid = report_id(await file_report(villager))
    await close_as_resolved(services, dispatcher, rid)
    other = Chat(dispatcher, "telegram", "v2")
    await onboard(other)
    await other.press_unoffered(f"report:reopen:{rid}")
    await other.press_unoffered(f"report:rate:{rid}:bad")
    report = await services.reports.get(rid)
    assert report is not None and (report.state, report.rating) == ("resolved", None)


# --- who may act ------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["/xulyphananh", "/reports"])
async def test_a_villager_cannot_use_the_official_command(chat: Chat, command: str) -> None:
    await onboard(chat)
    assert await chat.say(command) == REFUSAL
    assert await chat.press_unoffered("report:recv:1") == REFUSAL


async def test_an_official_of_another_commune_cannot_see_or_act(
    dispatcher: Dispatcher, services: Services
) -> None:
    villager = Chat(dispatcher, "telegram", "v1")
    await onboard(villager)
    ref = await file_report(villager)
    rid = report_id(ref)
    other = await official_of(services, dispatcher, "telegram", NA_RI)
    listed = await other.say("/xulyphananh")
    assert ref not in listed and "telegram:v1" not in listed
    before = await count(services, audit_log)
    for button in (f"report:recv:{rid}", f"report:work:{rid}", f"report:end:{rid}:declined"):
        assert REFUSAL in await other.press_unoffered(button)
    assert await count(services, audit_log) == before
    report = await services.reports.get(rid)
    assert report is not None and report.state == "new"
    assert await notices_to(services, villager) == []


async def test_a_revoked_official_is_stopped_at_the_answer(
    dispatcher: Dispatcher, services: Services
) -> None:
    villager = Chat(dispatcher, "telegram", "v1")
    await onboard(villager)
    rid = report_id(await file_report(villager))
    official = await official_of(services, dispatcher)
    await official.say("/xulyphananh")
    await official.press(f"report:end:{rid}:declined")
    assert await services.officials.revoke(
        f"{official.channel}:{official.user_id}", "commune_official", CHO_DON
    )
    assert REFUSAL in await official.say("Việc này không thuộc kế hoạch năm nay")
    report = await services.reports.get(rid)
    assert report is not None and report.state == "new"


async def test_overdue_reports_are_marked_in_the_queue(
    dispatcher: Dispatcher, services: Services
) -> None:
    villager = Chat(dispatcher, "telegram", "v1")
    await onboard(villager)
    ref = await file_report(villager)  # roads: 15 days by default
    official = await official_of(services, dispatcher)
    assert "quá hạn" not in await official.say("/xulyphananh")
    services.clock = FixedClock(NOW + timedelta(days=16))
    assert f"{ref} · Xã Chợ Đồn · ⏰ quá hạn" in await official.say("/xulyphananh")


async def test_public_figures_hold_no_personal_data(
    dispatcher: Dispatcher, services: Services
) -> None:
    villager = Chat(dispatcher, "telegram", "v1")
    await onboard(villager)
    await file_report(villager)
    rid = report_id(await file_report(villager))
    services.clock = FixedClock(NOW + timedelta(days=2))
    await close_as_resolved(services, dispatcher, rid)
    await villager.press_unoffered(f"report:rate:{rid}:good")
    shown = await villager.say("/phananh thongke")
    assert "Phản ánh ở Xã Chợ Đồn: 2" in shown
    assert "• Đường giao thông: 2" in shown
    assert "Đã giải quyết: 50%" in shown
    assert "Thời gian giải quyết (trung vị): 2 ngày" in shown
    assert "Hài lòng: 1/1" in shown
    assert "v1" not in shown and "Nà Làng bị sạt" not in shown


async def test_a_photo_with_a_caption_is_the_description_and_the_help_names_it(
    dispatcher: Dispatcher, services: Services
) -> None:
    chat = Chat(dispatcher, "telegram", "v1")
    await onboard(chat)
    assert "/phananh" in await chat.say("/trogiup")
    assert "Điện, chiếu sáng: bạn mô tả" in await chat.say("bao hong den duong")
    photo = Incoming(
        "telegram", "v1", unsupported="photo", photo="FILE-2", text="Bóng đèn ngã ba bị vỡ"
    )
    assert "Đã nhận ảnh." in await chat.send(photo)
    await chat.press("report:skip")
    preview = await chat.press("report:novil")
    assert "Nội dung: Bóng đèn ngã ba bị vỡ" in preview and "[kèm 1 ảnh]" in preview


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("đường thôn tôi bị sạt", "roads"),
        ("bao hong den duong", "power"),
        ("kenh muong bi vo", "water"),
        ("rac thai bua bai", "environment"),
        ("phan anh", None),
        ("mat dien va nuoc", None),  # two categories, equally named: asked
    ],
)
def test_a_sentence_names_its_category(text: str, category: str | None) -> None:
    assert guess_category(text) == category


async def test_a_photo_sent_on_zalo_goes_with_the_report(
    dispatcher: Dispatcher, services: Services
) -> None:
    chat = Chat(dispatcher, "zalo", "z1")
    await onboard(chat)
    await chat.say("/phananh")
    await chat.say("rac")
    assert "Gửi một ảnh, hoặc bấm Bỏ qua." in await chat.say("Bãi rác đầu thôn bốc mùi")
    update = to_update(image_update("z1"))
    assert update is not None and update.event.photo == "https://example.org/a.jpg"
    assert "thôn, bản nào?" in await chat.send(update.event)
    assert "[kèm 1 ảnh]" in await chat.say("2")  # the second village, by its number
    await chat.say("dung")
    [report] = await services.reports.of_user("zalo", "z1")
    assert report.photo == "https://example.org/a.jpg" and report.village is not None
