"""Dân làm: transcripts of villagers pledging, officials confirming, and everyone's tallies."""

from __future__ import annotations

import asyncio
import re

import pytest
from sqlalchemy import func, select

from bot.app.services import Services
from bot.core.conversation import Incoming, Reply
from bot.core.dispatch import Dispatcher
from bot.storage.schema import audit_log, contributions, deliveries
from tests.conftest import Chat

OFFICIAL = "official-1"


async def count(services: Services, table: object = contributions) -> int:
    async with services.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def onboard(chat: Chat, commune: str = "cho don") -> None:
    await chat.say("/start")
    await chat.press("lang:vi")
    await chat.say(commune)


def draft_button(chat: Chat) -> str:
    return next(b for b in chat.buttons if b.startswith("contrib:ok:"))


async def pledge_money(chat: Chat, amount: str = "1,5 triệu") -> str:
    """The whole flow by buttons: campaign (the only one), village, kind, amount, when, name."""
    assert "bạn ở thôn, bản nào?" in await chat.say("/dongop")
    assert "bạn muốn góp gì?" in await chat.press("contrib:vil:0")
    assert "Bạn góp bao nhiêu?" in await chat.press("contrib:kind:money")
    assert "Khi nào bạn góp?" in await chat.say(amount)
    assert "Bạn có muốn hiện tên không?" in await chat.press("contrib:when:now")
    return await chat.press("contrib:public:no")


@pytest.fixture
def sent(services: Services) -> dict[str, list[str]]:
    """What the notifier delivered, per channel:user."""
    delivered: dict[str, list[str]] = {}
    for channel in ("terminal", "telegram", "zalo"):

        async def sender(user_id: str, replies: list[Reply], channel: str = channel) -> None:
            delivered.setdefault(f"{channel}:{user_id}", []).extend(r.text for r in replies)

        services.notifier.register(channel, sender)
    return delivered


@pytest.fixture
async def official(services: Services, dispatcher: Dispatcher) -> Chat:
    await services.officials.grant(f"telegram:{OFFICIAL}", "commune_official", "02020", "test")
    return Chat(dispatcher, channel="telegram", user_id=OFFICIAL)


# --- villagers ------------------------------------------------------------------------------


async def test_pledge_by_buttons_spells_the_amount_and_gives_a_receipt(
    chat: Chat, services: Services
) -> None:
    await onboard(chat)
    before = await count(services)
    confirm = await pledge_money(chat)
    assert "Bạn đăng ký góp 1.500.000 đồng cho “Bê tông hóa đường thôn Nà Làng (mẫu)”." in confirm
    assert "Thôn: Nà Làng" in confirm and "Công khai: ẩn danh" in confirm
    assert confirm.endswith("Đúng không?")
    assert await count(services) == before  # nothing is stored before the villager confirms
    receipt = await chat.press(draft_button(chat))
    assert "Cảm ơn bạn! Đã ghi nhận đăng ký." in receipt
    assert re.search(r"Mã biên nhận: CS-26-\d{5}", receipt)
    assert await count(services) == before + 1


async def test_a_sentence_can_carry_the_whole_pledge(chat: Chat, services: Services) -> None:
    await onboard(chat)
    assert "bạn ở thôn, bản nào?" in await chat.say(
        "tôi muốn góp 3 ngày công làm đường vào tuần sau"
    )
    assert "Bạn có muốn hiện tên không?" in await chat.press("contrib:vil:1")
    confirm = await chat.press("contrib:public:yes")
    if "Bạn muốn hiện tên là gì?" in confirm:  # the terminal knows no name
        confirm = await chat.say("Bà Hoàng Thị Lan")
    assert "Bạn đăng ký góp 3 ngày công" in confirm
    assert "Hẹn ngày: 30/11/2026" in confirm
    assert "Thôn: Bản Cuôn" in confirm and "Hiện tên:" in confirm
    await chat.press(draft_button(chat))
    [mine] = await services.contributions.of_user(chat.channel, chat.user_id)
    assert (mine.kind, mine.amount, mine.village, mine.show_name) == (
        "workdays",
        6,
        "Bản Cuôn",
        True,
    )
    assert mine.due_on is not None and mine.due_on.isoformat() == "2026-11-30"


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("0", "Số lượng phải lớn hơn 0."),
        ("-5 triệu", "Số lượng không thể là số âm."),
        ("nhiều lắm", "Mình chưa hiểu số lượng này."),
        ("3 ngày hoặc 2 triệu", "Mỗi lần bạn chỉ đăng ký một thứ"),
        ("20 tỷ", "là quá nhiều cho một lần đăng ký"),
        # 30 digits of millions: formatting it raised out of Babel (an apology)
        ("999999999999999999999999 triệu", "là quá nhiều cho một lần đăng ký"),
        ("200 m2", "Số này không đúng loại bạn đã chọn (Tiền)."),
    ],
)
async def test_bad_amounts_get_a_clear_message_with_an_example(
    chat: Chat, services: Services, typed: str, expected: str
) -> None:
    await onboard(chat)
    await chat.say("/dongop")
    await chat.press("contrib:vil:0")
    await chat.press("contrib:kind:money")
    answer = await chat.say(typed)
    assert expected in answer
    if "quá nhiều" not in answer:
        assert "Ví dụ: 500k, 2 triệu" in answer
    assert "Khi nào bạn góp?" in await chat.say("2tr5")  # the step goes on with a good one


