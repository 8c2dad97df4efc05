"""Dân bàn: transcripts of officials creating polls and villagers voting, and the results."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from openpyxl import load_workbook
from sqlalchemy import Connection, func, insert, select, text
from typer.testing import CliRunner, Result

from bot.app.services import Services
from bot.core.dispatch import Dispatcher
from bot.delivery.digest import build_digests
from bot.delivery.outbox import due_broadcasts, get_broadcast, materialise, utcnow
from bot.delivery.scheduler import run_due
from bot.domain.clock import FixedClock
from bot.domain.paths import MIGRATIONS_DIR
from bot.interfaces.cli.main import app
from bot.storage.cache import LruCache
from bot.storage.db import Database
from bot.storage.polls import (
    TURNOUT_SECONDS,
    Group,
    NewPoll,
    Poll,
    PollStore,
    Question,
    merge_small,
)
from bot.storage.schema import (
    audit_log,
    broadcasts,
    campaigns,
    contributions,
    deliveries,
    poll_ballots,
    poll_choices,
    polls,
)
from bot.storage.subscriptions import SubscriptionStore
from tests.conftest import NOW, Chat
from tests.test_broadcast_sender import fake_api, sender_for

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
    assert "Thêm câu hỏi?" in await official.press("poll:opts")
    assert "Hỏi ý kiến ai?" in await official.press("poll:next")
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
    assert "Câu này: mỗi người chọn một ý." in await official.press("poll:opts")
    await official.say("khong")  # no more questions
    await official.press("poll:scope:0")
    assert "Thời gian này đã qua" in await official.say("6:00 29/11/2026")
    await official.say("18:00 5/12")
    preview = await official.press("poll:res:after_close")
    assert "🗳 Làm việc nào trước?\nDành cho: Xã Chợ Đồn\nHạn chót: 18:00 05/12/2026" in preview
    assert "Kết quả: công bố khi bình chọn đóng." in preview
    assert "1. Làm đường Nà Làng trước\n2. Sửa kênh mương Bản Cuôn" in preview
    assert await count(services, polls) == 0  # nothing stored before the confirmation
    assert "Đã mở bình chọn số 1." in await official.say("đúng")
    [(poll, mine)] = await services.polls.for_person("02020")
    assert mine is None
    assert (poll.question, poll.questions, poll.results) == (
        "Làm việc nào trước?",
        (Question("Làm việc nào trước?", "one", tuple(OPTIONS), poll.option_ids),),
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
    assert await count(services, poll_ballots) == 1


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
    assert choice == ((0,),)


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
    assert await count(services, poll_ballots) == 1
    assert "• Sửa kênh mương Bản Cuôn: 1 (100%)" in replay
    listed = await chat.say("binh chon")  # the list says what they chose, and the results
    assert "Bạn đã chọn: Sửa kênh mương Bản Cuôn. Chọn lại để đổi ý." in listed
    assert "Kết quả (1 người bình chọn):" in listed


async def create_two(official: Chat) -> int:
    """A poll of two questions, the second "chọn nhiều", through the whole flow; its id."""
    await official.say("/taobinhchon")
    await official.say("Làm việc nào trước?")
    await official.say("\n".join(OPTIONS))
    assert "Thêm câu hỏi? (tối đa 5 câu)" in await official.press("poll:opts")
    assert "Câu hỏi thứ 2?" in await official.press("poll:more")
    await official.say("Bà con góp gì?")
    await official.say("Ngày công\nTiền\nVật liệu")
    await official.press("poll:opts")
    assert "mỗi người chọn được nhiều ý" in await official.press("poll:kind")
    assert "Hỏi ý kiến ai?" in await official.press("poll:next")
    await official.press("poll:scope:0")
    await official.say("18:00 5/12")
    preview = await official.press("poll:res:after_vote")
    assert (
        "🗳 Làm việc nào trước?\nDành cho: Xã Chợ Đồn\nHạn chót: 18:00 05/12/2026\n"
        "Kết quả: xem được ngay sau khi bạn bình chọn.\n"
        "Câu 1: Làm việc nào trước?\n1. Làm đường Nà Làng trước\n2. Sửa kênh mương Bản Cuôn\n\n"
        "Câu 2: Bà con góp gì? (chọn nhiều)\n1. Ngày công\n2. Tiền\n3. Vật liệu"
    ) in preview
    assert "Đã mở bình chọn số" in await official.press("poll:ok")
    async with official.dispatcher.services.db.read() as conn:
        return int((await conn.execute(select(func.max(polls.c.id)))).scalar_one())


async def test_a_poll_of_several_questions_is_answered_one_by_one_changed_and_closed(
    official: Chat, chat: Chat, services: Services
) -> None:
    poll_id = await create_two(official)
    announced = await text_of(services, "poll")
    assert "Câu 2: Bà con góp gì? (chọn nhiều)\n1. Ngày công" in announced
    await onboard(chat)
    shown = await chat.say("/binhchon")
    assert "Câu 1: Làm việc nào trước?" in shown
    assert chat.buttons[:2] == [f"poll:pick:{poll_id}:0:0", f"poll:pick:{poll_id}:0:1"]
    second = await chat.say("mot")  # a number in words
    assert "Câu 2: Bà con góp gì? (chọn nhiều)" in second and "ví dụ: 1 3" in second
    assert "Chọn số từ 1 đến 3." in await chat.say("1 va 4")  # no fourth option: asked again
    assert await count(services, poll_ballots) == 0
    recorded = await chat.say("1 va 3")
    assert "Đã ghi nhận ý kiến của bạn: Làm đường Nà Làng trước; Ngày công, Vật liệu." in recorded
    assert "Kết quả (1 người bình chọn):" in recorded
    assert "Câu 2: Bà con góp gì? (chọn nhiều)\n• Ngày công: 1 (100%)\n• Tiền: 0 (0%)" in recorded
    # Changed: the first answer typed as its text, the second ticked by buttons, then Xong.
    again = await chat.say("binh chon")
    assert "Bạn đã chọn: Làm đường Nà Làng trước; Ngày công, Vật liệu." in again
    assert "Câu 2" in await chat.say("sua kenh muong ban cuon")
    await chat.press(f"poll:pick:{poll_id}:1:1")
    await chat.press(f"poll:pick:{poll_id}:1:2")
    ticked = [chat.label(f"poll:pick:{poll_id}:1:{n}") for n in range(3)]
    assert ticked == ["Ngày công", "✅ Tiền", "✅ Vật liệu"]
    await chat.press(f"poll:pick:{poll_id}:1:2")  # untick
    changed = await chat.press("poll:done")
    assert "Đã đổi ý kiến của bạn thành: Sửa kênh mương Bản Cuôn; Tiền." in changed
    # The last answer replayed records nothing again.
    await chat.press_unoffered("poll:done")
    await chat.press_unoffered(f"poll:pick:{poll_id}:1:0")
    assert await count(services, poll_ballots) == 1
    assert await count(services, poll_choices) == 2
    poll = await services.polls.get(poll_id)
    assert poll is not None
    assert await services.polls.choice_of(poll, chat.channel, chat.user_id) == ((1,), (1,))
    # Closed by the scheduler, the result announced question by question.
    services.clock = FixedClock(NOW.replace(day=5, month=12, hour=18))
    assert "polls:close" in await run_due(services, services.now())
    result = await text_of(services, "poll_result")
    assert "Câu 1: Làm việc nào trước?\n• Làm đường Nà Làng trước: 0 (0%)" in result
    assert "Câu 2: Bà con góp gì? (chọn nhiều)\n• Ngày công: 0 (0%)\n• Tiền: 1 (100%)" in result
    refused = await chat.say("/binhchon")
    assert "Đã đóng lúc 18:00 05/12/2026." in refused and "Câu 1" in refused


async def test_a_village_poll_of_several_questions_refuses_an_outsider_before_any_answer(
    official: Chat, dispatcher: Dispatcher, services: Services
) -> None:
    await official.say("/taobinhchon")
    await official.say("Làm việc nào trước?")
    await official.say("\n".join(OPTIONS))
    await official.press("poll:opts")
    await official.press("poll:kind")  # one question, several answers: answered in the step
    await official.press("poll:next")
    await official.press("poll:scope:2")  # Nà Làng
    await official.say("18:00 5/12")
    await official.press("poll:res:after_vote")
    await official.press("poll:ok")
    [poll] = await services.polls.of_commune("02020")  # the officials' list: its villages' too
    outsider = Chat(dispatcher, "zalo", "bc")
    await onboard(outsider)
    await pledged(services, "zalo", "bc", "Bản Cuôn")
    refused = await outsider.press_unoffered(f"poll:show:{poll.id}")
    assert "chỉ dành cho người dân thôn Nà Làng" in refused
    assert await state_of_user(services, outsider) is None
    assert "Đã ghi nhận" not in await outsider.press_unoffered(f"poll:pick:{poll.id}:0:0")
    assert await count(services, poll_ballots) == 0
    insider = Chat(dispatcher, "zalo", "nl")
    await onboard(insider)
    await pledged(services, "zalo", "nl", "Nà Làng")
    assert "Chọn một hay nhiều ý" in await insider.say("/binhchon")
    assert "Đã ghi nhận ý kiến của bạn: Làm đường Nà Làng trước, Sửa kênh mương" in (
        await insider.say("1 2")
    )


async def state_of_user(services: Services, chat: Chat) -> str | None:
    user = await services.users.load(chat.channel, chat.user_id, "vi")
    return user.state


async def test_a_one_answer_question_takes_one_number_and_a_tick_needs_one(
    official: Chat, chat: Chat, services: Services
) -> None:
    poll_id = await create_two(official)
    await onboard(chat)
    await chat.say("/binhchon")
    assert "Câu này chỉ chọn một ý" in await chat.say("1 2")
    await chat.say("2")
    assert "Chọn ít nhất một ý rồi bấm Xong." in await chat.press("poll:done")
    assert "Đã ghi nhận" in await chat.say("2, 3")
    assert await services.polls.choice_of(
        await services.polls.get(poll_id),  # type: ignore[arg-type]
        chat.channel,
        chat.user_id,
    ) == ((1,), (1, 2))


async def create_with_words(official: Chat) -> int:
    """A poll of a question of options, then one answered in words; its id."""
    await official.say("/taobinhchon")
    await official.say("Làm việc nào trước?")
    await official.say("\n".join(OPTIONS))
    assert "poll:free" not in official.buttons  # the first question has options
    await official.press("poll:opts")
    await official.press("poll:more")
    await official.say("Bà con muốn góp ý gì thêm?")
    said = await official.press("poll:free")
    assert "mỗi người gõ ý kiến của mình; chỉ cán bộ đọc, không kèm tên" in said
    assert "poll:kind" not in official.buttons
    await official.press("poll:next")
    await official.press("poll:scope:0")
    await official.say("18:00 5/12")
    preview = await official.press("poll:res:after_vote")
    assert "Câu 2: Bà con muốn góp ý gì thêm? (trả lời bằng chữ, chỉ cán bộ đọc)" in preview
    assert "Đã mở bình chọn số" in await official.press("poll:ok")
    async with official.dispatcher.services.db.read() as conn:
        return int((await conn.execute(select(func.max(polls.c.id)))).scalar_one())


WORDS = "Dừng xe ở đầu thôn rất bất tiện, nên làm đường trước mùa mưa"  # an action word inside


async def test_words_typed_at_a_free_text_question_reach_the_officials_only(
    official: Chat, chat: Chat, dispatcher: Dispatcher, services: Services
) -> None:
    poll_id = await create_with_words(official)
    await onboard(chat)
    await chat.say("/binhchon")
    asked = await chat.press(f"poll:pick:{poll_id}:0:0")
    assert "Gõ ý kiến của bạn. Chỉ cán bộ xã đọc, không kèm tên, không công bố." in asked
    recorded = await chat.say(WORDS)  # "dừng" here is words for the officials, not a stop
    assert "Đã ghi nhận ý kiến của bạn: Làm đường Nà Làng trước; “Dừng xe" in recorded
    assert "Kết quả (1 người bình chọn):" in recorded and "đầu thôn" not in recorded.split("”")[1]
    sub = await services.subscriptions.get(chat.channel, chat.user_id)
    assert sub is not None and sub.active  # not unsubscribed
    other = Chat(dispatcher, "zalo", "quiet")
    await onboard(other)
    await other.say("/binhchon")
    await other.press(f"poll:pick:{poll_id}:0:1")
    assert "Đã ghi nhận ý kiến của bạn: Sửa kênh mương Bản Cuôn; không có ý kiến thêm." in (
        await other.press("poll:skip")
    )
    # A villager may not read them, by the command or a forged button.
    assert await other.say("/ykienbinhchon") == REFUSAL
    assert await other.press_unoffered(f"poll:words:{poll_id}:0") == REFUSAL
    # The official reads them, with no name.
    assert "Đọc ý kiến bằng chữ của bình chọn nào?" in await official.say("/ykienbinhchon")
    read = await official.press(f"poll:words:{poll_id}:0")
    assert "Ý kiến bằng chữ — Bà con muốn góp ý gì thêm? (1 ý kiến, không kèm tên):" in read
    assert f"1. {WORDS}" in read
    assert chat.user_id not in read and "quiet" not in read
    # Never in the results, the result announced, or the export.
    services.clock = FixedClock(NOW.replace(day=5, month=12, hour=18))
    assert "polls:close" in await run_due(services, services.now())
    assert "đầu thôn" not in await text_of(services, "poll_result")
    [(poll, results)] = await services.polls.export(["02020"])
    assert "đầu thôn" not in str(results) and "đầu thôn" not in str(poll)


async def test_free_text_answers_are_paged_and_a_revoked_official_reads_none(
    official: Chat, services: Services
) -> None:
    poll = await services.polls.get(await create_with_words(official))
    assert poll is not None
    for n in range(12):
        assert await vote_from(services, poll, 0, f"w{n}", None, f"ý kiến số {n + 1}") == "recorded"
    first = await official.press_unoffered(f"poll:words:{poll.id}:0")
    assert "(12 ý kiến, không kèm tên)" in first and "10. ý kiến số 10" in first
    assert "11." not in first
    second = await official.press(f"poll:words:{poll.id}:1")
    assert "11. ý kiến số 11\n12. ý kiến số 12" in second
    assert f"poll:words:{poll.id}:2" not in official.buttons
    await services.officials.revoke(f"{official.channel}:{OFFICIAL}", "commune_official", "02020")
    assert await official.press_unoffered(f"poll:words:{poll.id}:0") == REFUSAL


async def test_a_village_poll_is_listed_to_its_village_only_and_each_sees_their_choice(
    official: Chat, dispatcher: Dispatcher, services: Services
) -> None:
    commune_poll = await create(official)
    village_poll = await create(official, scope=2)  # Nà Làng
    na_lang, ban_cuon = Chat(dispatcher, "zalo", "nl"), Chat(dispatcher, "zalo", "bc")
    for villager, village in ((na_lang, "Nà Làng"), (ban_cuon, "Bản Cuôn")):
        await onboard(villager)
        await pledged(services, villager.channel, villager.user_id, village)
    assert "Bình chọn của Xã Chợ Đồn: chọn một." in await na_lang.say("/binhchon")
    assert na_lang.buttons[:2] == [f"poll:show:{village_poll}", f"poll:show:{commune_poll}"]
    assert "Dành cho: thôn Nà Làng, Xã Chợ Đồn" in await na_lang.press(f"poll:show:{village_poll}")
    assert "Đã ghi nhận" in await na_lang.press(f"poll:vote:{village_poll}:1")
    await na_lang.say("/binhchon")
    shown = await na_lang.press(f"poll:show:{village_poll}")
    assert "Bạn đã chọn: Sửa kênh mương Bản Cuôn." in shown
    assert "Bạn đã chọn" not in await na_lang.press_unoffered(f"poll:show:{commune_poll}")
    # Bản Cuôn's villager is shown the commune's poll alone, and may not vote in Nà Làng's.
    assert "Dành cho: Xã Chợ Đồn" in await ban_cuon.say("/binhchon")
    assert f"poll:show:{village_poll}" not in ban_cuon.buttons
    refused = await ban_cuon.press_unoffered(f"poll:vote:{village_poll}:0")
    assert "chỉ dành cho người dân thôn Nà Làng" in refused
    async with services.db.read() as conn:
        stored = (await conn.execute(select(poll_ballots.c.user_id, poll_ballots.c.village))).all()
    assert stored == [("nl", "Nà Làng")]  # the village the vote's own statement found


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
    assert await count(services, poll_ballots) == 0


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
    assert await services.polls.choice_of(
        await services.polls.get(poll),  # type: ignore[arg-type]
        chat.channel,
        chat.user_id,
    ) == ((0,),)


async def test_results_by_village_merge_groups_under_five(
    official: Chat, services: Services
) -> None:
    poll_id = await create(official)
    poll = await services.polls.get(poll_id)
    assert poll is not None
    votes = [("Nà Làng", 0)] * 4 + [("Nà Làng", 1)] * 2 + [("Bản Cuôn", 1)] * 3 + [(None, 0)]
    votes += [("Pác Nặm", 0)] * 5
    for n, (village, option) in enumerate(votes):
        assert await vote_from(services, poll, option, f"v{n}", village) == "recorded"
    results = await services.polls.results(poll)
    assert results.counts == (10, 5)
    # Bản Cuôn (3) and the unknown one (1) are "khác" (4), still too few: Pác Nặm joins it.
    assert results.groups == (Group("Nà Làng", (4, 2), 6), Group(None, (6, 3), 9))


def test_merging_never_leaves_a_small_group_or_a_lone_one() -> None:
    assert merge_small({"A": [3, 3], "B": [1, 0]}) == []  # B into khác, and khác then joins A
    assert merge_small({"A": [5, 0], "B": [0, 5]}) == [Group("A", (5, 0), 5), Group("B", (0, 5), 5)]
    assert merge_small({"A": [2, 2], "B": [1, 1], None: [1, 0]}) == []
    groups = merge_small({"A": [5, 1], "B": [4, 4], "C": [1, 1], "D": [2, 3]})
    assert groups == [Group("A", (5, 1), 6), Group("B", (4, 4), 8), Group(None, (3, 4), 7)]
    assert all(g.voters >= 5 for g in groups)
    # Several answers each ("chọn nhiều"): the voters say whether a group is big enough, not
    # the choices — four people choosing two options each are still four.
    assert merge_small({"A": [4, 4], "B": [5, 5]}, {"A": 4, "B": 5}) == []


# --- the "polls" topic, and the outbox: a poll announced, its result announced ---------------


async def recipients_of(services: Services, kind: str) -> dict[str, set[tuple[str, str]]]:
    """Who each broadcast of that kind reaches, by its language, once materialised."""
    found: dict[str, set[tuple[str, str]]] = {}
    async with services.db.read() as conn:
        ids = list(await conn.execute(select(broadcasts.c.id).where(broadcasts.c.kind == kind)))
    for (broadcast_id,) in ids:
        b = await get_broadcast(services.db, broadcast_id)
        assert b is not None and b.locale is not None
        async with services.db.write() as conn:
            await materialise(conn, b, utcnow(), oa_days=7)
        async with services.db.read() as conn:
            rows = await conn.execute(
                select(deliveries.c.channel, deliveries.c.user_id).where(
                    deliveries.c.broadcast_id == broadcast_id
                )
            )
            found[b.locale] = {(c, u) for c, u in rows}
    return found


async def text_of(services: Services, kind: str, locale: str = "vi") -> str:
    async with services.db.read() as conn:
        return str(
            (
                await conn.execute(
                    select(broadcasts.c.text).where(
                        broadcasts.c.kind == kind, broadcasts.c.locale == locale
                    )
                )
            ).scalar_one()
        )


async def test_the_polls_topic_is_chosen_in_notifications_and_on_by_default(
    chat: Chat, services: Services
) -> None:
    await onboard(chat)
    sub = await services.subscriptions.get(chat.channel, chat.user_id)
    assert sub is not None and sub.topics["polls"] is True
    assert "✅ Bình chọn mới và kết quả" in await chat.say("/thongbao")
    assert "⬜ Bình chọn mới và kết quả" in await chat.press("sub:t:polls")
    sub = await services.subscriptions.get(chat.channel, chat.user_id)
    assert sub is not None and sub.topics["polls"] is False


async def test_a_confirmed_poll_is_announced_to_the_topic_and_scope_only(
    official: Chat, dispatcher: Dispatcher, services: Services
) -> None:
    villagers = {
        "telegram": Chat(dispatcher, "telegram", "501"),
        "zalo": Chat(dispatcher, "zalo", "z-1"),
        "terminal": Chat(dispatcher, "terminal", "t-1"),
    }
    for villager in villagers.values():
        await onboard(villager)
    english = Chat(dispatcher, "telegram", "502")
    await english.say("/start")
    await english.press("lang:en")
    await english.say("cho don")
    not_polls = Chat(dispatcher, "zalo", "z-2")
    await onboard(not_polls)
    await not_polls.say("/thongbao")
    await not_polls.press("sub:t:polls")
    elsewhere = Chat(dispatcher, "telegram", "503")
    await onboard(elsewhere, "na ri")

    poll_id = await create(official)
    reached = await recipients_of(services, "poll")
    assert reached["vi"] == {
        ("telegram", "501"),
        ("zalo", "z-1"),
        ("terminal", "t-1"),
        (official.channel, OFFICIAL),
    }
    assert reached["en"] == {("telegram", "502")}  # nobody without the topic, nobody elsewhere
    text = await text_of(services, "poll")
    assert "🗳 Bình chọn mới: Làm việc nào trước?" in text
    assert "Hạn chót: 18:00 05/12/2026" in text
    assert "1. Làm đường Nà Làng trước\n2. Sửa kênh mương Bản Cuôn" in text
    assert "gõ /binhchon rồi chọn số" in text  # channels without buttons
    assert "🗳 New poll: Làm việc nào trước?\nFor: Xã Chợ Đồn" in await text_of(
        services, "poll", "en"
    )
    b = await get_broadcast(services.db, 1)
    assert b is not None and b.buttons is not None
    assert [row[0][0] for row in b.buttons] == [f"poll:vote:{poll_id}:0", f"poll:vote:{poll_id}:1"]
    async with services.db.read() as conn:
        actions = (await conn.execute(select(audit_log.c.action, audit_log.c.actor))).all()
    assert actions.count(("broadcast.poll", f"{official.channel}:{OFFICIAL}")) == 2  # vi, en

    # A villager who got it on a numbered channel votes with the command and a number.
    zalo = villagers["zalo"]
    assert "🗳 Làm việc nào trước?" in await zalo.say("/binhchon")
    assert zalo.buttons[:2] == [f"poll:vote:{poll_id}:0", f"poll:vote:{poll_id}:1"]  # 1 and 2
    assert "Đã ghi nhận ý kiến của bạn: Sửa kênh mương Bản Cuôn." in await zalo.say("2")
    # On Telegram the button under the announcement is pressed.
    voted = await villagers["telegram"].press_unoffered(f"poll:vote:{poll_id}:0")
    assert "Đã ghi nhận ý kiến của bạn: Làm đường Nà Làng trước." in voted


async def test_a_village_poll_is_announced_to_that_village_only(
    official: Chat, dispatcher: Dispatcher, services: Services
) -> None:
    for user_id, village in (("501", "Nà Làng"), ("502", "Bản Cuôn"), ("503", None)):
        await onboard(Chat(dispatcher, "telegram", user_id))
        if village is not None:
            await pledged(services, "telegram", user_id, village)
    await create(official, scope=2)  # Nà Làng
    assert await recipients_of(services, "poll") == {"vi": {("telegram", "501")}, "en": set()}


async def vote_from(
    services: Services,
    poll: Poll | None,
    option: int,
    user_id: str,
    village: str | None,
    words: str | None = None,
) -> str:
    """A Zalo villager of that village (known from a pledge) votes for an option of the first
    question (and types words at the second, if given); the outcome."""
    assert poll is not None
    if village is not None:
        await pledged(services, "zalo", user_id, village)
    choices = ((option,),) if words is None else ((option,), words)
    outcome, _results = await services.polls.vote(poll, choices, "zalo", user_id)
    return outcome


async def pledged(services: Services, channel: str, user_id: str, village: str) -> None:
    """A pledge naming the villager's village: where the bot learns which village they live in."""
    now = services.db.clock.utcnow()
    async with services.db.write() as conn:
        campaign = (await conn.execute(select(func.min(campaigns.c.id)))).scalar_one()
        await conn.execute(
            insert(contributions).values(
                campaign_id=campaign,
                commune_code="02020",
                village=village,
                channel=channel,
                user_id=user_id,
                show_name=False,
                kind="workdays",
                amount=2,
                status="registered",
                source_key=f"test-{channel}-{user_id}",
                created_at=now,
                updated_at=now,
            )
        )


