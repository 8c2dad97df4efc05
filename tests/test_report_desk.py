"""The report desk: a criterion disputed ("tôi thấy tiêu chí này chưa đạt"), the near-duplicate
question, spam marks, province officials reassigning and paging the queue, officials told of
each new report. Transcripts as villagers type; permissions; replays."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.app.services import Services
from bot.core.dispatch import Dispatcher
from bot.domain.clock import FixedClock
from bot.storage.schema import audit_log, report_followers, reports
from tests.conftest import NOW, Chat
from tests.test_reports import (
    CHO_DON,
    NA_RI,
    REFUSAL,
    count,
    file_report,
    notices_to,
    official_of,
    onboard,
    report_id,
)

# Chợ Đồn's sample status: criteria 1, 4 and 6 met; 2 (hạ tầng, giao thông) not.
MET, NOT_MET = 1, 2


async def confirm(chat: Chat) -> str:
    """Presses the preview's "Đúng, gửi"; the receipt code."""
    done = await chat.press(next(b for b in chat.buttons if b.startswith("report:ok:")))
    assert "Mã phản ánh: PA-26-" in done
    return done.split("Mã phản ánh: ")[1].split()[0]


async def filed(dispatcher: Dispatcher) -> int:
    """A Chợ Đồn villager's new road report on Telegram: its id."""
    villager = Chat(dispatcher, "telegram", "v1")
    await onboard(villager)
    return report_id(await file_report(villager))


def days_later(services: Services, days: int) -> None:
    """The one clock moved on: everything written from now is stamped then."""
    services.clock = FixedClock(NOW + timedelta(days=days))
    services.db.clock = services.clock


async def province_official(services: Services, dispatcher: Dispatcher, channel: str) -> Chat:
    await services.officials.grant(f"{channel}:tinh", "province_official", "19", "test")
    chat = Chat(dispatcher, channel, "tinh")
    await onboard(chat)
    return chat


# --- a criterion shown as met, disputed ------------------------------------------------------


async def test_a_villager_disputes_a_met_criterion_from_its_card(
    chat: Chat, services: Services, dispatcher: Dispatcher
) -> None:
    await onboard(chat)
    card = await chat.say("/tieuchi 1")
    assert "Tôi thấy tiêu chí này chưa đạt" in chat.label(f"report:dispute:{MET}")
    assert "Xã Chợ Đồn" in card
    asked = await chat.press(f"report:dispute:{MET}")
    assert "Tiêu chí 1: " in asked and "bạn thấy chưa đạt ở đâu?" in asked
    await chat.say("quy hoach chua cong khai o nha van hoa thon, dan ko biet")
    assert "thôn, bản nào?" in await chat.say("bo qua")  # no photo
    preview = await chat.press("report:novil")
    assert "Loại việc: Tiêu chí nông thôn mới" in preview and "Tiêu chí 1: " in preview
    ref = await confirm(chat)
    report = await services.reports.get(report_id(ref))
    assert report is not None
    assert (report.category, report.criterion) == ("criterion", MET)
    assert report.criteria_set == services.reference.set_in_force(services.today()).id
    desk = await official_of(services, dispatcher, "telegram")
    assert "Dân kiểm tra: tiêu chí 1 (" in await desk.say("/xulyphananh")


@pytest.mark.parametrize(
    "typed", ["toi thay tieu chi nay chua dat", "Tôi thấy tiêu chí này chưa đạt"]
)
async def test_the_dispute_label_typed_under_the_card(chat: Chat, typed: str) -> None:
    await onboard(chat)
    await chat.say("tieu chi quy hoach")
    assert "Tiêu chí 1: " in (asked := await chat.say(typed)) and "chưa đạt ở đâu?" in asked


async def test_the_dispute_button_shows_only_under_a_met_criterion(chat: Chat) -> None:
    await onboard(chat)
    await chat.say("tieu chi 2")
    assert not [b for b in chat.buttons if b.startswith("report:dispute:")]
    await chat.say("tieu chi 1")
    assert f"report:dispute:{MET}" in chat.buttons


@pytest.mark.parametrize(
    "typed",
    ["toi thay tieu chi so 1 chua dat", "tieu chi quy hoach chua dat dau", "tc 1 chua dat"],
)
async def test_a_dispute_in_words(dispatcher: Dispatcher, services: Services, typed: str) -> None:
    chat = Chat(dispatcher, "zalo", "z1")
    await onboard(chat)
    assert "bạn thấy chưa đạt ở đâu?" in await chat.say(typed)
    assert "Bạn có ảnh không?" in await chat.say("ban do quy hoach khong treo o dau ca")