async def test_materials_need_saying_what(chat: Chat, services: Services) -> None:
    await onboard(chat)
    await chat.say("/dongop")
    await chat.press("contrib:vil:0")
    await chat.press("contrib:kind:materials")
    assert "Bạn góp vật liệu gì? Ví dụ: 5 bao xi măng" in await chat.say("1")
    assert "Khi nào bạn góp?" in await chat.say("5 bao xi măng")
    await chat.press("contrib:when:now")
    assert "Bạn đăng ký góp 5 bao xi măng cho" in await chat.press("contrib:public:no")


async def test_a_workday_pledge_over_the_limit_is_refused(chat: Chat) -> None:
    await onboard(chat)
    await chat.say("/dongop")
    await chat.press("contrib:vil:0")
    await chat.press("contrib:kind:workdays")
    assert "366 ngày công là quá nhiều" in await chat.say("366 ngày công")


async def test_an_abandoned_flow_leaves_nothing_behind(chat: Chat, services: Services) -> None:
    await onboard(chat)
    before = await count(services)
    await pledge_money(chat)
    assert "Đã hủy" in await chat.say("/huy")
    assert await count(services) == before
    assert "Tiến độ" in await chat.say("/trogiup")


async def test_a_replayed_confirmation_records_once(chat: Chat, services: Services) -> None:
    await onboard(chat)
    await pledge_money(chat)
    button = draft_button(chat)
    before = await count(services)
    replay = Incoming(chat.channel, chat.user_id, button=button)
    first, second = await chat.send(replay), await chat.send(replay)
    assert "Đã ghi nhận đăng ký" in first
    assert "Đã ghi nhận trước đó." in second
    assert first.split("Mã biên nhận: ")[1][:11] == second.split("Mã biên nhận: ")[1][:11]
    assert await count(services) == before + 1


async def test_my_contributions_and_cancelling_one(chat: Chat, services: Services) -> None:
    await onboard(chat)
    assert "Bạn chưa đăng ký đóng góp nào." in await chat.say("/cuatoi")
    await pledge_money(chat)
    await chat.press(draft_button(chat))
    listing = await chat.press("contrib:mine")
    assert "1.500.000 đồng — đã đăng ký" in listing
    withdraw = next(b for b in chat.buttons if b.startswith("contrib:withdraw:"))
    assert "Hủy đăng ký" in await chat.press(withdraw)
    assert "Đã hủy CS-26-" in await chat.press(withdraw.replace("withdraw", "withdrawn"))
    assert "— đã hủy" in await chat.say("/cuatoi")


async def test_huy_typed_under_my_contributions_asks_which_and_says_nothing_false(
    chat: Chat, services: Services
) -> None:
    # Under "Đóng góp của tôi" a villager types "huy" (nothing is in progress): the bot offers
    # the pledges' own cancel buttons, never "Đã hủy" for a pledge that stays registered.
    await onboard(chat)
    await pledge_money(chat)
    await chat.press(draft_button(chat))
    await chat.say("/cuatoi")
    asked = await chat.say("huy")
    assert "Bạn muốn hủy đóng góp nào?" in asked and "Đã hủy" not in asked
    [offered] = chat.buttons
    assert offered.startswith("contrib:withdraw:")
    answer = await chat.press(offered)  # it asks before cancelling
    assert "Hủy đăng ký" in answer and "Đã hủy" not in answer
    [gift] = await services.contributions.of_user(chat.channel, chat.user_id)
    assert gift.status == "registered"
    # With nothing to cancel at all, it says so.
    await chat.say("/trogiup")
    said = await chat.say("huy")
    if "Bạn muốn hủy" in said:  # asked first, as bare "huy" may be a name
        said = await chat.press("menu:go")
    assert "Không có việc gì đang làm dở" in said
    assert (await services.contributions.get(gift.id)).status == "registered"  # type: ignore[union-attr]