async def test_the_announcement_goes_out_on_telegram_with_vote_buttons(
    official: Chat, dispatcher: Dispatcher, services: Services
) -> None:
    await onboard(Chat(dispatcher, "telegram", "424242"))
    poll_id = await create(official)
    async with fake_api() as (fake, url), sender_for(services, url) as sender:
        for broadcast_id in await due_broadcasts(services.db, utcnow(), ["telegram"]):
            # "waiting": the official's own copy on the terminal waits for a terminal sender.
            assert await sender.send(broadcast_id, asyncio.Event()) in ("done", "waiting")
    [sent] = fake.sent_to(424242)
    assert "🗳 Bình chọn mới: Làm việc nào trước?" in sent.text
    assert sent.markup is not None
    keyboard = json.loads(sent.markup)["inline_keyboard"]
    assert keyboard[1] == [{"text": OPTIONS[1], "callback_data": f"poll:vote:{poll_id}:1"}]


async def test_the_scheduler_closes_on_time_and_announces_the_result_once(
    official: Chat, chat: Chat, services: Services
) -> None:
    poll_id = await create(official, results="after_close")
    await onboard(chat)
    await chat.say("/binhchon")
    await chat.press(f"poll:vote:{poll_id}:1")
    await official.press_unoffered(f"poll:vote:{poll_id}:0")
    assert "Làm việc nào trước" not in str(await run_due(services, NOW))  # not yet
    services.clock = FixedClock(NOW.replace(day=5, month=12, hour=18))
    ran = await asyncio.gather(run_due(services, services.now()), run_due(services, services.now()))
    assert sorted("polls:close" in r for r in ran) == [False, True]  # two schedulers, one closes
    assert "polls:close" not in await run_due(services, services.now() + timedelta(minutes=1))
    async with services.db.read() as conn:
        results = (
            await conn.execute(
                select(broadcasts.c.locale).where(broadcasts.c.kind == "poll_result")
            )
        ).all()
        closed_at = (
            await conn.execute(select(polls.c.closed_at).where(polls.c.id == poll_id))
        ).scalar_one()
    assert sorted(r.locale for r in results) == ["en", "vi"]  # once, in each language
    assert closed_at is not None
    text = await text_of(services, "poll_result")
    assert "🗳 Kết quả bình chọn: Làm việc nào trước?" in text
    assert "Kết quả (2 người bình chọn):" in text
    assert "• Làm đường Nà Làng trước: 1 (50%)\n• Sửa kênh mương Bản Cuôn: 1 (50%)" in text
    assert "Tham gia: 2/2 người nhận tin (100%)" in text
    reached = await recipients_of(services, "poll_result")
    assert reached["vi"] == {(chat.channel, chat.user_id), (official.channel, OFFICIAL)}
    # After the close a vote is refused, and the result in chat shows the turnout too.
    refused = await chat.press_unoffered(f"poll:vote:{poll_id}:0")
    assert "Bình chọn đã đóng, không nhận thêm ý kiến." in refused
    assert "Tham gia: 2/2 người nhận tin (100%)" in refused
    poll = await services.polls.get(poll_id)
    assert poll is not None and poll.status == "closed"


