"""Misfires found by playing villagers and officials at the terminal, typed exactly as they were
typed: a criterion's number in words, "menu" and the words that leave inside a draft, a flow's
own command typed twice. Each ran on every channel (the terminal and Zalo show numbers)."""

from __future__ import annotations

import pytest

from bot.app.services import Services
from bot.core.dispatch import Dispatcher
from bot.storage.schema import broadcasts, polls, reports
from tests.conftest import Chat
from tests.test_contributions import pledge_money
from tests.test_polls import count, onboard
from tests.test_projects import post, road
from tests.test_reports import close_as_resolved, file_report, report_id
from tests.test_typed_answers import subscribed

ASKED = "Bạn muốn hủy việc đang làm? Những gì bạn đã nhập sẽ không được lưu."
MAIN_MENU = "Bạn muốn xem gì? Chọn một mục bên dưới."


async def state_of(services: Services, chat: Chat) -> str | None:
    return (await services.users.load(chat.channel, chat.user_id, "vi")).state


# --- a criterion's number in words -----------------------------------------------------------


@pytest.mark.parametrize(
    "typed", ["tieu chi so hai chua dat", "tieu chi thu hai chua dat", "tieu chi hai ko dat"]
)
async def test_a_criterion_number_in_words_is_disputed_as_in_digits(chat: Chat, typed: str) -> None:
    await onboard(chat)
    in_digits = await chat.say("tieu chi 2 chua dat")
    assert "Tiêu chí 2: " in in_digits and "đang được ghi là chưa đạt" in in_digits
    assert await chat.say(typed) == in_digits  # not the list of every criterion


@pytest.mark.parametrize("typed", ["tieu chi so mot chua dat", "tiêu chí thứ nhất chưa đạt"])
async def test_a_met_criterion_in_words_starts_its_dispute(
    chat: Chat, services: Services, typed: str
) -> None:
    await onboard(chat)
    asked = await chat.say(typed)
    assert "Tiêu chí 1: " in asked and "bạn thấy chưa đạt ở đâu?" in asked
    assert await state_of(services, chat) == "report:text"


@pytest.mark.parametrize("typed", ["tieu chi so hai", "tiêu chí thứ hai", "tieu chi muoi"])
async def test_a_criterion_named_in_words_shows_its_card(chat: Chat, typed: str) -> None:
    await onboard(chat)
    card = await chat.say(typed)
    number = "10" if "muoi" in typed else "2"
    assert f"Tiêu chí {number}: " in card and "47 chỉ tiêu" not in card


async def test_this_years_criteria_are_no_fifth_criterion(chat: Chat) -> None:
    await onboard(chat)
    assert "Tiêu chí 5: " not in await chat.say("tieu chi nam nay chua dat")


# --- "menu" and the words that leave, inside a poll being created ----------------------------

# Each step of /taobinhchon: what moves on to it, and words of the question it asks.
POLL_STEPS = [
    ("say", "/taobinhchon", "Câu hỏi cần lấy ý kiến?"),
    ("say", "Lam duong thon nao truoc", "mỗi dòng một lựa chọn"),
    ("say", "Na Lang\nBan Cuon", "Gõ thêm lựa chọn, hoặc bấm Xong."),
    ("press", "poll:opts", "Thêm câu hỏi?"),
    ("press", "poll:next", "Hỏi ý kiến ai?"),
    ("press", "poll:scope:0", "Đóng bình chọn lúc nào?"),
    ("say", "18:00 5/12", "Khi nào bà con xem được kết quả?"),
    ("press", "poll:res:after_vote", "Mở bình chọn này?"),
]


async def an_official(services: Services, chat: Chat) -> Chat:
    await services.officials.grant(
        f"{chat.channel}:{chat.user_id}", "commune_official", "02020", "t"
    )
    await onboard(chat)
    return chat


