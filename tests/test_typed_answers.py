"""Inside a step the step's answer comes first: transcripts of what villagers type at each
question of a pledge, on every channel. Each case was a misfire before the steps were declared:
"Đúng" at the confirmation unsubscribed, names stopped or cancelled, village names were dates."""

from __future__ import annotations

import pytest

from bot.app.services import Services
from bot.core.conversation import Incoming
from tests.conftest import Chat
from tests.test_contributions import count, onboard, pledge_money


async def subscribed(services: Services, chat: Chat) -> bool:
    sub = await services.subscriptions.get(chat.channel, chat.user_id)
    return sub is not None and sub.active


async def at_village(chat: Chat) -> str:
    await onboard(chat)
    return await chat.say("/dongop")


# --- the confirmation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed", ["Đúng", "Dúng", "dúng rồi", "đúng rồi", "dung roi", "ok", "có", "co", "dong y", "ừ"]
)
async def test_yes_typed_at_the_confirmation_records_the_pledge(
    chat: Chat, services: Services, typed: str
) -> None:
    await onboard(chat)
    before = await count(services)
    await pledge_money(chat)
    assert "Cảm ơn bạn! Đã ghi nhận đăng ký." in await chat.say(typed)
    assert await count(services) == before + 1
    assert await subscribed(services, chat)


@pytest.mark.parametrize("typed", ["dừng", "Dừng lại", "stop"])
async def test_stop_at_the_confirmation_asks_and_loses_nothing(
    chat: Chat, services: Services, typed: str
) -> None:
    await onboard(chat)
    before = await count(services)
    await pledge_money(chat)
    assert "Bạn muốn dừng việc đang làm, hay dừng nhận mọi thông báo?" in await chat.say(typed)
    assert await subscribed(services, chat)
    back = await chat.say("tiếp tục")  # the label of the button, typed
    assert back.endswith("Đúng không?") and any(b.startswith("contrib:ok:") for b in chat.buttons)
    assert "Cảm ơn bạn!" in await chat.say("Đúng")
    assert await count(services) == before + 1


@pytest.mark.parametrize("typed", ["dung lai", "dừng lại", "stop"])
async def test_stop_in_the_middle_of_a_pledge_can_mean_the_pledge_and_never_unsubscribes(
    chat: Chat, services: Services, typed: str
) -> None:
    """ "dung lai" at the amount step offered only "Dừng nhận tin": pressing 1 unsubscribed."""
    await onboard(chat)
    await chat.say("/dongop")
    await chat.press("contrib:vil:0")
    await chat.press("contrib:kind:money")
    assert "hay dừng nhận mọi thông báo?" in await chat.say(typed)
    assert "hay dừng nhận mọi thông báo?" in await chat.say(typed)  # again: still asked
    assert await subscribed(services, chat)
    assert "Đã dừng việc đang làm" in await chat.press("menu:quit")
    assert await subscribed(services, chat)
    assert "Không có việc gì đang làm dở" in await chat.say("/huy")


@pytest.mark.parametrize("typed", ["hủy", "huy", "thôi"])
async def test_cancel_at_the_confirmation_asks_first(
    chat: Chat, services: Services, typed: str
) -> None:
    await onboard(chat)
    before = await count(services)
    await pledge_money(chat)
    assert "Bạn muốn hủy việc đang làm?" in await chat.say(typed)
    assert "Đã hủy." in await chat.say("có")
    assert await count(services) == before
    assert chat.user_id and await subscribed(services, chat)


async def test_no_at_the_confirmation_starts_again_and_records_nothing(
    chat: Chat, services: Services
) -> None:
    await onboard(chat)
    before = await count(services)
    await pledge_money(chat)
    assert "bạn ở thôn, bản nào?" in await chat.say("không")
    assert await count(services) == before


# --- names that fold to command words --------------------------------------------------------


# The terminal and Zalo ask for the name to show; Telegram knows it and does not ask.
ASKING_NAME = pytest.mark.parametrize("chat", ["terminal", "zalo"], indirect=True)


async def at_the_name_step(chat: Chat) -> None:
    """A pledge of 500k up to "Bạn muốn hiện tên là gì?"."""
    await at_village(chat)
    await chat.press("contrib:vil:0")
    await chat.press("contrib:kind:money")
    await chat.say("500k")
    await chat.press("contrib:when:now")
    assert "Bạn muốn hiện tên là gì?" in await chat.press("contrib:public:yes")


