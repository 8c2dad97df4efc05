"""Dân bàn: transcripts of officials creating polls and villagers voting, and the results."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.app.services import Services
from bot.core.dispatch import Dispatcher
from bot.domain.clock import FixedClock
from bot.storage.polls import Group, merge_small
from bot.storage.schema import audit_log, poll_votes, polls
from tests.conftest import NOW, Chat

OFFICIAL = "official-1"
OPTIONS = ["Làm đường Nà Làng trước", "Sửa kênh mương Bản Cuôn"]
REFUSAL = "Việc này chỉ cán bộ xã phụ trách mới làm được."


async def count(services: Services, table: object) -> int:
    async with services.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def onboard(chat: Chat, commune: str = "cho don") -> None:
    await chat.say("/start")
    await chat.press("lang:vi")
    await chat.say(commune)


@pytest.fixture(params=["telegram", "terminal"])
async def official(
    services: Services, dispatcher: Dispatcher, request: pytest.FixtureRequest
) -> Chat:
    channel = request.param
    await services.officials.grant(f"{channel}:{OFFICIAL}", "commune_official", "02020", "test")
    chat = Chat(dispatcher, channel=channel, user_id=OFFICIAL)
    await onboard(chat)
    return chat


async def create(
    official: Chat, results: str = "after_vote", scope: int = 0, closes: str = "18:00 5/12"
) -> int:
    """The whole flow: question, options on one message, scope, closing time, results, yes."""
    assert "Câu hỏi cần lấy ý kiến?" in await official.say("/taobinhchon")
    assert "mỗi dòng một lựa chọn" in await official.say("Làm việc nào trước?")
    listed = await official.say("\n".join(f"{i}. {o}" for i, o in enumerate(OPTIONS, 1)))
    assert "1. Làm đường Nà Làng trước\n2. Sửa kênh mương Bản Cuôn" in listed
    assert "Hỏi ý kiến ai?" in await official.press("poll:opts")
    assert "Đóng bình chọn lúc nào?" in await official.press(f"poll:scope:{scope}")
    assert "Khi nào bà con xem được kết quả?" in await official.say(closes)
    preview = await official.press(f"poll:res:{results}")
    assert "Xem trước — bà con sẽ thấy:" in preview
    done = await official.press("poll:ok")
    assert "Đã mở bình chọn số" in done
    async with official.dispatcher.services.db.read() as conn:
        return int((await conn.execute(select(func.max(polls.c.id)))).scalar_one())


# --- officials ------------------------------------------------------------------------------


async def test_an_official_creates_a_poll_with_a_preview_then_confirms(
    official: Chat, services: Services
) -> None:
    await official.say("/taobinhchon")
    await official.say("Làm việc nào trước?")
    assert "Cần ít nhất 2 lựa chọn" in await official.say(OPTIONS[0])  # one at a time
    assert "poll:opts" not in official.buttons
    assert "“làm đường nà làng trước” đã có rồi." in await official.say("làm đường nà làng trước")
    assert "bấm Xong" in await official.say(OPTIONS[1])
    await official.press("poll:opts")
    await official.press("poll:scope:0")
    assert "Thời gian này đã qua" in await official.say("6:00 29/11/2026")
    await official.say("18:00 5/12")
    preview = await official.press("poll:res:after_close")
    assert "🗳 Làm việc nào trước?\nDành cho: Xã Chợ Đồn\nHạn chót: 18:00 05/12/2026" in preview
    assert "Kết quả: công bố khi bình chọn đóng." in preview
    assert "1. Làm đường Nà Làng trước\n2. Sửa kênh mương Bản Cuôn" in preview
    assert await count(services, polls) == 0  # nothing stored before the confirmation
    assert "Đã mở bình chọn số 1." in await official.say("đúng")
    [poll] = await services.polls.for_person("02020", None)
    assert (poll.question, poll.options, poll.results) == (
        "Làm việc nào trước?",
        tuple(OPTIONS),
        "after_close",
    )
    assert poll.closes_at == NOW.replace(day=5, month=12, hour=18)
    async with services.db.read() as conn:
        actions = (await conn.execute(select(audit_log.c.action, audit_log.c.actor))).all()
    assert ("poll.create", f"{official.channel}:{OFFICIAL}") in actions


async def test_a_villager_typing_the_official_command_is_refused(
    chat: Chat, services: Services
) -> None:
    await onboard(chat)
    assert await chat.say("/taobinhchon") == REFUSAL
    assert await chat.press_unoffered("poll:ok") == REFUSAL
    assert await count(services, polls) == 0


# --- villagers ------------------------------------------------------------------------------


async def test_villagers_list_and_vote_by_button_or_number(
    official: Chat, chat: Chat, services: Services
) -> None:
    poll = await create(official)
    await onboard(chat)
    shown = await chat.say("/binhchon")
    assert "🗳 Làm việc nào trước?" in shown and "Hạn chót: 18:00 05/12/2026" in shown
    recorded = await chat.press(f"poll:vote:{poll}:1")  # by its number on terminal and Zalo
    assert "Đã ghi nhận ý kiến của bạn: Sửa kênh mương Bản Cuôn." in recorded
    assert "Kết quả (1 người bình chọn):" in recorded
    assert "• Sửa kênh mương Bản Cuôn: 1 (100%)" in recorded
    assert await count(services, poll_votes) == 1


@pytest.mark.parametrize("words", ["binh chon", "co binh chon nao khong", "bieu quyet"])
async def test_the_polls_are_reached_in_words_and_an_option_typed_without_marks(
    official: Chat, chat: Chat, services: Services, words: str
) -> None:
    poll = await create(official)
    await onboard(chat)
    assert "🗳 Làm việc nào trước?" in await chat.say(words)
    assert "Đã ghi nhận ý kiến của bạn: Làm đường Nà Làng trước." in await chat.say(
        "lam duong na lang truoc"
    )
    choice = await services.polls.choice_of(
        await services.polls.get(poll),  # type: ignore[arg-type]
        chat.channel,
        chat.user_id,
    )
    assert choice == 0


async def test_a_vote_is_changed_and_a_replayed_press_records_once(
    official: Chat, chat: Chat, services: Services
) -> None:
    poll = await create(official)
    await onboard(chat)
    await chat.say("/binhchon")
    await chat.press(f"poll:vote:{poll}:0")
    changed = await chat.press(f"poll:vote:{poll}:1")
    assert "Đã đổi ý kiến của bạn thành: Sửa kênh mương Bản Cuôn." in changed
    replay = await chat.press_unoffered(f"poll:vote:{poll}:1")  # the messenger sends it again
    assert "Bạn đã chọn Sửa kênh mương Bản Cuôn rồi" in replay
    assert await count(services, poll_votes) == 1
    assert "• Sửa kênh mương Bản Cuôn: 1 (100%)" in replay


async def test_people_outside_the_scope_are_refused(
    official: Chat, dispatcher: Dispatcher, services: Services
) -> None:
    commune_poll = await create(official)
    elsewhere = Chat(dispatcher, "telegram", "na-ri")
    await onboard(elsewhere, "na ri")
    assert "chưa có bình chọn nào" in await elsewhere.say("/binhchon")
    refused = await elsewhere.press_unoffered(f"poll:vote:{commune_poll}:0")
    assert "Bình chọn này chỉ dành cho người dân Xã Chợ Đồn." in refused
    village_poll = await create(official, scope=2)  # Nà Làng (the villages are sorted)
    villager = Chat(dispatcher, "zalo", "no-village")
    await onboard(villager)
    refused = await villager.press_unoffered(f"poll:vote:{village_poll}:0")
    assert "chỉ dành cho người dân thôn Nà Làng, Xã Chợ Đồn." in refused
    assert await count(services, poll_votes) == 0


async def test_results_after_closing_only_and_a_closed_poll_refuses_kindly(
    official: Chat, chat: Chat, services: Services
) -> None:
    poll = await create(official, results="after_close")
    await onboard(chat)
    await chat.say("/binhchon")
    voted = await chat.press(f"poll:vote:{poll}:0")
    assert "Kết quả sẽ công bố khi bình chọn đóng lúc 18:00 05/12/2026." in voted
    assert "Kết quả (" not in voted
    services.clock = FixedClock(NOW + timedelta(days=7))
    shown = await chat.say("/binhchon")
    assert "Đã đóng lúc 18:00 05/12/2026." in shown
    assert "• Làm đường Nà Làng trước: 1 (100%)" in shown
    refused = await chat.press_unoffered(f"poll:vote:{poll}:1")
    assert "Bình chọn đã đóng, không nhận thêm ý kiến." in refused
    assert (
        await services.polls.choice_of(
            await services.polls.get(poll),  # type: ignore[arg-type]
            chat.channel,
            chat.user_id,
        )
        == 0
    )


async def test_results_by_village_merge_groups_under_five(
    official: Chat, services: Services
) -> None:
    poll_id = await create(official)
    poll = await services.polls.get(poll_id)
    assert poll is not None
    votes = [("Nà Làng", 0)] * 4 + [("Nà Làng", 1)] * 2 + [("Bản Cuôn", 1)] * 3 + [(None, 0)]
    votes += [("Pác Nặm", 0)] * 5
    for n, (village, option) in enumerate(votes):
        assert await services.polls.vote(poll, option, "zalo", f"v{n}", village) == "recorded"
    results = await services.polls.results(poll)
    assert results.counts == (10, 5)
    # Bản Cuôn (3) and the unknown one (1) are "khác" (4), still too few: Pác Nặm joins it.
    assert results.groups == (Group("Nà Làng", (4, 2)), Group(None, (6, 3)))


def test_merging_never_leaves_a_small_group_or_a_lone_one() -> None:
    assert merge_small({"A": [3, 3], "B": [1, 0]}) == []  # B into khác, and khác then joins A
    assert merge_small({"A": [5, 0], "B": [0, 5]}) == [Group("A", (5, 0)), Group("B", (0, 5))]
    assert merge_small({"A": [2, 2], "B": [1, 1], None: [1, 0]}) == []
    groups = merge_small({"A": [5, 1], "B": [4, 4], "C": [1, 1], "D": [2, 3]})
    assert groups == [Group("A", (5, 1)), Group("B", (4, 4)), Group(None, (3, 4))]
    assert all(g.total >= 5 for g in groups)