@pytest.mark.parametrize("typed", ["menu", "/menu", "Menu"])
async def test_menu_at_every_step_of_a_new_poll_asks_and_keeps_the_draft(
    chat: Chat, services: Services, typed: str
) -> None:
    official = await an_official(services, chat)
    for how, what, question in POLL_STEPS:
        moved = await (official.say(what) if how == "say" else official.press(what))
        assert question in moved
        assert ASKED in await official.say(typed)  # never the question, an option, or help
        assert question in await official.say("tiếp tục")
    assert ASKED in await official.say(typed)
    assert MAIN_MENU in await official.say("Menu")  # the label of the button, typed
    assert await state_of(services, official) is None
    assert await count(services, polls) == 0


@pytest.mark.parametrize("typed", ["huy", "thoat", "Hủy", "menu chinh"])
async def test_leaving_words_are_never_a_polls_question_or_option(
    chat: Chat, services: Services, typed: str
) -> None:
    official = await an_official(services, chat)
    await official.say("/taobinhchon")
    assert ASKED in await official.say(typed)
    assert "Câu hỏi cần lấy ý kiến?" in await official.say("tiep tuc")
    await official.say("Lam duong thon nao truoc")
    assert ASKED in await official.say(typed)
    back = await official.say("tiep tuc")
    assert "mỗi dòng một lựa chọn" in back and "Các lựa chọn:" not in back


async def test_new_poll_typed_twice_asks_its_question_once(chat: Chat, services: Services) -> None:
    official = await an_official(services, chat)
    await official.say("/taobinhchon")
    again = await official.say("/taobinhchon")
    assert again.count("Câu hỏi cần lấy ý kiến?") == 1 and len(official.last) == 1
    await official.say("Lam duong thon nao truoc")
    later = await official.say("/taobinhchon")  # started afresh, as a pledge's /dongop is
    assert later.count("Câu hỏi cần lấy ý kiến?") == 1 and "lựa chọn" not in later
    assert "mỗi dòng một lựa chọn" in await official.say("Sua kenh muong truoc?")


@pytest.mark.parametrize("typed", ["toan xa", "cả xã", "tat ca"])
async def test_the_whole_commune_typed_in_words_at_whom_to_ask(
    chat: Chat, services: Services, typed: str
) -> None:
    official = await an_official(services, chat)
    for how, what, _question in POLL_STEPS[:5]:
        await (official.say(what) if how == "say" else official.press(what))
    assert "Hỏi ý kiến ai?" in official.last[-1].text
    assert "Đóng bình chọn lúc nào?" in await official.say(typed)  # the button "Xã Chợ Đồn"
    assert "Dành cho: Xã Chợ Đồn" in await official.say("18:00 5/12") + await official.press(
        "poll:res:after_vote"
    )


async def test_an_announcement_to_the_whole_commune_and_yes_with_the_buttons_word(
    chat: Chat, services: Services
) -> None:
    official = await an_official(services, chat)
    await official.say("/thongbaomoi")
    assert ASKED in await official.say("thoat")  # not the announcement's text
    await official.say("tiep tuc")
    assert "Gửi tới đâu?" in await official.say("Thu bay hop dan thon Na Lang luc 8h sang")
    assert "Gửi lúc nào?" in await official.say("toan xa")
    assert "Gửi chứ?" in await official.say("ngay bay gio")
    assert ASKED in await official.say("ko gui")  # no: leaving, so asked
    assert "Gửi chứ?" in await official.say("tiep tuc")
    assert "Đã lên lịch thông báo số" in await official.say("dung, gui")
    assert await count(services, broadcasts) == 1


@pytest.mark.parametrize("typed", ["tien va ngay cong", "Tiền, ngày công", "1 3", "mot va ba"])
async def test_a_campaigns_kinds_typed_at_once(chat: Chat, services: Services, typed: str) -> None:
    official = await an_official(services, chat)
    await official.say("/taophongtrao")
    assert "Nhận những gì?" in await official.say("Lam duong thon Ban Cuon")
    assert "Mục tiêu?" in await official.say(typed)
    await official.say("hai tram trieu, nam tram ngay cong")
    summary = await official.say("bo qua")
    assert "nhận: Ngày công, Tiền; mục tiêu: 200.000.000 đồng, 500 ngày công" in summary


