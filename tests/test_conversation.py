"""Transcripts of the foundation conversations, in Vietnamese and English, on every channel."""

from __future__ import annotations

import logging
import unicodedata
from datetime import date

import pytest
from sqlalchemy import text

from bot.app.services import Services
from bot.core.conversation import Incoming
from bot.core.dispatch import Dispatcher
from handlers import build_router
from tests.conftest import Chat

MAIN_MENU = [
    "status:card",
    "status:list",
    "contrib:start",
    "tally:list",
    "proj:list",
    "poll:list",
    "report:start",
    "faq:list",
    "onb:change",
    "lang:menu",
    "menu:help",
]


async def onboard(chat: Chat, commune: str = "cho don", language: str = "lang:vi") -> str:
    await chat.say("/start")
    await chat.press(language)
    return await chat.say(commune)


# --- onboarding -----------------------------------------------------------------------------


async def test_start_greets_in_vietnamese_and_offers_languages(chat: Chat) -> None:
    answer = await chat.say("/start")
    assert "Xin chào! Mình là Chung Sức" in answer
    assert "Tỉnh Thái Nguyên" in answer
    assert chat.buttons == ["lang:vi", "lang:en"]
    assert [chat.label("lang:vi"), chat.label("lang:en")] == ["Tiếng Việt", "English"]
    assert "Bạn sống ở xã, phường nào?" in await chat.press("lang:vi")


@pytest.mark.parametrize(
    "typed", ["cho don", "Chợ Đồn", "CHO DON", unicodedata.normalize("NFD", "Chợ Đồn"), "chodon"]
)
async def test_commune_typed_any_way_is_found_and_remembered(chat: Chat, typed: str) -> None:
    answer = await onboard(chat, typed)
    assert "Đã lưu: bạn ở Xã Chợ Đồn, Tỉnh Thái Nguyên." in answer
    assert chat.buttons[: len(MAIN_MENU)] == MAIN_MENU
    assert "Xã Chợ Đồn, Tỉnh Thái Nguyên" in await chat.say("/tiendo")


async def test_old_commune_name_explains_the_merger_in_one_line(chat: Chat) -> None:
    answer = await onboard(chat, "Bằng Lãng")
    assert "Xã Bằng Lãng cũ nay thuộc Xã Chợ Đồn." in answer
    assert "Đã lưu: bạn ở Xã Chợ Đồn" in answer


async def test_old_town_name(chat: Chat) -> None:
    assert "Thị trấn Bằng Lũng cũ nay thuộc Xã Chợ Đồn." in await onboard(chat, "Bằng Lũng")


async def test_old_district_offers_buttons_for_its_communes(chat: Chat) -> None:
    answer = await onboard(chat, "Ba Bể")
    assert "Đã lưu: bạn ở Xã Ba Bể" in answer
    assert "Huyện Ba Bể cũ nay gồm:" in answer
    assert "Nếu bạn ở xã khác trong số này, hãy chọn:" in answer
    cho_ra = next(b for b in chat.buttons if chat.label(b) == "Xã Chợ Rã")
    assert "Đã lưu: bạn ở Xã Chợ Rã" in await chat.press(cho_ra)


async def test_a_typo_still_finds_the_commune(chat: Chat) -> None:
    assert "Đã lưu: bạn ở Xã Chợ Đồn" in await onboard(chat, "cho dong")


async def test_unknown_commune_gets_the_closest_suggestions(chat: Chat) -> None:
    answer = await onboard(chat, "Chợ Đồnn xyz")
    assert "Mình chưa tìm thấy “Chợ Đồnn xyz” ở Tỉnh Thái Nguyên" in answer
    assert "onb:pick:02020" in chat.buttons
    assert "Đã lưu: bạn ở Xã Chợ Đồn" in await chat.press("onb:pick:02020")