@ASKING_NAME
@pytest.mark.parametrize("name", ["Dũng", "Huy", "dung", "Nguyễn Văn Dừng"])
async def test_a_name_is_a_name(chat: Chat, services: Services, name: str) -> None:
    await at_the_name_step(chat)
    assert f"Hiện tên: {name}" in await chat.say(name)
    await chat.say("đúng")
    [mine] = await services.contributions.of_user(chat.channel, chat.user_id)
    assert mine.display_name == name
    assert await subscribed(services, chat)


# --- choices typed in words -----------------------------------------------------------------


@pytest.mark.parametrize("typed", ["Nà Làng", "na lang", "NA LANG", "na lamg"])
async def test_a_village_typed_by_name(chat: Chat, typed: str) -> None:
    await at_village(chat)
    assert "bạn muốn góp gì?" in await chat.say(typed)


@pytest.mark.parametrize("chat", ["terminal", "zalo"], indirect=True)
async def test_a_village_by_its_number_on_channels_without_buttons(chat: Chat) -> None:
    await at_village(chat)
    assert "bạn muốn góp gì?" in await chat.say("2")


async def test_an_answer_that_fits_nothing_asks_again_with_the_buttons(chat: Chat) -> None:
    await at_village(chat)
    answer = await chat.say("qwerty")
    assert "Gõ “hủy” nếu bạn muốn thoát." in answer
    assert "bạn ở thôn, bản nào?" in answer
    assert chat.buttons == ["contrib:vil:0", "contrib:vil:1"]
    answer = await chat.say("15/12")  # not a date step: never "Bạn gõ ngày theo kiểu"
    assert "ngày theo kiểu" not in answer and chat.buttons == ["contrib:vil:0", "contrib:vil:1"]
    if chat.channel != "telegram":
        assert "bạn muốn góp gì?" in await chat.say("1")  # numbers still work after an error


@pytest.mark.parametrize("typed", ["tiền", "tien", "Tiền"])
async def test_a_kind_typed_by_name(chat: Chat, typed: str) -> None:
    await at_village(chat)
    await chat.say("na lang")
    assert "Bạn góp bao nhiêu?" in await chat.say(typed)


@pytest.mark.parametrize(
    ("typed", "spelled"),
    [
        ("hai triệu", "2.000.000 đồng"),
        ("năm trăm nghìn", "500.000 đồng"),
        ("hai trieu ruoi", "2.500.000 đồng"),
        ("2 củ", "2.000.000 đồng"),
    ],
)
async def test_money_in_words(chat: Chat, typed: str, spelled: str) -> None:
    await at_village(chat)
    await chat.say("na lang")
    await chat.say("tiền")
    await chat.say(typed)
    await chat.say("bây giờ")
    confirm = await chat.say("không")  # anonymous
    assert f"Bạn đăng ký góp {spelled}" in confirm


async def test_one_toi_is_a_billion_not_one_dong(chat: Chat) -> None:
    await at_village(chat)
    await chat.say("na lang")
    await chat.say("tiền")
    answer = await chat.say("1 tỏi")
    assert "1.000.000.000 đồng là quá nhiều" in answer or "Khi nào bạn góp?" in answer
    assert "1 đồng" not in answer


@pytest.mark.parametrize(
    ("typed", "spelled"),
    [("ba ngày công", "3 ngày công"), ("1 buổi", "0,5 ngày công"), ("mười bao xi măng", "10 bao")],
)
async def test_workdays_and_materials_in_words(chat: Chat, typed: str, spelled: str) -> None:
    await at_village(chat)
    await chat.say("na lang")
    assert "Khi nào bạn góp?" in await chat.say(typed)  # the amount says its kind
    await chat.say("hôm nay")
    assert spelled in await chat.say("không")


@pytest.mark.parametrize("typed", ["hôm nay", "bây giờ", "Ngay bây giờ", "mai", "ngày mai"])
async def test_when_in_words(chat: Chat, typed: str) -> None:
    await at_village(chat)
    await chat.say("na lang")
    await chat.say("tiền")
    await chat.say("500k")
    assert "Bạn có muốn hiện tên không?" in await chat.say(typed)