async def test_a_new_project_with_no_campaign_and_a_budget_in_words(
    chat: Chat, services: Services
) -> None:
    official = await an_official(services, chat)
    await official.say("/taocongtrinh")
    await official.say("Nha van hoa thon Ban Cuon")
    assert "Cuộc vận động nào góp" in await official.say("ban cuon")
    assert "Kinh phí theo nguồn?" in await official.say("khong")  # none: the “Xong”
    said = await official.say("mot ty hai")  # no source: said so, not "busy" as if a pledge
    assert "Chưa hiểu kinh phí" in said and "đang làm dở" not in said
    assert "Ngày khởi công" in await official.say("nha nuoc mot ty hai")


# --- the same in a pledge and a report ------------------------------------------------------


async def test_a_pledge_typed_twice_asks_once_and_menu_asks_before_losing_it(
    chat: Chat, services: Services
) -> None:
    await onboard(chat)
    await chat.say("/dongop")
    again = await chat.say("/dongop")
    assert again.count("bạn ở thôn, bản nào?") == 1 and len(chat.last) == 1
    assert "bạn muốn góp gì?" in await chat.say("Na Lang")
    assert ASKED in await chat.say("menu")  # not the help text and the step again
    assert "bạn muốn góp gì?" in await chat.say("tiếp tục")
    assert ASKED in await chat.say("/menu")
    assert MAIN_MENU in await chat.say("Menu")
    assert await state_of(services, chat) is None
    assert await subscribed(services, chat)


async def test_another_flows_command_mid_pledge_asks_before_the_draft_is_lost(
    chat: Chat, services: Services
) -> None:
    """Telegram's command menu makes "/doixa" one tap away in the middle of a pledge: it asks
    first, "tiếp tục" comes back to the pledge as it was, and yes does the command."""
    await onboard(chat)
    await chat.say("/dongop")
    assert "bạn muốn góp gì?" in await chat.say("Na Lang")
    assert ASKED in await chat.say("/doixa")
    assert "bạn muốn góp gì?" in await chat.say("tiep tuc")  # the draft kept, village and all
    assert await state_of(services, chat) == "contrib:kind"
    assert ASKED in await chat.say("/phananh")
    assert "Bạn muốn phản ánh về việc gì?" in await chat.say("co")  # yes: /phananh, at once
    assert str(await state_of(services, chat)).startswith("report:")
    assert await subscribed(services, chat)


async def test_a_command_that_only_answers_mid_pledge_asks_nothing(
    chat: Chat, services: Services
) -> None:
    await onboard(chat)
    await chat.say("/dongop")
    await chat.say("Na Lang")
    shown = await chat.say("/tiendo")
    assert ASKED not in shown and "bạn muốn góp gì?" in shown  # answered, the pledge goes on
    assert await state_of(services, chat) == "contrib:kind"


async def test_thoat_at_a_reports_description_asks_and_is_no_description(
    chat: Chat, services: Services
) -> None:
    await onboard(chat)
    await chat.say("/phananh")
    assert "bạn mô tả" in await chat.press("report:cat:roads")
    assert ASKED in await chat.say("thoat")
    assert "bạn mô tả" in await chat.say("tiep tuc")
    assert await state_of(services, chat) == "report:text"
    assert await count(services, reports) == 0


@pytest.mark.parametrize(
    "typed", ["den duong hong roi", "đèn đường hỏng rồi", "den duong bi hong", "cong bi hong"]
)
async def test_broken_typed_plain_is_a_report_not_a_question(chat: Chat, typed: str) -> None:
    """ "hong" is teencode for "không": "đèn đường hỏng rồi" was a question, and nothing."""
    await onboard(chat)
    said = await chat.say(typed)
    assert "bạn mô tả ngắn sự việc" in said or "Bạn muốn phản ánh về việc gì?" in said