async def test_nothing_like_any_commune_asks_again(chat: Chat) -> None:
    answer = await onboard(chat, "qqqqzzzz")
    assert "Bạn gõ lại tên xã" in answer
    assert "Đã lưu" in await chat.say("na ri")


async def test_typing_a_commune_instead_of_picking_a_language_keeps_vietnamese(chat: Chat) -> None:
    await chat.say("/start")
    assert "Đã lưu: bạn ở Xã Chợ Đồn" in await chat.say("cho don")


async def test_status_before_a_commune_asks_for_it_then_shows_the_card(chat: Chat) -> None:
    assert "Bạn sống ở xã, phường nào?" in await chat.say("xa toi dat bao nhieu tieu chi")
    answer = await chat.say("Chợ Đồn")
    assert "Đã lưu: bạn ở Xã Chợ Đồn" in answer
    assert "/10 tiêu chí" in answer


async def test_change_commune_any_time(chat: Chat) -> None:
    await onboard(chat)
    assert "Bạn sống ở xã, phường nào?" in await chat.say("/doixa")
    assert "Đã lưu: bạn ở Xã Na Rì" in await chat.say("Na Rì")


# --- status ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ask",
    [
        "/tiendo",
        "/status",
        "xa toi dat bao nhieu tieu chi",
        "tiến độ nông thôn mới",
        "Xã tôi đạt bao nhiêu tiêu chí?",
    ],
)
async def test_status_card_by_command_or_words(chat: Chat, ask: str) -> None:
    await onboard(chat)
    card = await chat.say(ask)
    assert "Xã Chợ Đồn, Tỉnh Thái Nguyên" in card
    assert "Dữ liệu mẫu — không phải số liệu chính thức." in card
    assert "Bộ tiêu chí quốc gia về xã nông thôn mới giai đoạn 2026–2030" in card
    assert "Quyết định 51/2025/QĐ-TTg ngày 29/12/2025" in card
    assert "Đạt 3/10 tiêu chí" in card
    assert "Danh hiệu: Chưa đạt chuẩn nông thôn mới" in card
    assert "Còn thiếu:" in card and "• 2. Hạ tầng kinh tế – xã hội" in card
    assert "Cập nhật ngày 31/10/2026, do Dữ liệu mẫu (Chung Sức) công bố." in card
    assert "So với tỉnh: bình quân" in card and "xã đứng thứ" in card
    assert "status:crit:2" in chat.buttons


async def test_status_card_by_menu_button(chat: Chat) -> None:
    await onboard(chat)
    assert "Đạt 3/10 tiêu chí" in await chat.press("status:card")


async def test_rank_and_average_are_the_provinces(chat: Chat, services: Services) -> None:
    await onboard(chat)
    card = await chat.say("/tiendo")
    rural = [code for code, c in services.reference.communes.items() if c.kind == "xa"]
    counts = await services.statuses.met_counts("2026-2030", rural)
    rank = 1 + sum(1 for n in counts.values() if n > counts["02020"])
    assert f"xã đứng thứ {rank}/77" in card  # the 77 xã; the 15 wards are not in the programme
    average = f"{sum(counts.values()) / len(counts):.1f}".replace(".", ",").removesuffix(",0")
    assert f"bình quân {average} tiêu chí/xã" in card


async def test_the_criteria_set_follows_the_date(chat: Chat, services: Services) -> None:
    await onboard(chat)
    services.clock.set(date(2025, 6, 1))
    card = await chat.say("/tiendo")
    assert "giai đoạn 2021–2025" in card
    assert "Quyết định 318/QĐ-TTg ngày 08/3/2022" in card
    assert "Chưa có số liệu về xã này" in card
    services.clock.set(date(2026, 2, 14))
    assert "2021–2025" in await chat.say("/tiendo")
    services.clock.set(date(2026, 2, 15))
    assert "2026–2030" in await chat.say("/tiendo")


# --- criteria -------------------------------------------------------------------------------