async def test_a_decimal_is_never_a_date(chat: Chat) -> None:
    await onboard(chat)
    await chat.say("ung ho 2.5 trieu")
    await chat.say("na lang")
    assert "Khi nào bạn góp?" in chat.last[-1].text  # no date was taken from "2.5"
    confirm = await chat.say("bây giờ")
    confirm = await chat.say("không")
    assert "2.500.000 đồng" in confirm and "Hẹn ngày" not in confirm


@pytest.mark.parametrize(("typed", "shown"), [("co", True), ("không", False)])
async def test_yes_or_no_to_showing_the_name(chat: Chat, typed: str, shown: bool) -> None:
    await at_village(chat)
    await chat.say("na lang")
    await chat.say("tiền")
    await chat.say("500k")
    await chat.say("mai")
    answer = await chat.say(typed)
    if shown and "Bạn muốn hiện tên là gì?" in answer:
        answer = await chat.say("Lan")
    assert ("Hiện tên:" in answer) is shown
    assert ("Công khai: ẩn danh" in answer) is not shown


@pytest.mark.parametrize("typed", ["an danh", "ẩn danh", "de an danh"])
async def test_part_of_a_label_presses_it(chat: Chat, typed: str) -> None:
    await at_village(chat)
    await chat.say("na lang")
    await chat.say("tiền")
    await chat.say("500k")
    await chat.say("mai")
    assert "Công khai: ẩn danh" in await chat.say(typed)


async def test_a_name_typed_where_the_bot_asks_to_show_one_is_shown(chat: Chat) -> None:
    await at_village(chat)
    await chat.say("na lang")
    await chat.say("tiền")
    await chat.say("500k")
    await chat.say("mai")
    assert "Hiện tên: Dũng" in await chat.say("Dũng")


@pytest.mark.parametrize("typed", ["huy cai 2 trieu ruoi", "hủy đóng góp", "toi muon huy dang ky"])
async def test_taking_a_pledge_back_never_starts_a_new_one(
    chat: Chat, services: Services, typed: str
) -> None:
    await onboard(chat)
    answer = await chat.say(typed)
    assert "Đóng góp của bạn" in answer or "Bạn chưa đăng ký đóng góp nào." in answer
    assert (await services.users.load(chat.channel, chat.user_id, "vi")).state is None


# --- questions in the middle of a step ------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "answered"),
    [
        ("ai đã góp bao nhiêu", "Đã xác nhận"),
        ("xã tôi đạt bao nhiêu tiêu chí?", "tiêu chí"),
        ("làm sao để đóng góp", "đóng góp"),
    ],
)
async def test_a_question_is_answered_and_the_step_asked_again(
    chat: Chat, services: Services, typed: str, answered: str
) -> None:
    await at_village(chat)
    await chat.say("na lang")
    await chat.say("tiền")
    answer = await chat.say(typed)
    assert answered in answer
    assert answer.rstrip().endswith("Ví dụ: 500k, 2 triệu, 1,5 tr, 1.500.000đ")
    assert "Khi nào bạn góp?" in await chat.say("2 triệu")  # the draft was kept


@pytest.mark.parametrize("typed", ["dong gop", "doi xa", "hai củ"])
async def test_an_action_in_the_middle_of_a_pledge_asks_the_question_again(
    chat: Chat, typed: str
) -> None:
    await at_village(chat)
    answer = await chat.say(typed)
    assert "bạn ở thôn, bản nào?" in answer
    assert chat.buttons == ["contrib:vil:0", "contrib:vil:1"]
    assert "bạn muốn góp gì?" in await chat.say("na lang")


@pytest.mark.parametrize("command", ["/tiendo", "/bangdonggop", "/hoidap", "/trogiup"])
async def test_a_command_that_shows_something_keeps_the_pledge(chat: Chat, command: str) -> None:
    await at_village(chat)
    await chat.say("na lang")
    await chat.say("tiền")
    answer = await chat.say(command)
    assert answer.rstrip().endswith("Ví dụ: 500k, 2 triệu, 1,5 tr, 1.500.000đ")
    assert "Khi nào bạn góp?" in await chat.say("500k")