async def test_turnout_counts_the_scopes_subscribers(
    official: Chat, dispatcher: Dispatcher, services: Services
) -> None:
    poll = await services.polls.get(await create(official))
    assert poll is not None
    for n in range(3):
        await onboard(Chat(dispatcher, "zalo", f"z{n}"))
    await onboard(Chat(dispatcher, "zalo", "far"), "na ri")  # another commune's: not counted
    await services.polls.vote(poll, ((0,),), "zalo", "z0")
    results = await services.polls.results(poll)
    assert (results.voters, results.subscribers) == (1, 4)  # three villagers and the official


async def test_a_poll_closed_elsewhere_takes_no_vote_though_this_process_keeps_it(
    official: Chat, services: Services
) -> None:
    poll = await services.polls.get(await create(official))
    assert poll is not None and poll.status == "open"  # kept in memory from here on
    # Another worker's scheduler closes it: an UPDATE this process's memory never saw.
    other = PollStore(services.db)
    services.db.clock = FixedClock(NOW.replace(day=5, month=12, hour=18))
    async with services.db.write() as conn:
        [(closed, _results)] = await other.close_due(conn, services.db.clock.utcnow())
    services.db.clock = FixedClock(NOW)  # and this worker's clock is behind: still refused
    assert closed.id == poll.id
    assert await vote_from(services, poll, 0, "late", None) == "closed"
    assert await count(services, poll_ballots) == 0