@pytest.mark.parametrize("ask", ["/tieuchi 2", "tieu chi giao thong", "tiêu chí số 2"])
async def test_one_criterion_by_command_or_words(chat: Chat, ask: str) -> None:
    await onboard(chat)
    answer = await chat.say(ask)
    assert "Tiêu chí 2: Hạ tầng kinh tế – xã hội" in answer
    assert "Xã Chợ Đồn: chưa đạt" in answer


async def test_one_criterion_by_button(chat: Chat) -> None:
    await onboard(chat)
    await chat.say("/tiendo")
    assert "Tiêu chí 2: Hạ tầng kinh tế – xã hội" in await chat.press("status:crit:2")


async def test_criterion_with_verified_indicators(chat: Chat, services: Services) -> None:
    await onboard(chat)
    services.clock.set(date(2024, 5, 1))
    answer = await chat.say("/tieuchi 3")
    assert "Tiêu chí 3: Thủy lợi và phòng, chống thiên tai" in answer
    assert "3.1" in answer and "≥ 80%" in answer
    assert "chưa có số liệu cho tiêu chí này" in answer


async def test_criteria_list_marks_the_commune(chat: Chat) -> None:
    await onboard(chat)
    answer = await chat.press("status:list")
    assert "10 tiêu chí, 47 chỉ tiêu." in answer
    assert answer.count("✅") == 3 and answer.count("❌") == 7
    assert [f"status:crit:{n}" for n in range(1, 11)] == chat.buttons


# --- questions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ask", "expected"),
    [
        ("NTM là gì?", "Nông thôn mới là gì?"),
        ("nong thon moi la gi", "Nông thôn mới là gì?"),
        ("nông thôn mới nâng cao là gì", "Nông thôn mới nâng cao là gì?"),
        ("OCOP là gì", "OCOP"),
    ],
)
async def test_faq_answers(chat: Chat, ask: str, expected: str) -> None:
    await onboard(chat)
    assert expected in await chat.say(ask)


async def test_faq_list_and_answer_by_button(chat: Chat) -> None:
    await onboard(chat)
    await chat.say("/hoidap")
    assert "faq:q:ocop" in chat.buttons
    assert "sản phẩm" in await chat.press("faq:q:ocop")


async def test_anything_not_understood_gets_a_friendly_answer_and_the_menu(chat: Chat) -> None:
    await onboard(chat)
    assert "mình chưa hiểu ý bạn" in await chat.say("con trâu ăn cỏ")
    assert chat.buttons == MAIN_MENU
    assert "mình chưa hiểu ý bạn" in await chat.say("/lenhkhongco")


# --- language, help, cancel -----------------------------------------------------------------


async def test_whole_conversation_in_english(chat: Chat) -> None:
    answer = await onboard(chat, "Bằng Lãng", language="lang:en")
    assert "The former Xã Bằng Lãng is now part of Xã Chợ Đồn." in answer
    assert "Saved: you live in Xã Chợ Đồn, Tỉnh Thái Nguyên." in answer
    card = await chat.say("how many criteria has my commune met?")
    assert "Sample data — not official figures." in card
    assert "3 of 10 criteria met" in card
    assert "Title: Not yet a new-rural commune" in card
    assert "Updated on Oct 31, 2026" in card
    assert "Prime Minister's Decision 51/2025/QĐ-TTg" in card
    assert "Economic and social infrastructure" in await chat.say("/criterion 2")
    assert "What is New Rural Development?" in await chat.say("what is ntm")
    assert "Sorry, I did not understand." in await chat.say("blue cheese")


async def test_language_switch_any_time(chat: Chat) -> None:
    await onboard(chat)
    await chat.say("/ngonngu")
    assert "Switched to English." in await chat.press("lang:en")
    assert "criteria met" in await chat.say("/status")
    await chat.say("/language")
    assert "Đã chuyển sang tiếng Việt." in await chat.press("lang:vi")