async def test_another_commune_named_in_the_question(chat: Chat) -> None:
    await onboard(chat)
    card = await chat.say("xa na ri dat bao nhieu tieu chi")
    assert "Xã Na Rì, Tỉnh Thái Nguyên" in card
    # A criterion under that card is Na Rì's, and nobody disputes it from Chợ Đồn.
    crit = next(b for b in chat.buttons if b.startswith("status:ocrit:"))
    assert crit.endswith(":02155")
    detail = await chat.press(crit)
    assert "Xã Na Rì" in detail and "Xã Chợ Đồn" not in detail
    assert not [b for b in chat.buttons if b.startswith("report:dispute")]
    assert "Xã Chợ Đồn, Tỉnh Thái Nguyên" in await chat.say("/tiendo")  # still Chợ Đồn
    assert all(b.startswith("status:crit:") for b in chat.buttons if "crit" in b)


async def test_cancel_with_nothing_to_cancel_says_so(chat: Chat) -> None:
    await onboard(chat)
    assert "Không có việc gì đang làm dở." in await chat.say("hủy")


async def test_a_thumbs_up_confirms(chat: Chat, services: Services) -> None:
    await onboard(chat)
    before = await count(services)
    await pledge_money(chat)
    assert "Cảm ơn bạn!" in await chat.say("👍")
    assert await count(services) == before + 1


async def test_a_button_of_an_old_step_asks_the_current_one(chat: Chat) -> None:
    await at_village(chat)
    await chat.say("na lang")
    assert "bạn muốn góp gì?" in await chat.press_unoffered("contrib:vil:1")
    assert "Bạn góp bao nhiêu?" in await chat.say("tiền")


# --- what a newcomer types, and small talk --------------------------------------------------


@pytest.mark.parametrize("typed", ["Xin chào", "chào", "alo", "hello", "👋"])
async def test_a_first_message_onboards_whatever_it_is(chat: Chat, typed: str) -> None:
    answer = await chat.say(typed)
    assert "Xin chào! Mình là Chung Sức" in answer
    assert chat.buttons == ["lang:vi", "lang:en"]


async def test_a_commune_typed_out_of_the_blue_is_taken(chat: Chat) -> None:
    assert "Đã lưu: bạn ở Xã Chợ Đồn" in await chat.say("cho don")


@pytest.mark.parametrize("typed", ["chào", "xin chào ạ", "cảm ơn", "cam on nhieu", "👍", "alo"])
async def test_small_talk_gets_a_short_friendly_answer(chat: Chat, typed: str) -> None:
    await onboard(chat)
    answer = await chat.say(typed)
    assert "chưa hiểu" not in answer
    assert "status:card" in chat.buttons


@pytest.mark.parametrize(
    ("typed", "reached"),
    [
        ("Đóng góp của tôi", "Bạn chưa đăng ký đóng góp nào."),
        ("dong gop cua toi", "Bạn chưa đăng ký đóng góp nào."),
        ("Bảng đóng góp", "Chỉ đóng góp đã được cán bộ xác nhận"),
        ("ai đã góp bao nhiêu", "Chỉ đóng góp đã được cán bộ xác nhận"),
        ("tiền góp đi đâu", "Chỉ đóng góp đã được cán bộ xác nhận"),
        ("thong bao", "Bạn đang nhận:"),
        ("english", "Switched to English."),
        ("tro giup", "Chung Sức"),
    ],
)
async def test_labels_and_questions_reach_their_feature(
    chat: Chat, services: Services, typed: str, reached: str
) -> None:
    await onboard(chat)
    before = await count(services)
    assert reached in await chat.say(typed)
    assert await count(services) == before
    assert chat.dispatcher.services is services
    assert (await services.users.load(chat.channel, chat.user_id, "vi")).state is None


async def test_resume_in_words(chat: Chat, services: Services) -> None:
    await onboard(chat)
    await chat.say("dừng")
    assert not await subscribed(services, chat)
    assert "Đã nhận lại thông báo" in await chat.say("nhận lại thông báo")
    assert await subscribed(services, chat)


# --- wards ----------------------------------------------------------------------------------


async def test_a_ward_gets_no_ntm_title(chat: Chat) -> None:
    await onboard(chat, "Phường Đức Xuân")
    card = await chat.say("xã tôi đạt bao nhiêu tiêu chí")
    assert "phường và đặc khu không xét danh hiệu nông thôn mới" in card
    assert "Chưa đạt chuẩn" not in card and "Danh hiệu" not in card


