"""Dân biết: subscriptions, announcements written in chat, digests and schedules."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from bot.app.services import TZ, Services
from bot.content.news import NewsFileError, load_news, read_news
from bot.core.dispatch import Dispatcher
from bot.delivery.digest import build_digests, send_pledge_reminders
from bot.delivery.notify import REMINDER
from bot.delivery.scheduler import ensure_schedules, next_run, run_due
from bot.domain.markup import to_plain, to_telegram_html
from bot.storage.schema import audit_log, broadcasts, deliveries, schedules, subscriptions
from tests.conftest import Chat

NOW = datetime(2026, 11, 29, 7, 0, tzinfo=TZ)


async def onboard(chat: Chat, commune: str = "cho don", language: str = "lang:vi") -> str:
    await chat.say("/start")
    await chat.press(language)
    return await chat.say(commune)


async def row(services: Services, chat: Chat) -> object:
    async with services.db.read() as conn:
        return (
            await conn.execute(
                select(subscriptions).where(
                    subscriptions.c.channel == chat.channel, subscriptions.c.user_id == chat.user_id
                )
            )
        ).one()


# --- subscriptions --------------------------------------------------------------------------


async def test_onboarding_subscribes_and_says_how_to_stop(chat: Chat, services: Services) -> None:
    answer = await onboard(chat)
    assert "Bạn sẽ nhận thông báo của xã qua đây. Gõ “dừng”" in answer
    sub = await row(services, chat)
    assert (sub.active, sub.commune_code, sub.commune_news, sub.digest) == (
        True,
        "02020",
        True,
        "weekly",
    )
    assert "Bạn sẽ nhận thông báo" not in await chat.say("/doixa") + await chat.say("Na Rì")
    assert (await row(services, chat)).commune_code == "02155"


async def test_choose_what_to_receive(chat: Chat, services: Services) -> None:
    await onboard(chat)
    settings = await chat.say("/thongbao")
    assert "✅ Thông báo của tỉnh" in settings
    assert "⬜ Thông báo của tỉnh" in await chat.press("sub:t:province_news")
    assert "Bản tin hằng ngày" in await chat.press("sub:d:daily")
    sub = await row(services, chat)
    assert (sub.province_news, sub.digest) == (False, "daily")


@pytest.mark.parametrize("word", ["dừng", "stop", "dừng nhận tin", "/dung", "unsubscribe"])
async def test_stop_anywhere_unsubscribes_with_one_line(
    chat: Chat, services: Services, word: str
) -> None:
    await onboard(chat)
    answer = await chat.say(word)
    assert answer.startswith("Đã dừng gửi mọi thông báo cho bạn.")
    assert (await row(services, chat)).active is False
    assert "Đã nhận lại thông báo" in await chat.say("/batdau")
    assert (await row(services, chat)).active is True


@pytest.mark.parametrize("word", ["dung", "dung lai"])
async def test_stop_typed_bare_asks_first_it_may_be_dung_for_yes(
    chat: Chat, services: Services, word: str
) -> None:
    await onboard(chat)
    assert "Bạn muốn dừng nhận mọi thông báo?" in await chat.say(word)
    assert (await row(services, chat)).active is True
    assert "Bạn muốn xem gì?" in await chat.press("menu:back")
    await chat.say(word)
    assert (await chat.press("menu:go")).startswith("Đã dừng gửi mọi thông báo cho bạn.")


async def test_turning_off_one_topic_in_words_is_not_stopping_everything(
    chat: Chat, services: Services
) -> None:
    await onboard(chat)
    assert "Bạn đang nhận:" in await chat.say("tat thong bao tinh")
    assert (await row(services, chat)).active is True


@pytest.mark.parametrize(
    ("word", "buttons"),
    [
        ("dừng", ["menu:quit", "menu:go", "menu:back"]),  # this pledge, or the notices?
        ("dung", ["menu:quit", "menu:go", "menu:back"]),
        ("stop", ["menu:quit", "menu:go", "menu:back"]),
        ("dừng nhận tin", ["menu:go", "menu:back"]),  # it says which
    ],
)
async def test_stop_typed_inside_a_pledge_asks_first_and_keeps_the_draft(
    chat: Chat, services: Services, word: str, buttons: list[str]
) -> None:
    await onboard(chat)
    await chat.say("/dongop")
    await chat.press("contrib:vil:0")
    assert "dừng nhận mọi thông báo?" in await chat.say(word)
    assert chat.buttons == buttons
    assert "bạn muốn góp gì?" in await chat.press("menu:back")  # back where the pledge was
    assert (await row(services, chat)).active is True
    await chat.say(word)
    assert (await chat.press("menu:go")).startswith("Đã dừng gửi mọi thông báo cho bạn.")
    assert (await row(services, chat)).active is False


async def test_the_command_stops_at_once_even_inside_a_pledge(
    chat: Chat, services: Services
) -> None:
    await onboard(chat)
    await chat.say("/dongop")
    assert (await chat.say("/dung")).startswith("Đã dừng gửi mọi thông báo cho bạn.")
    assert (await row(services, chat)).active is False


async def test_language_follows_into_the_subscription(chat: Chat, services: Services) -> None:
    await onboard(chat)
    await chat.say("/language")
    await chat.press("lang:en")
    assert (await row(services, chat)).locale == "en"
    assert "You are receiving:" in await chat.say("/notifications")


# --- announcements --------------------------------------------------------------------------


@pytest.fixture
async def official(services: Services, dispatcher: Dispatcher) -> Chat:
    await services.officials.grant("telegram:cb", "commune_official", "02020", "test")
    return Chat(dispatcher, "telegram", "cb")


async def test_an_official_announces_with_a_preview_scope_and_time(
    official: Chat, chat: Chat, services: Services
) -> None:
    await onboard(chat)
    assert "Gõ nội dung thông báo" in await official.say("/thongbaomoi")
    preview = await official.say("**Họp thôn** tối nay 19:00 tại [nhà văn hóa](https://x.vn)")
    assert "Xem trước — bà con sẽ nhận được:" in preview
    assert "Họp thôn tối nay 19:00 tại nhà văn hóa (https://x.vn)" in preview
    assert official.buttons[:1] == ["ann:scope:commune:02020"]
    assert "Gửi lúc nào?" in await official.press("ann:scope:commune:02020")
    confirm = await official.press("ann:now")
    assert "Gửi tới 1 người đang nhận tin" in confirm
    assert "Đã lên lịch thông báo số" in await official.press("ann:go")
    async with services.db.read() as conn:
        b = (await conn.execute(select(broadcasts))).one()
        audited = (
            await conn.execute(select(func.count()).where(audit_log.c.entity == "broadcast"))
        ).scalar_one()
    assert (b.kind, b.scope_level, b.scope_code, b.topic, b.status) == (
        "announcement",
        "commune",
        "02020",
        "commune_news",
        "scheduled",
    )
    assert b.html == '<b>Họp thôn</b> tối nay 19:00 tại <a href="https://x.vn">nhà văn hóa</a>'
    assert audited == 1
    progress = await official.say("/tiendogui")
    assert "#" in progress and "(đã lên lịch)" in progress and "scheduled" not in progress


async def test_an_announcement_can_be_scheduled_for_later(official: Chat) -> None:
    await official.say("/thongbaomoi")
    await official.say("Lịch tiêm phòng")
    await official.press("ann:scope:commune:02020")
    assert "Mình chưa hiểu thời gian" in await official.say("lúc nào đó")
    assert "Gửi chứ?" in await official.say("18:00 30/11")


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        ("8h tối nay", "20:00 29/11/2026"),
        ("7 giờ sáng mai", "07:00 30/11/2026"),
        ("3h chiều", "15:00"),
    ],
)
async def test_times_of_day_in_words(official: Chat, typed: str, shown: str) -> None:
    await official.say("/thongbaomoi")
    await official.say("Họp thôn")
    await official.press("ann:scope:commune:02020")
    confirm = await official.say(typed)
    assert "Gửi chứ?" in confirm and shown in confirm, confirm


async def test_a_photo_with_a_caption_goes_into_the_announcement(official: Chat) -> None:
    from bot.core.conversation import Incoming

    await official.say("/thongbaomoi")
    answer = await official.send(
        Incoming("telegram", "cb", unsupported="photo", photo="FILE123", text="Ảnh công trình")
    )
    assert "[kèm 1 ảnh]" in answer and "Ảnh công trình" in answer


async def test_only_officials_of_the_scope_may_announce(
    dispatcher: Dispatcher, services: Services, official: Chat
) -> None:
    villager = Chat(dispatcher, "telegram", "v")
    assert "chỉ cán bộ xã phụ trách" in await villager.say("/thongbaomoi")
    await official.say("/thongbaomoi")
    await official.say("Nội dung")
    # A forged scope asks the question again: only the offered scopes can be chosen.
    assert "Gửi tới đâu?" in await official.press_unoffered("ann:scope:province:19")
    assert "Gửi tới đâu?" in await official.press_unoffered("ann:scope:commune:02155")
    assert official.buttons == ["ann:scope:commune:02020", "menu:main"]


@pytest.mark.parametrize("confirm", [None, "gửi", "đúng"])
async def test_a_revoked_official_cannot_send_at_the_confirmation(
    official: Chat, services: Services, confirm: str | None
) -> None:
    """The grant is checked again when the announcement is confirmed, not only at the start."""
    await official.say("/thongbaomoi")
    await official.say("Họp thôn tối nay")
    await official.press("ann:scope:commune:02020")
    assert "Gửi chứ?" in await official.press("ann:now")
    assert await services.officials.revoke("telegram:cb", "commune_official", "02020")
    answer = await official.press("ann:go") if confirm is None else await official.say(confirm)
    assert "chỉ cán bộ xã phụ trách" in answer
    async with services.db.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(broadcasts))).scalar() == 0
    assert "ann:go" not in official.buttons and "Gửi chứ?" not in await official.say("ok")


# --- news, markup, digests, schedules -------------------------------------------------------


def test_markup_escapes_html_and_renders_the_subset() -> None:
    source = "Giá <b>1.500.000đ</b> & **đậm** *nghiêng*\n\n- một\n- [hai](https://a.vn/?x=1&y=2)"
    html = to_telegram_html(source)
    assert "&lt;b&gt;1.500.000đ&lt;/b&gt; &amp; <b>đậm</b> <i>nghiêng</i>" in html
    assert '• <a href="https://a.vn/?x=1&amp;y=2">hai</a>' in html
    assert to_plain(source).endswith("• một\n• hai (https://a.vn/?x=1&y=2)")


def test_a_bad_news_file_names_its_problem(tmp_path: Path) -> None:
    path = tmp_path / "x.md"
    path.write_text('+++\ntitle = "T"\ndate = 2026-11-01\nscope = "xa"\n+++\nBody', "utf-8")
    with pytest.raises(NewsFileError, match="scope is"):
        read_news(path)


@pytest.mark.parametrize("locale", ["vi", "en"])
async def test_a_digest_in_each_language_has_what_is_new(
    services: Services, dispatcher: Dispatcher, locale: str
) -> None:
    chat = Chat(dispatcher, "telegram", f"d-{locale}")
    await onboard(chat, language=f"lang:{locale}")
    await services.subscriptions.choose("telegram", chat.user_id, digest="daily")
    since = datetime(2026, 11, 1, tzinfo=UTC)
    [digest_id] = await build_digests(services, "daily", since, NOW)
    async with services.db.read() as conn:
        b = (await conn.execute(select(broadcasts).where(broadcasts.c.id == digest_id))).one()
    assert (b.kind, b.topic, b.locale, b.scope_code) == ("digest", "digest:daily", locale, "02020")
    if locale == "vi":
        assert "Bản tin Chung Sức — Xã Chợ Đồn" in b.text
        assert "Khởi công bê tông hóa đường thôn Nà Làng (tin mẫu)" in b.text
        assert "Đóng góp đã xác nhận:" in b.text
    else:
        assert "Chung Sức digest — Xã Chợ Đồn" in b.text and "News:" in b.text


async def test_a_digest_with_nothing_new_is_not_sent(
    services: Services, dispatcher: Dispatcher
) -> None:
    chat = Chat(dispatcher, "telegram", "quiet")
    await onboard(chat)
    await services.subscriptions.choose("telegram", "quiet", digest="daily")
    # After the sample news, statuses and confirmed gifts: nothing is new.
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert await build_digests(services, "daily", later, later) == []


async def test_schedules_live_in_the_database_and_survive_a_restart(services: Services) -> None:
    before = datetime(2026, 11, 28, 23, 0, tzinfo=TZ)  # a Saturday night
    await ensure_schedules(services, before)
    async with services.db.read() as conn:
        rows = dict((await conn.execute(select(schedules.c.name, schedules.c.next_run_at))).all())
    assert rows["digest:daily"].replace(tzinfo=UTC) == datetime(2026, 11, 29, 7, tzinfo=TZ)
    assert rows["digest:weekly"].replace(tzinfo=UTC) == datetime(2026, 11, 30, 7, tzinfo=TZ)
    # A new process: nothing is due at 06:59; at 07:00 the daily jobs run, once.
    assert await run_due(services, datetime(2026, 11, 29, 6, 59, tzinfo=TZ)) == []
    assert sorted(await run_due(services, NOW)) == ["digest:daily", "reminders:daily"]
    assert await run_due(services, NOW + timedelta(minutes=1)) == []
    assert next_run("digest:weekly", NOW, 7, 0) == datetime(2026, 11, 30, 7, tzinfo=TZ)


async def test_pledge_reminders_reach_those_due_tomorrow(
    services: Services, dispatcher: Dispatcher
) -> None:
    chat = Chat(dispatcher, "telegram", "p")
    await onboard(chat)
    await chat.say("góp 2 triệu vào 30/11")
    await chat.press("contrib:vil:0")
    await chat.press("contrib:public:no")
    await chat.press(next(b for b in chat.buttons if b.startswith("contrib:ok:")))
    assert await send_pledge_reminders(services, date(2026, 11, 30)) == 1
    async with services.db.read() as conn:
        notices = select(deliveries.c.text, deliveries.c.priority).where(
            deliveries.c.broadcast_id.is_(None)
        )
        [(notice, priority)] = (await conn.execute(notices)).all()
    assert notice == "Nhắc hẹn: ngày mai bạn hẹn góp 2.000.000 đồng. Cảm ơn bạn!"
    assert priority == REMINDER  # after contribution notices, before broadcasts
    await services.subscriptions.choose("telegram", "p", pledge_reminders=False)
    assert await send_pledge_reminders(services, date(2026, 11, 30)) == 0


async def test_news_files_are_loaded(services: Services) -> None:
    async with services.db.read() as conn:
        count = (await conn.execute(text("SELECT count(*) FROM news_items"))).scalar_one()
    assert count == 1  # the sample item
    assert await load_news(services.db, Path("/nonexistent")) == 0