async def test_cancel_leaves_any_step(chat: Chat) -> None:
    await onboard(chat)
    await chat.say("/doixa")
    assert "Đã hủy" in await chat.say("/huy")
    # Out of the commune step, a commune name is no longer taken as an answer.
    assert "Đã lưu" not in await chat.say("Na Rì")
    await chat.say("/doixa")
    assert "Đã hủy" in await chat.say("huỷ")
    assert "Cancelled" not in await chat.say("/cancel")


async def test_help_lists_what_the_bot_does(chat: Chat) -> None:
    answer = await chat.say("/trogiup")
    for command in ("/tiendo", "/tieuchi 2", "/hoidap", "/doixa", "/ngonngu", "/huy"):
        assert command in answer
    await chat.say("/language")
    await chat.press("lang:en")
    assert "/status" in await chat.say("/help")


# --- bad input ------------------------------------------------------------------------------


async def test_a_very_long_message_is_refused_politely(chat: Chat) -> None:
    await onboard(chat)
    answer = await chat.say("tiến độ " * 1250)
    assert "Tin nhắn dài quá, mình chỉ đọc được tối đa 1.000 ký tự." in answer
    assert chat.buttons == MAIN_MENU


@pytest.mark.parametrize("kind", ["sticker", "photo", "voice"])
async def test_stickers_photos_voice_get_text_please(chat: Chat, kind: str) -> None:
    answer = await chat.send(Incoming(chat.channel, chat.user_id, unsupported=kind))
    assert "Mình chỉ hiểu tin nhắn chữ và các nút bấm." in answer
    assert chat.buttons == MAIN_MENU


@pytest.mark.parametrize(
    "payload",
    [
        "status:crit:99",
        "status:crit:abc",
        "onb:pick:99999",
        "lang:fr",
        "faq:q:nope",
        "nonsense:1",
        "",
    ],
)
async def test_forged_or_stale_buttons_are_ignored_with_a_log_line(
    chat: Chat, payload: str, caplog: pytest.LogCaptureFixture
) -> None:
    await onboard(chat)
    with caplog.at_level(logging.WARNING):
        answer = await chat.press_unoffered(payload)
    assert "mình chưa hiểu ý bạn" in answer
    assert chat.buttons == MAIN_MENU
    assert any("ignored" in r.getMessage() and "button" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "typed",
    [
        unicodedata.normalize("NFD", "tiến độ"),
        "tiến độ 👍🏽",
        "tiến\u200b độ",
        "'; DROP TABLE users; --",
        "<b>tiến độ</b>",
    ],
)
async def test_odd_text_is_handled_like_any_text(
    chat: Chat, services: Services, typed: str
) -> None:
    await onboard(chat)
    answer = await chat.say(typed)
    assert "Đạt 3/10 tiêu chí" in answer or "chưa hiểu" in answer
    async with services.db.read() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM users"))).scalar_one() == 1