async def test_past_its_closing_time_a_poll_takes_no_vote_before_the_scheduler_runs(
    official: Chat, services: Services
) -> None:
    poll = await services.polls.get(await create(official))
    assert poll is not None
    services.db.clock = FixedClock(NOW.replace(day=5, month=12, hour=18))
    outcome, results = await services.polls.vote(poll, ((0,),), "zalo", "z1")
    assert (outcome, results is not None) == ("closed", True)
    assert await count(services, poll_ballots) == 0


async def test_many_votes_at_once_each_count_once_and_one_person_keeps_one_vote(
    official: Chat, services: Services
) -> None:
    poll = await services.polls.get(await create(official))
    assert poll is not None
    polls = services.polls
    many = await asyncio.gather(
        *(polls.vote(poll, ((n % 2,),), "zalo", f"p{n}") for n in range(30))
    )
    assert {outcome for outcome, _results in many} == {"recorded"}
    # The same person presses both options and replays at once: one vote stands.
    again = [polls.vote(poll, ((n % 2,),), "zalo", "p0", counted=True) for n in range(1, 6)]
    outcomes = [outcome for outcome, _results in await asyncio.gather(*again)]
    assert outcomes == ["changed", "changed", "changed", "changed", "changed"]
    [(_outcome, results)] = [await polls.vote(poll, ((1,),), "zalo", "p0", counted=True)]
    assert results is not None and results.counts == (14, 16)
    assert await count(services, poll_ballots) == 30
    assert await polls.choice_of(poll, "zalo", "p0") == ((1,),)