async def test_disputing_a_criterion_already_shown_as_not_met(
    dispatcher: Dispatcher, services: Services
) -> None:
    chat = Chat(dispatcher, "terminal", "t1")
    await onboard(chat)
    said = await chat.say("tieu chi ha tang chua dat dau")
    assert "Tiêu chí 2: " in said and "đang được ghi là chưa đạt" in said
    # "Vẫn phản ánh": an ordinary report of the criterion category, no criterion linked.
    assert "Tiêu chí nông thôn mới: bạn mô tả" in await chat.press("report:cat:criterion")
    await chat.say("Đường liên thôn vẫn là đường đất")
    await chat.say("khong")
    await chat.press("report:novil")
    report = await services.reports.get(report_id(await confirm(chat)))
    assert report is not None and (report.category, report.criterion) == ("criterion", None)


@pytest.mark.parametrize(
    "typed", ["tieu chi nao chua dat", "xa minh con tieu chi nao chua dat", "tiêu chí 2 là gì"]
)
async def test_a_question_about_criteria_files_nothing(
    dispatcher: Dispatcher, services: Services, typed: str
) -> None:
    chat = Chat(dispatcher, "telegram", "v1")
    await onboard(chat)
    answer = await chat.say(typed)
    assert "bạn thấy chưa đạt ở đâu?" not in answer
    assert (await services.users.load("telegram", "v1", "vi")).state is None


# --- a near-duplicate of an open report is shown first ---------------------------------------


async def _reported(
    chat: Chat, text: str, category: str = "roads", village: str | None = None
) -> str:
    """`category`, `text`, no photo, the village typed or none: the answer after the village
    (a preview, or the near-duplicate question)."""
    await chat.say("/phananh")
    await chat.press(f"report:cat:{category}")
    await chat.say(text)
    await chat.press("report:skip")
    return await (chat.say(village) if village else chat.press("report:novil"))


@pytest.mark.parametrize("same", ["dung viec nay", "Đúng việc này", "1"])
async def test_the_same_problem_again_follows_the_first_report(
    dispatcher: Dispatcher, services: Services, same: str
) -> None:
    first = Chat(dispatcher, "telegram", "v1")
    await onboard(first)
    ref = await file_report(first, "Đường thôn Nà Làng bị sạt, xe máy không qua được")
    desk = await official_of(services, dispatcher, "telegram")
    await desk.say("/xulyphananh")
    await desk.press(f"report:recv:{report_id(ref)}")
    second = Chat(dispatcher, "zalo", "z2")
    await onboard(second)
    asked = await _reported(second, "duong thon na lang bi sat lo, xe may ko qua dc")
    assert "Có phải việc này không?" in asked
    assert f"{ref} · Đường giao thông — đã tiếp nhận" in asked
    thanked = await second.say(same)
    assert f"Xã đã có phản ánh này (mã {ref})" in thanked
    assert await count(services, reports) == 1
    assert await count(services, report_followers) == 1
    assert (await services.users.load("zalo", "z2", "vi")).state is None
    assert f"• {ref} · Đường giao thông — đã tiếp nhận" in await second.say("/phananhcuatoi")
    # The follower hears of the next change too.
    await desk.say("/xulyphananh")
    await desk.press(f"report:end:{report_id(ref)}:resolved")
    await desk.say("Đã đắp lại taluy, xe qua được")
    assert await notices_to(services, second) == [
        f"Phản ánh {ref} bạn theo dõi: đã giải quyết.\nXã trả lời: Đã đắp lại taluy, xe qua được"
    ]


async def test_another_problem_goes_on_to_the_preview(chat: Chat, services: Services) -> None:
    first = Chat(chat.dispatcher, "telegram", "v1")
    await onboard(first)
    await file_report(first, "Đường thôn Nà Làng bị sạt, xe máy không qua được")
    await onboard(chat)
    assert "Có phải việc này không?" in await _reported(chat, "Đường thôn Nà Làng bị sạt thêm")
    assert "Xem lại phản ánh của bạn:" in await chat.say("viec khac")
    await confirm(chat)
    assert await count(services, reports) == 2


async def test_an_unlike_problem_is_not_asked_about(chat: Chat, services: Services) -> None:
    first = Chat(chat.dispatcher, "telegram", "v1")
    await onboard(first)
    await file_report(first, "Đường thôn Nà Làng bị sạt, xe máy không qua được")
    await onboard(chat)
    assert "Xem lại phản ánh của bạn:" in await _reported(chat, "Cầu tràn Bản Cuôn ngập sau mưa")