async def test_nobody_cancels_someone_elses_contribution(
    dispatcher: Dispatcher, services: Services
) -> None:
    alice, bob = Chat(dispatcher, "telegram", "alice"), Chat(dispatcher, "telegram", "bob")
    await onboard(alice)
    await pledge_money(alice)
    await alice.press(draft_button(alice))
    [gift] = await services.contributions.of_user("telegram", "alice")
    await onboard(bob)
    assert "chưa hiểu" in await bob.press_unoffered(f"contrib:withdrawn:{gift.id}")
    assert (await services.contributions.get(gift.id)).status == "registered"  # type: ignore[union-attr]


async def test_no_open_campaign_says_so(chat: Chat) -> None:
    await onboard(chat, "Ba Bể")
    assert "chưa có cuộc vận động nào đang nhận đóng góp" in await chat.say("/dongop")


# --- officials ------------------------------------------------------------------------------


async def registered(chat: Chat, services: Services) -> int:
    await onboard(chat)
    await pledge_money(chat)
    await chat.press(draft_button(chat))
    return (await services.contributions.of_user(chat.channel, chat.user_id))[0].id


async def test_an_official_confirms_and_the_villager_is_told(
    chat: Chat, official: Chat, services: Services, sent: dict[str, list[str]]
) -> None:
    gift = await registered(chat, services)
    listing = await official.say("/duyet")
    assert "Đóng góp đang chờ duyệt:" in listing and "Một hộ dân: 1.500.000 đồng" in listing
    assert "Đã xác nhận CS-26-" in await official.press(f"review:ok:{gift}")
    [notice] = sent[f"{chat.channel}:{chat.user_id}"]
    assert "đã được cán bộ xã xác nhận" in notice and "1.500.000 đồng" in notice
    assert "Đã ghi hoàn thành" in await official.press(f"review:done:{gift}")
    assert "đã được ghi nhận là hoàn thành" in sent[f"{chat.channel}:{chat.user_id}"][1]
    async with services.db.read() as conn:
        actions = (await conn.execute(select(audit_log.c.action, audit_log.c.actor))).all()
    assert ("contribution.confirmed", f"telegram:{OFFICIAL}") in actions
    assert ("contribution.done", f"telegram:{OFFICIAL}") in actions


async def test_a_rejection_carries_the_reason_to_the_villager_in_their_language(
    chat: Chat, official: Chat, services: Services, sent: dict[str, list[str]]
) -> None:
    gift = await registered(chat, services)
    await chat.say("/language")
    await chat.press("lang:en")
    assert "Lý do từ chối" in await official.press(f"review:no:{gift}")
    assert "người góp đã được báo lý do" in await official.say("Trùng với đăng ký hôm qua")
    [notice] = sent[f"{chat.channel}:{chat.user_id}"]
    assert notice.startswith("Your contribution CS-26-")
    assert "Reason: Trùng với đăng ký hôm qua" in notice
    assert "— lý do: Trùng" not in await chat.say("/mine")  # English now
    assert "rejected — reason: Trùng với đăng ký hôm qua" in await chat.say("/mine")


async def test_other_communes_officials_and_villagers_cannot_review(
    chat: Chat, dispatcher: Dispatcher, services: Services
) -> None:
    gift = await registered(chat, services)
    await services.officials.grant("telegram:other", "commune_official", "02155", "test")
    other = Chat(dispatcher, "telegram", "other")
    assert "Xã Chợ Đồn" not in await other.say("/duyet")  # only Na Rì's
    assert "chỉ cán bộ xã phụ trách" in await other.press_unoffered(f"review:ok:{gift}")
    villager = Chat(dispatcher, "telegram", "nobody")
    assert "chỉ cán bộ xã phụ trách" in await villager.say("/duyet")
    assert "chỉ cán bộ xã phụ trách" in await villager.press_unoffered(f"review:ok:{gift}")
    assert (await services.contributions.get(gift)).status == "registered"  # type: ignore[union-attr]


async def test_a_province_official_may_review_any_commune(
    chat: Chat, dispatcher: Dispatcher, services: Services
) -> None:
    gift = await registered(chat, services)
    await services.officials.grant("telegram:tinh", "province_official", "19", "test")
    province = Chat(dispatcher, "telegram", "tinh")
    assert "Đã xác nhận" in await province.press_unoffered(f"review:ok:{gift}")