async def test_the_turnout_counts_subscribers_at_most_a_minute_old_and_the_close_afresh(
    official: Chat, dispatcher: Dispatcher, services: Services
) -> None:
    poll = await services.polls.get(await create(official))
    assert poll is not None
    before = (await services.polls.results(poll)).subscribers
    await onboard(Chat(dispatcher, "zalo", "newcomer"))
    assert (await services.polls.results(poll)).subscribers == before  # kept ≤ TURNOUT_SECONDS
    assert TURNOUT_SECONDS <= 60
    fresh = PollStore(services.db, turnout_seconds=0)
    assert (await fresh.results(poll)).subscribers == before + 1
    services.db.clock = FixedClock(NOW.replace(day=5, month=12, hour=18))
    async with services.db.write() as conn:
        [(_poll, closing)] = await services.polls.close_due(conn, services.db.clock.utcnow())
    assert closing.subscribers == before + 1  # the result announced counts them afresh


def test_a_process_keeps_a_bounded_number_of_poll_definitions() -> None:
    kept = LruCache(2)
    for key in (1, 2, 1, 3):  # 1 used again: 2 is the least recently used
        kept.put(key, f"poll {key}")
    assert (len(kept), kept.get(1), kept.get(2), kept.get(3)) == (2, "poll 1", None, "poll 3")