async def test_a_closed_or_other_village_report_is_not_a_duplicate(
    dispatcher: Dispatcher, services: Services
) -> None:
    text = "Đường thôn bị sạt, xe máy không qua được"
    first = Chat(dispatcher, "telegram", "v1")
    await onboard(first)
    await _reported(first, text, village="Nà Làng")
    await confirm(first)
    second = Chat(dispatcher, "telegram", "v2")
    await onboard(second)
    assert "Xem lại phản ánh của bạn:" in await _reported(second, text, village="Bản Cuôn")


async def test_my_own_report_again_is_named_not_followed(chat: Chat, services: Services) -> None:
    await onboard(chat)
    ref = await file_report(chat, "Đường thôn Nà Làng bị sạt, xe máy không qua được")
    assert "Có phải việc này không?" in await _reported(chat, "duong thon na lang bi sat")
    assert f"Đây là phản ánh bạn đã gửi. Mã: {ref}." in await chat.say("dung")
    assert await count(services, report_followers) == 0


# --- spam ------------------------------------------------------------------------------------


async def test_spam_is_hidden_from_figures_and_stops_a_repeat_sender(
    dispatcher: Dispatcher, services: Services
) -> None:
    services.settings.report_max_spam = 2
    sender = Chat(dispatcher, "zalo", "z9")
    await onboard(sender)
    honest = Chat(dispatcher, "telegram", "v1")
    await onboard(honest)
    honest_ref = await file_report(honest)
    first, second = await file_report(sender), await file_report(sender)
    desk = await official_of(services, dispatcher, "terminal")
    await desk.say("/xulyphananh")
    assert "là tin rác?" in await desk.press(f"report:spam:{report_id(first)}")
    assert await count(services, reports, reports.c.state == "spam") == 0  # asked first
    assert "“tin rác”" in await desk.say("dung")
    await desk.say("/xulyphananh")
    await desk.press(f"report:spam:{report_id(honest_ref)}")
    assert "Phản ánh đang chờ xử lý:" in await desk.say("khong")  # not spam: nothing marked
    assert "Phản ánh ở Xã Chợ Đồn: 2" in await honest.say("/phananh thongke")
    await desk.say("/xulyphananh")
    await desk.press(f"report:spam:{report_id(second)}")
    await desk.press(f"report:spamok:{report_id(second)}")
    assert "Phản ánh ở Xã Chợ Đồn: 1" in await honest.say("/phananh thong ke")
    refused = await sender.say("/phananh")
    assert "chưa gửi được phản ánh mới" in refused
    assert (await services.users.load("zalo", "z9", "vi")).state is None
    assert "Bạn muốn phản ánh về việc gì?" in await honest.say("/phananh")  # others go on
    # Spam marks count for 30 days.
    days_later(services, 31)
    assert "Bạn muốn phản ánh về việc gì?" in await sender.say("/phananh")


async def test_an_official_of_another_commune_cannot_mark_spam(
    dispatcher: Dispatcher, services: Services
) -> None:
    rid = await filed(dispatcher)
    other = await official_of(services, dispatcher, "zalo", NA_RI)
    assert REFUSAL in await other.press_unoffered(f"report:spam:{rid}")
    assert REFUSAL in await other.press_unoffered(f"report:spamok:{rid}")
    report = await services.reports.get(rid)
    assert report is not None and report.state == "new"


# --- province officials: every commune, reassigning; the queue in pages ----------------------


@pytest.mark.parametrize("typed", ["bang lung", "Chợ Đồn", "cho don"])
async def test_a_province_official_reassigns_a_report_to_its_commune(
    dispatcher: Dispatcher, services: Services, typed: str
) -> None:
    villager = Chat(dispatcher, "telegram", "v1")
    await onboard(villager, "na ri")
    ref = await file_report(villager)
    rid = report_id(ref)
    desk = await official_of(services, dispatcher, "terminal")  # Chợ Đồn's
    province = await province_official(services, dispatcher, "zalo")
    listed = await province.say("/xulyphananh")
    assert f"{ref} · Xã Na Rì" in listed  # every commune's reports
    assert "chuyển cho xã nào?" in await province.press(f"report:move:{rid}")
    assert "đã chuyển cho Xã Chợ Đồn" in await province.say(typed)
    report = await services.reports.get(rid)
    assert report is not None and report.commune_code == CHO_DON
    assert await notices_to(services, villager) == [
        f"Phản ánh {ref} của bạn đã được chuyển cho Xã Chợ Đồn xử lý."
    ]
    [told] = await notices_to(services, desk)  # the commune's officials hear of it as new
    assert told.startswith(f"Phản ánh mới {ref} ở Xã Chợ Đồn: Đường giao thông.")
    async with services.db.read() as conn:
        [action] = (
            await conn.execute(
                select(audit_log.c.action).where(audit_log.c.action == "report.reassign")
            )
        ).all()
    assert action.action == "report.reassign"