async def test_hong_for_khong_still_asks(chat: Chat) -> None:
    await onboard(chat)
    assert "bạn mô tả" not in await chat.say("co binh chon nao hong")


@pytest.mark.parametrize("kept_by", ["thoi", "bo qua", "ko huy"])  # "không": test_typed_answers
async def test_withdrawing_a_pledge_huy_is_yes_and_thoi_keeps_it(
    chat: Chat, services: Services, kept_by: str
) -> None:
    """ "hủy" at "Hủy đăng ký …?" said "Đã hủy" of the question and kept the pledge."""
    await onboard(chat)
    await pledge_money(chat)
    await chat.say("đúng")
    [pledge] = await services.contributions.of_user(chat.channel, chat.user_id)
    await chat.say("dong gop cua toi")
    assert "Hủy đăng ký" in await chat.press(f"contrib:withdraw:{pledge.id}")
    assert "Đã hủy" not in await chat.say(kept_by)
    [kept] = await services.contributions.of_user(chat.channel, chat.user_id)
    assert kept.status == "registered"
    await chat.press(f"contrib:withdraw:{pledge.id}")
    assert f"Đã hủy {pledge.ref}." in await chat.say("huy")
    [gone] = await services.contributions.of_user(chat.channel, chat.user_id)
    assert gone.status == "cancelled"


@pytest.mark.parametrize(("typed", "rating"), [("hai long", "good"), ("chua hai long", "bad")])
async def test_a_rating_typed_is_the_button_without_or_with_its_not(
    chat: Chat, services: Services, dispatcher: Dispatcher, typed: str, rating: str
) -> None:
    """ "hai long" was part of both "Hài lòng" and "Chưa hài lòng", so neither."""
    await onboard(chat)
    rid = report_id(await file_report(chat))
    await close_as_resolved(services, dispatcher, rid)
    await chat.say("phan anh cua toi")
    assert "Cảm ơn bạn đã đánh giá" in await chat.say(typed)
    report = await services.reports.get(rid)
    assert report is not None and report.rating == rating


# --- a project's progress in words ----------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "percent"), [("nam muoi phan tram", 50), ("tám mươi %", 80), ("dat sau muoi", 60)]
)
async def test_a_projects_progress_typed_in_words(
    chat: Chat, services: Services, typed: str, percent: int
) -> None:
    official = await an_official(services, chat)
    preview = await post(official, await road(services), "building", typed, "Da do xong 600m")
    assert f"{percent}%" in preview


# --- a button's number in words, where buttons are numbers ------------------------------------


@pytest.mark.parametrize("channel", ["terminal", "zalo"])
async def test_a_buttons_number_typed_in_words_picks_it(
    dispatcher: Dispatcher, services: Services, channel: str
) -> None:
    chat = Chat(dispatcher, channel, "w1")
    await chat.say("/start")
    assert "Bạn sống ở xã, phường nào?" in await chat.say("mot")  # 1. Tiếng Việt
    await chat.say("cho don")
    await chat.say("/dongop")
    assert "bạn muốn góp gì?" in await chat.say("hai")  # 2. Bản Cuôn
    assert "Bạn góp bao nhiêu? Ví dụ: 5 bao" in await chat.say("số ba")  # 3. Vật liệu
    await chat.say("/huy")
    await chat.say("/dongop")
    assert "bạn ở thôn, bản nào?" in await chat.say("ba")  # "ba" alone may be father: no pick
    assert (await services.users.load(channel, "w1", "vi")).state == "contrib:village"