async def test_digests_show_the_polls_opened_and_closed_in_the_period(
    official: Chat, chat: Chat, services: Services
) -> None:
    open_poll = await create(official)
    soon = await create(official, scope=2, closes="18:00 30/11")  # Nà Làng's, closes first
    await onboard(chat)
    await services.subscriptions.choose(chat.channel, chat.user_id, digest="daily")
    await vote_from(services, await services.polls.get(soon), 0, "v1", "Nà Làng")
    services.clock = FixedClock(NOW + timedelta(days=2))
    assert "polls:close" in await run_due(services, services.now())
    [digest_id] = await build_digests(services, "daily", NOW - timedelta(hours=1), services.now())
    b = await get_broadcast(services.db, digest_id)
    assert b is not None
    assert "Bình chọn:" in b.text
    assert "• Làm việc nào trước? — mở, hạn chót 18:00 05/12/2026" in b.text
    assert "• Làm việc nào trước? (thôn Nà Làng) — đã đóng, 1 người bình chọn" in b.text
    assert "Xem và bình chọn: /binhchon" in b.text
    assert open_poll != soon
    # A period with no poll in it says nothing of polls.
    later = services.now() + timedelta(days=1)
    assert await services.polls.happened("02020", later) == []


# --- chungsuc export polls ------------------------------------------------------------------