async def test_a_commune_official_cannot_reassign(
    dispatcher: Dispatcher, services: Services
) -> None:
    rid = await filed(dispatcher)
    desk = await official_of(services, dispatcher, "telegram")
    await desk.say("/xulyphananh")
    assert f"report:move:{rid}" not in desk.buttons
    assert REFUSAL in await desk.press_unoffered(f"report:move:{rid}")
    other = await official_of(services, dispatcher, "zalo", NA_RI)
    assert REFUSAL in await other.press_unoffered(f"report:move:{rid}")
    report = await services.reports.get(rid)
    assert report is not None and report.commune_code == CHO_DON


async def asked_where(services: Services, dispatcher: Dispatcher, channel: str) -> tuple[Chat, int]:
    """A province official asked which commune a Chợ Đồn report goes to; the report's id."""
    rid = await filed(dispatcher)
    province = await province_official(services, dispatcher, channel)
    await province.say("/xulyphananh")
    assert "chuyển cho xã nào?" in await province.press(f"report:move:{rid}")
    return province, rid


async def test_a_commune_name_not_found_asks_again(
    dispatcher: Dispatcher, services: Services
) -> None:
    province, _rid = await asked_where(services, dispatcher, "terminal")
    assert "không tìm thấy xã" in await province.say("xyzxyz")
    assert "đã chuyển cho Xã Na Rì" in await province.say("na ri")


async def test_a_revoked_province_official_is_stopped_at_the_commune(
    dispatcher: Dispatcher, services: Services
) -> None:
    province, rid = await asked_where(services, dispatcher, "zalo")
    assert await services.officials.revoke("zalo:tinh", "province_official", "19")
    assert REFUSAL in await province.say("na ri")
    report = await services.reports.get(rid)
    assert report is not None and report.commune_code == CHO_DON


def shown(text: str, refs: list[str]) -> list[str]:
    """The receipt codes in the order the text shows them."""
    return sorted((r for r in refs if r in text), key=text.index)


async def test_the_queue_in_pages_of_five_new_first_overdue_marked(
    dispatcher: Dispatcher, services: Services
) -> None:
    services.settings.report_max_open = 10
    villager = Chat(dispatcher, "telegram", "v1")
    await onboard(villager)
    refs = [await file_report(villager) for _ in range(6)]
    days_later(services, 16)  # roads: 15 days
    late = Chat(dispatcher, "telegram", "v2")
    await onboard(late)
    refs.append(await file_report(late))
    desk = await official_of(services, dispatcher, "zalo")
    await desk.say("/xulyphananh")
    await desk.press(f"report:recv:{report_id(refs[0])}")  # received: after every new one
    first = await desk.say("/xulyphananh")
    assert shown(first, refs) == refs[1:6]
    assert first.count("⏰ quá hạn") == 5 and "Còn 2 phản ánh nữa." in first
    then = await desk.press(next(b for b in desk.buttons if b.startswith("report:more:")))
    assert shown(then, refs) == [refs[6], refs[0]]
    assert "Còn" not in then and "⏰ quá hạn" in then


# --- officials hear of each new report -------------------------------------------------------


async def test_the_communes_officials_hear_of_a_new_report_once_in_their_language(
    dispatcher: Dispatcher, services: Services
) -> None:
    vi = await official_of(services, dispatcher, "telegram")
    en = await official_of(services, dispatcher, "zalo")
    await en.say("/ngonngu")
    await en.press("lang:en")
    elsewhere = await official_of(services, dispatcher, "terminal", NA_RI)
    villager = Chat(dispatcher, "terminal", "t1")
    await onboard(villager)
    await _reported(villager, "Kênh mương nội đồng bị vỡ một đoạn", "water")
    ok = next(b for b in villager.buttons if b.startswith("report:ok:"))
    ref = (await villager.press(ok)).split("Mã phản ánh: ")[1].split()[0]
    assert "Đã ghi nhận trước đó." in await villager.press_unoffered(ok)  # replayed
    assert await notices_to(services, vi) == [
        f"Phản ánh mới {ref} ở Xã Chợ Đồn: Nước, thủy lợi.\nKênh mương nội đồng bị vỡ một đoạn"
    ]
    [english] = await notices_to(services, en)
    assert english.startswith(f"New report {ref} in Xã Chợ Đồn: Water and irrigation.")
    assert await notices_to(services, elsewhere) == []