async def test_two_officials_confirming_at_once_end_in_one_confirmation(
    chat: Chat, official: Chat, dispatcher: Dispatcher, services: Services
) -> None:
    gift = await registered(chat, services)
    await services.officials.grant("telegram:second", "commune_official", "02020", "test")
    second = Chat(dispatcher, "telegram", "second")
    answers = await asyncio.gather(
        official.press_unoffered(f"review:ok:{gift}"), second.press_unoffered(f"review:ok:{gift}")
    )
    assert sorted("Đã xác nhận" in a for a in answers) == [False, True]
    assert any("đã được xử lý rồi" in a for a in answers)
    async with services.db.read() as conn:
        confirmations = (
            await conn.execute(
                select(func.count()).where(
                    audit_log.c.action == "contribution.confirmed",
                    audit_log.c.entity_id == str(gift),
                )
            )
        ).scalar_one()
    assert confirmations == 1


async def test_a_notice_waits_when_its_channel_is_not_running_here(
    chat: Chat, official: Chat, services: Services
) -> None:
    gift = await registered(chat, services)
    await official.say("/duyet")
    await official.press(f"review:ok:{gift}")
    async with services.db.read() as conn:
        pending = (
            (
                await conn.execute(
                    select(deliveries.c.user_id).where(
                        deliveries.c.broadcast_id.is_(None), deliveries.c.state == "pending"
                    )
                )
            )
            .scalars()
            .all()
        )
    assert pending == [chat.user_id]
    delivered: list[str] = []

    async def sender(user_id: str, replies: list[Reply]) -> None:
        delivered.extend(r.text for r in replies)

    services.notifier.register(chat.channel, sender)
    assert await services.notifier.flush() == 1
    assert await services.notifier.flush() == 0
    assert "đã được cán bộ xã xác nhận" in delivered[0]


# --- everyone: tallies ----------------------------------------------------------------------


async def test_tallies_count_only_confirmed_and_show_pending_apart(
    chat: Chat, official: Chat, services: Services
) -> None:
    await onboard(chat)
    board = await chat.say("/bangdonggop")
    assert "Bê tông hóa đường thôn Nà Làng (mẫu)" in board
    assert "Dữ liệu mẫu" in board
    assert "Đã xác nhận (5 hộ):" in board
    assert "• 2,5 triệu đồng / 200 triệu đồng (1%)" in board
    assert "• 3 ngày công / 500 ngày công (1%)" in board
    assert "• 5 bao xi măng" in board
    assert "Thôn Nà Làng: 2,5 triệu đồng, 3 ngày công" in board
    await pledge_money(chat, "2 triệu")
    await chat.press(draft_button(chat))
    board = await chat.say("/bangdonggop")
    assert "Đang chờ xác nhận: 1 đăng ký (2 triệu đồng)." in board
    assert "• 2,5 triệu đồng / 200 triệu đồng" in board
    [gift] = await services.contributions.of_user(chat.channel, chat.user_id)
    await official.press_unoffered(f"review:ok:{gift.id}")
    board = await chat.say("/bangdonggop")
    assert "Đã xác nhận (6 hộ):" in board and "• 4,5 triệu đồng / 200 triệu đồng" in board
    assert "Đang chờ xác nhận" not in board
    assert (
        "Nhân dân đã góp (đã xác nhận): 3 ngày công, 4,5 triệu đồng, 120 m² đất, "
        "5 bao xi măng — 6 hộ." in (await chat.say("/tiendo"))
    )


async def test_tallies_in_english(chat: Chat) -> None:
    await onboard(chat)
    await chat.say("/language")
    await chat.press("lang:en")
    board = await chat.say("/tally")
    assert "Confirmed (5 households):" in board
    assert "• 2.5 million đồng / 200 million đồng (1%)" in board


async def test_a_restart_mid_pledge_resumes_the_draft(
    services: Services, dispatcher: Dispatcher
) -> None:
    chat = Chat(dispatcher, "telegram", "r1")
    await onboard(chat)
    await chat.say("/dongop")
    await chat.press("contrib:vil:1")
    await chat.press("contrib:kind:money")
    services.users.forget()  # a new process: only the database remembers
    assert "Khi nào bạn góp?" in await chat.say("300k")
    await chat.press("contrib:when:now")
    assert "Thôn: Bản Cuôn" in await chat.press("contrib:public:no")