# --- typed by an attacker -------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["²", "፩", "9" * 4301, "٣"])
async def test_strange_digits_are_text_not_a_crash(chat: Chat, typed: str) -> None:
    await onboard(chat)
    answer = await chat.say(typed)
    assert "sự cố" not in answer  # not the apology: a normal answer


@pytest.mark.parametrize(
    "payload",
    ["contrib:withdraw:" + "9" * 25, "status:crit:²", "contrib:vil:-1", "lang:xx", "onb:pick:"],
)
async def test_forged_payloads_are_stale_not_a_crash(chat: Chat, payload: str) -> None:
    await onboard(chat)
    answer = await chat.send(Incoming(chat.channel, chat.user_id, button=payload))
    assert "sự cố" not in answer


# --- cancelling a pledge of one's own ---------------------------------------------------------


# "dung" alone may be "dừng" there too: asked again (test_villager_misfires.py).
@pytest.mark.parametrize("typed", ["Đúng", "dung roi", "ok"])
async def test_yes_typed_at_cancel_this_pledge_cancels_it_and_nothing_else(
    chat: Chat, services: Services, typed: str
) -> None:
    """ "Hủy đăng ký CS-…? 1. Đúng, hủy 2. Không": "dung" was read as the stop word and offered
    to unsubscribe, and the pledge stayed."""
    await onboard(chat)
    await pledge_money(chat)
    await chat.say("Đúng")
    await chat.say("/cuatoi")
    withdraw = next(b for b in chat.buttons if b.startswith("contrib:withdraw:"))
    assert "Hủy đăng ký" in await chat.press(withdraw)
    assert "Đã hủy CS-26-" in await chat.say(typed)
    [gift] = await services.contributions.of_user(chat.channel, chat.user_id)
    assert gift.status == "cancelled"
    assert await subscribed(services, chat)


@pytest.mark.parametrize("typed", ["khong", "không", "ko"])
async def test_no_typed_at_cancel_this_pledge_keeps_it(
    chat: Chat, services: Services, typed: str
) -> None:
    await onboard(chat)
    await pledge_money(chat)
    await chat.say("Đúng")
    await chat.say("/cuatoi")
    withdraw = next(b for b in chat.buttons if b.startswith("contrib:withdraw:"))
    await chat.press(withdraw)
    assert "đã đăng ký" in await chat.say(typed)
    [gift] = await services.contributions.of_user(chat.channel, chat.user_id)
    assert gift.status == "registered"
    assert "Đã hủy" not in await chat.say("dung")  # the question is over: "dung" cancels nothing
    [gift] = await services.contributions.of_user(chat.channel, chat.user_id)
    assert gift.status == "registered"
    assert await subscribed(services, chat)


@ASKING_NAME
@pytest.mark.parametrize("typed", ["khong", "không", "ko", "an danh"])
async def test_no_typed_at_the_name_step_keeps_the_pledge_anonymous(chat: Chat, typed: str) -> None:
    """ "khong" at "Bạn muốn hiện tên là gì?" was shown as the name "khong"."""
    await at_the_name_step(chat)
    answer = await chat.say(typed)
    assert "Công khai: ẩn danh" in answer and "Hiện tên" not in answer


@ASKING_NAME
@pytest.mark.parametrize("typed", ["ok", "👍", "1", "..."])
async def test_what_is_no_name_asks_for_the_name_again(chat: Chat, typed: str) -> None:
    await at_the_name_step(chat)
    answer = await chat.say(typed)
    assert "Bạn gõ tên muốn hiện" in answer and "Bạn muốn hiện tên là gì?" in answer


@pytest.mark.parametrize("typed", ["khong dung", "ko dung", "chua dung"])
async def test_not_right_typed_at_the_confirmation_redoes_and_records_nothing(
    chat: Chat, services: Services, typed: str
) -> None:
    await onboard(chat)
    before = await count(services)
    await pledge_money(chat)
    answer = await chat.say(typed)
    assert "chưa hiểu" not in answer and "Cảm ơn bạn!" not in answer
    assert await count(services) == before
    assert await subscribed(services, chat)