async def test_export_polls_writes_counts_by_village_never_who_inert_cells(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith("CHUNGSUC_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CHUNGSUC_DB_URL", str(services.db.engine.url))
    poll, _created = await services.polls.create(
        NewPoll(
            "02020",
            None,
            (Question('=HYPERLINK("http://x","y")', "one", ("+ kênh mương", "Đường")),),
            "after_close",
            NOW + timedelta(days=3),
            "test-export",
        ),
        actor="test",
    )
    votes = [("Nà Làng", 0)] * 4 + [("Nà Làng", 1)] * 2 + [("Bản Cuôn", 1)] * 3 + [(None, 0)]
    votes += [("Pác Nặm", 0)] * 5
    for n, (village, option) in enumerate(votes):
        await vote_from(services, poll, option, f"voter-{n}", village)

    def run(*args: str) -> Result:
        return CliRunner().invoke(app, ["export", "polls", *args])

    done = await asyncio.to_thread(run, "--area", "02020")
    assert done.exit_code == 0, done.output
    rows = list(csv.reader(io.StringIO(done.stdout)))
    assert rows[0][:3] == ["ma_binh_chon", "ma_xa", "ten_xa"]
    table = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    got = [(r["nhom"], r["lua_chon"], r["so_phieu"], r["ti_le_phan_tram"]) for r in table]
    assert got == [
        ("tất cả", "'+ kênh mương", "10", "66.7"),
        ("tất cả", "Đường", "5", "33.3"),
        ("Nà Làng", "'+ kênh mương", "4", "66.7"),
        ("Nà Làng", "Đường", "2", "33.3"),
        ("khác", "'+ kênh mương", "6", "66.7"),  # Bản Cuôn, the unknown one and Pác Nặm
        ("khác", "Đường", "3", "33.3"),
    ]
    assert {r["cau_hoi"] for r in table} == {'\'=HYPERLINK("http://x","y")'}
    assert table[0]["so_nguoi_nhan_tin"] == str((await services.polls.results(poll)).subscribers)
    assert "voter-" not in done.stdout and "zalo" not in done.stdout  # never per person

    path = tmp_path / "binh_chon.xlsx"
    done = await asyncio.to_thread(run, "--format", "xlsx", "-o", str(path))
    assert done.exit_code == 0, done.output
    sheet = load_workbook(path)["binh_chon"]
    cell = sheet.cell(row=2, column=5)
    assert (cell.value, cell.data_type) == (
        '=HYPERLINK("http://x","y")',
        "s",
    )  # text, not a formula
    assert sheet.max_row == 7

    done = await asyncio.to_thread(run, "--area", "99999")
    assert done.exit_code != 0


async def test_people_subscribed_before_the_polls_topic_get_it_on_as_every_topic(
    tmp_path: Path,
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'old.sqlite3'}")

    def upgrade_to_0006(connection: Connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["connection"] = connection
        command.upgrade(config, "0006")

    try:
        async with db.write() as conn:
            await conn.run_sync(upgrade_to_0006)
            await conn.execute(
                text(
                    "INSERT INTO subscriptions (channel, user_id, commune_code, active,"
                    " commune_news, province_news, campaign_news, pledge_reminders, digest,"
                    " locale, updated_at) VALUES"
                    " ('zalo', 'old', '02020', 1, 1, 0, 1, 1, 'weekly', 'vi', '2026-11-01')"
                )
            )
        await db.migrate()
        sub = await SubscriptionStore(db).get("zalo", "old")
        assert sub is not None and sub.topics["polls"] is True
        assert sub.topics["province_news"] is False  # the others as they were
    finally:
        await db.close()


def upgrade_to(connection: Connection, revision: str) -> None:
    """The schema as a migration left it: data of then goes in before the later ones run."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


@asynccontextmanager
async def migrated_from(tmp_path: Path, revision: str, *rows: str) -> AsyncIterator[Database]:
    """A SQLite database stopped at that revision, those rows (SQL) written, then migrated to
    the newest; closed after."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'old.sqlite3'}")
    db.clock = FixedClock(NOW)
    try:
        async with db.write() as conn:
            await conn.run_sync(upgrade_to, revision)
            for row in rows:
                await conn.execute(text(row))
        await db.migrate()
        yield db
    finally:
        await db.close()


OLD = "'2026-11-29 00:00:00.000000'"


async def test_polls_and_votes_of_before_0009_become_one_question_and_ballots(
    tmp_path: Path,
) -> None:
    async with migrated_from(
        tmp_path,
        "0008",
        "INSERT INTO polls (id, commune_code, question, results, closes_at, status,"
        " created_by, created_at, source_key) VALUES (7, '02020', 'Làm việc nào"
        f" trước?', 'after_vote', '2026-12-05 11:00:00.000000', 'open', 'cb', {OLD},"
        " 'old-7')",
        "INSERT INTO poll_options (id, poll_id, position, text) VALUES"
        " (70, 7, 0, 'Đường'), (71, 7, 1, 'Kênh')",
        "INSERT INTO poll_votes (poll_id, option_id, channel, user_id, village,"
        f" created_at, updated_at) VALUES (7, 70, 'zalo', 'a', 'Nà Làng', {OLD},"
        f" {OLD}), (7, 71, 'zalo', 'b', NULL, {OLD}, {OLD}), (7, 71, 'telegram', 'c',"
        f" NULL, {OLD}, {OLD})",
    ) as db:
        store = PollStore(db)
        poll = await store.get(7)
        assert poll is not None and poll.single
        assert poll.questions == (
            Question("Làm việc nào trước?", "one", ("Đường", "Kênh"), (70, 71)),
        )
        results = await store.results(poll)
        assert (results.counts, results.voters) == ((1, 2), 3)
        assert await store.choice_of(poll, "zalo", "a") == ((0,),)
        async with db.read() as conn:
            villages = (await conn.execute(select(poll_choices.c.village))).scalars().all()
        assert sorted(villages, key=lambda v: v or "") == [None, None, "Nà Làng"]  # as voted
        assert await store.vote(poll, ((1,),), "zalo", "a") == ("changed", None)
        assert (await store.results(poll)).counts == (0, 3)