async def test_the_audit_log_keeps_the_status_a_contribution_really_had(
    dispatcher: Dispatcher, official: Chat, services: Services
) -> None:
    """Done after a confirmation and done straight away: "before" is the real prior status."""
    villager = Chat(dispatcher, "telegram", "audit-1")
    await onboard(villager)
    gifts = []
    for amount in ("1,5 triệu", "200 nghìn"):
        await pledge_money(villager, amount)
        await villager.press(draft_button(villager))
        gifts.append((await services.contributions.of_user("telegram", "audit-1"))[0].id)
    confirmed_first, straight_away = gifts

    assert "Đã xác nhận" in await official.press_unoffered(f"review:ok:{confirmed_first}")
    assert "Đã ghi hoàn thành" in await official.press_unoffered(f"review:done:{confirmed_first}")
    assert "Đã ghi hoàn thành" in await official.press_unoffered(f"review:done:{straight_away}")

    async with services.db.read() as conn:
        rows = await conn.execute(
            select(audit_log.c.entity_id, audit_log.c.action, audit_log.c.before)
            .where(audit_log.c.entity == "contribution")
            .order_by(audit_log.c.id)
        )
        logged = [tuple(r) for r in rows if int(r.entity_id) in gifts]
    assert logged == [
        (str(confirmed_first), "contribution.confirmed", {"status": "registered"}),
        (str(confirmed_first), "contribution.done", {"status": "confirmed"}),
        (str(straight_away), "contribution.done", {"status": "registered"}),
    ]


@pytest.mark.parametrize("typed", ["2", "nam tram", "²"])
async def test_a_bare_small_number_of_money_is_asked_back_not_taken_as_dong(
    chat: Chat, services: Services, typed: str
) -> None:
    """ "2" at "Bạn góp bao nhiêu?" was recorded as 2 đồng; villagers mean 2 triệu."""
    await onboard(chat)
    await chat.say("/dongop")
    await chat.press("contrib:vil:0")
    await chat.press("contrib:kind:money")
    answer = await chat.say(typed)
    assert "Bạn gõ kèm đơn vị nhé" in answer and "Khi nào bạn góp?" not in answer
    assert "Khi nào bạn góp?" in await chat.say(f"{typed} triệu".replace("²", "2"))


async def test_a_small_sum_said_in_dong_is_taken(chat: Chat) -> None:
    await onboard(chat)
    await chat.say("/dongop")
    await chat.press("contrib:vil:0")
    await chat.press("contrib:kind:money")
    assert "Khi nào bạn góp?" in await chat.say("500 đồng")


@pytest.mark.parametrize("typed", ["500.000", "1,000,000", "2000000"])
async def test_a_sum_typed_at_what_to_give_is_money(chat: Chat, typed: str) -> None:
    await onboard(chat)
    await chat.say("/dongop")
    await chat.press("contrib:vil:0")
    answer = await chat.say(typed)
    assert "Khi nào bạn góp?" in answer, answer


@pytest.mark.parametrize(
    ("typed", "asked"),
    [
        ("toi muon gop tien lam duong", "Bạn góp bao nhiêu?"),
        ("ung ho ngay cong", "Bạn góp bao nhiêu?"),
        ("gop vat lieu", "Bạn góp bao nhiêu?"),
        ("toi muon dong gop", "bạn muốn góp gì?"),  # no kind said: asked
    ],
)
async def test_the_kind_said_in_the_first_sentence_is_not_asked_again(
    chat: Chat, typed: str, asked: str
) -> None:
    await onboard(chat)
    await chat.say(typed)
    assert asked in await chat.press("contrib:vil:0")


async def test_pending_materials_keep_their_unit_on_the_board(chat: Chat) -> None:
    """ "Đang chờ xác nhận: 1 đăng ký (5)": the cement's unit was dropped."""
    await onboard(chat)
    await chat.say("/dongop")
    await chat.press("contrib:vil:0")
    await chat.press("contrib:kind:materials")
    await chat.say("5 bao xi mang")
    await chat.press("contrib:when:now")
    await chat.press("contrib:public:no")
    assert "Cảm ơn bạn!" in await chat.say("đúng")
    assert "Đang chờ xác nhận: 1 đăng ký (5 bao xi mang)." in await chat.say("/bangdonggop")


async def test_the_same_pledge_again_says_so_before_it_is_recorded_twice(
    chat: Chat, services: Services
) -> None:
    """Nine identical "1 trieu / mai" pledges were taken in a row without a word."""
    await onboard(chat)
    assert "Lưu ý" not in await pledge_money(chat)
    assert "Cảm ơn bạn!" in await chat.say("đúng")
    [first] = await services.contributions.of_user(chat.channel, chat.user_id)
    again = await pledge_money(chat)
    assert f"Lưu ý: bạn đã đăng ký đúng như vậy ({first.ref})" in again
    assert "Lưu ý" not in await pledge_money(chat, "2 triệu")  # another amount: no note
    assert len(await services.contributions.of_user(chat.channel, chat.user_id)) == 1