@pytest.mark.parametrize("channel", ["terminal", "zalo"])
async def test_one_in_words_where_one_is_cancel_throws_no_draft_away(
    dispatcher: Dispatcher, services: Services, channel: str
) -> None:
    official = await an_official(services, Chat(dispatcher, channel, "w2"))
    preview = await post(official, await road(services), "building", "mot", "Da do xong 600m")
    assert "1%" in preview  # "1. Hủy" was on offer at the percent


# --- one kind of message switched in words ---------------------------------------------------


async def test_one_kind_of_message_is_switched_off_and_on_in_words(
    chat: Chat, services: Services
) -> None:
    await onboard(chat)

    async def topics() -> dict[str, bool]:
        sub = await services.subscriptions.get(chat.channel, chat.user_id)
        assert sub is not None and sub.active
        return dict(sub.topics)

    before = await topics()
    assert "Đã tắt: Tiến độ công trình." in await chat.say("tat thong bao cong trinh")
    assert await topics() == before | {"projects": False}
    assert "Đã tắt: Thông báo của tỉnh." in await chat.say("khong nhan tin cua tinh nua")
    assert "Đã bật: Tiến độ công trình." in await chat.say("bat lai tin cong trinh")
    assert await topics() == before | {"province_news": False}
    shown = await chat.say("chi nhan tin cua xa")  # "only": which others? the list, to choose
    assert "Bạn đang nhận:" in shown and "Đã " not in shown
    assert await topics() == before | {"province_news": False}
    assert "%" in await chat.say("cong trinh lam den dau roi")  # a project's progress, as before
    assert "Đã tắt: Bình chọn mới và kết quả." in await chat.say("ko nhan tin binh chon nua")


# --- what a villager playing found: asked first, or asked again -----------------------------

UNSURE = "Mình chưa chắc bạn chọn gì. Bạn gõ số của lựa chọn ở dưới nhé."


async def test_at_cancel_a_pledge_dung_asks_again_and_no_hint_to_type_huy(
    chat: Chat, services: Services
) -> None:
    """ "hủy" says yes there, so the bot must not tell the villager to type it to leave; and
    "dung" may be "dừng" (leave it be) as much as "đúng"."""
    await onboard(chat)
    await pledge_money(chat)
    await chat.say("đúng")
    [pledge] = await services.contributions.of_user(chat.channel, chat.user_id)
    await chat.say("dong gop cua toi")
    await chat.press(f"contrib:withdraw:{pledge.id}")
    unclear = await chat.say("de toi nghi da")
    assert "Hủy đăng ký" in unclear and "Gõ “hủy”" not in unclear
    assert UNSURE in await chat.say("dung")
    [kept] = await services.contributions.of_user(chat.channel, chat.user_id)
    assert kept.status == "registered"
    assert f"Đã hủy {pledge.ref}." in await chat.say("Đúng")  # with its marks: yes


async def test_dung_twice_mid_pledge_picks_neither_stop(chat: Chat, services: Services) -> None:
    await onboard(chat)
    await chat.say("/dongop")
    await chat.say("Na Lang")
    assert "hay dừng nhận mọi thông báo?" in await chat.say("dung")
    assert UNSURE in await chat.say("dung")
    assert await subscribed(services, chat)
    assert "bạn muốn góp gì?" in await chat.say("tiep tuc")


@pytest.mark.parametrize("typed", ["sao toi khong nhan tin nua vay", "tai sao khong nhan tin nua?"])
async def test_asking_why_no_messages_come_asks_before_stopping_them(
    chat: Chat, services: Services, typed: str
) -> None:
    await onboard(chat)
    assert "Đã dừng" not in await chat.say(typed)
    assert await subscribed(services, chat)


async def test_bat_lai_names_one_kind_and_switches_it_on(chat: Chat, services: Services) -> None:
    await onboard(chat)
    await chat.say("tat thong bao cong trinh")
    assert "Đã bật: Tiến độ công trình." in await chat.say("bat lai thong bao cong trinh")
    sub = await services.subscriptions.get(chat.channel, chat.user_id)
    assert sub is not None and sub.topics["projects"]