async def test_a_database_error_gets_an_apology_in_the_users_language(
    chat: Chat, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    await onboard(chat, language="lang:en")
    async with services.db.write() as conn:
        await conn.execute(text("ALTER TABLE status_records RENAME TO status_records_gone"))
    services.statuses.invalidate()
    with caplog.at_level(logging.ERROR):
        answer = await chat.say("/status")
    assert answer == "Sorry, something went wrong on our side. Please try again in a few minutes."
    assert "Traceback" not in answer
    assert any("failed" in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)


async def test_a_database_error_before_the_user_is_known_apologises_in_vietnamese(
    chat: Chat, services: Services
) -> None:
    async with services.db.write() as conn:
        await conn.execute(text("ALTER TABLE users RENAME TO users_gone"))
    answer = await chat.say("/start")
    assert answer.startswith("Xin lỗi, hệ thống đang gặp sự cố.")


# --- state survives a restart ---------------------------------------------------------------


async def test_a_restart_mid_conversation_resumes_it(services: Services, settings: object) -> None:
    first = Chat(Dispatcher(services, *build_router()), channel="telegram")
    await first.say("/start")
    await first.press("lang:en")  # now in the commune step
    services.users.forget()  # a new process starts with an empty cache
    second = Chat(Dispatcher(services, *build_router()), channel="telegram")
    assert "Saved: you live in Xã Chợ Đồn" in await second.say("cho don")


async def test_users_are_separate_per_channel_and_id(dispatcher: Dispatcher) -> None:
    alice = Chat(dispatcher, channel="telegram", user_id="1")
    bob = Chat(dispatcher, channel="terminal", user_id="1")
    await onboard(alice, "Na Rì")
    await onboard(bob, "Chợ Đồn")
    assert "Xã Na Rì" in await alice.say("/tiendo")
    assert "Xã Chợ Đồn" in await bob.say("/tiendo")


# --- numbered menus on channels without buttons ---------------------------------------------


async def test_a_typed_number_picks_the_button_offered_even_after_a_restart(
    services: Services,
) -> None:
    terminal = Chat(Dispatcher(services, *build_router()), channel="terminal")
    await terminal.say("/start")
    services.users.forget()  # the offered buttons are kept in the database, not in memory
    restarted = Chat(Dispatcher(services, *build_router()), channel="terminal")
    assert "Which commune or ward do you live in?" in await restarted.say("2")


async def test_numbers_out_of_range_or_on_button_channels_are_text(dispatcher: Dispatcher) -> None:
    terminal = Chat(dispatcher, channel="terminal")
    await onboard(terminal)
    assert "mình chưa hiểu ý bạn" in await terminal.say("99")
    telegram = Chat(dispatcher, channel="telegram", user_id="t9")
    await onboard(telegram)
    assert "mình chưa hiểu ý bạn" in await telegram.say("1")


async def test_start_again_welcomes_back_and_changes_nothing(chat: Chat) -> None:
    """Telegram sends /start when a person reopens the bot: it asked for the language and the
    commune all over again."""
    await chat.say("/start")
    await chat.press("lang:en")
    await chat.say("cho don")
    answer = await chat.say("/start")
    assert "Welcome back" in answer and "Chợ Đồn" in answer
    assert "lang:vi" not in chat.buttons and "onb:change" in chat.buttons
    assert "Chợ Đồn" in await chat.say("/tiendo")  # still the same commune, still English
    assert "criteria" in await chat.say("/tiendo")


@pytest.mark.parametrize("typed", ["xa toi dat bao nhieu tieu chi", "2 trieu", "cam on"])
async def test_what_is_no_commune_at_the_commune_step_asks_for_the_commune_first(
    chat: Chat, typed: str
) -> None:
    """A newcomer's question at "Bạn ở xã nào?" offered "Xã Trung Hội / Xã Yên Thịnh"; "2
    trieu" offered Phường Quan Triều."""
    await chat.say("/start")
    await chat.press("lang:vi")
    answer = await chat.say(typed)
    assert "cho mình biết xã của bạn trước" in answer
    assert "onb:pick" not in " ".join(chat.buttons)
    assert "Chợ Đồn" in await chat.say("cho don")


@pytest.mark.parametrize(
    "typed", ["lam sao doi xa", "doi xa la gi", "huy dang ky la gi", "lam sao huy dang ky"]
)
async def test_how_to_questions_are_answered_and_change_nothing(
    chat: Chat, services: Services, typed: str
) -> None:
    """ "lam sao doi xa" got "chưa hiểu"; "huy dang ky la gi" showed the pledges to cancel."""
    await onboard(chat)
    answer = await chat.say(typed)
    assert "/doixa" in answer and "/cuatoi" in answer
    profile = await services.users.load(chat.channel, chat.user_id, "vi")
    assert profile.commune_code is not None and profile.state is None
