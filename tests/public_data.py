"""What the public-site tests put in the sample database: anonymous givers, reporters and voters
with names, user ids and phone numbers that no page or dataset may show — and a closed poll, an
open one and answered reports that the pages must show."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.testclient import TestClient

from bot.app.services import Services
from bot.app.settings import Settings
from bot.delivery import broadcasts
from bot.domain.clock import FixedClock
from bot.interfaces.server import create_app
from bot.storage.contributions import CONFIRMED, NewContribution
from bot.storage.polls import NewPoll, Question
from bot.storage.reports import NewReport, Report
from tests.conftest import NOW
from tests.test_polls import pledged

COMMUNE = "02020"  # Xã Chợ Đồn, where the sample campaigns are
# Everything personal the seeds carry: none of it may appear on a page or in a dataset.
SECRETS = (
    "Trần Thị Kín Đáo",
    "Tran Thi Kin Dao",
    "777000111",
    "Lê Văn Giấu",
    "0912 345 678",
    "0912345678",
    "zalo-5550001",
    "tg-voter-",
    "ý kiến riêng tư 4711",  # typed into a poll's free-text question: officials only
    "sạt lở trước nhà",
)
QUESTION = "Làm đường trước hay nhà văn hóa trước?"
OPEN_QUESTION = "Họp thôn vào tối thứ bảy được không?"
MONTHS = "Làm vào tháng nào? (chọn nhiều)"  # the first of a poll of two questions
ANSWER = "Xã đã cho đắp lại đoạn đường sạt."
SENT = "Lịch tiêm phòng cho đàn gia súc tháng 12"
SCHEDULED = "Họp dân bàn kế hoạch năm sau (chưa gửi)"


async def _no_notice(conn: AsyncConnection, report: Report) -> None:
    """The reporter's notice is the outbox's business, not the site's."""


def one(text: str, *options: str) -> tuple[Question, ...]:
    """A poll of one question of one answer."""
    return (Question(text, "one", options),)


async def seed(services: Services) -> None:
    """Anonymous gifts, two reports (one answered and closed), a closed and an open poll."""
    campaign = await services.campaigns.by_slug("mau-duong-thon-na-lang")
    assert campaign is not None
    for number, (channel, user, name, phone) in enumerate(
        [
            ("telegram", "777000111", "Trần Thị Kín Đáo", None),
            ("zalo", "zalo-5550001", "Lê Văn Giấu 0912345678", "0912 345 678"),
        ]
    ):
        gift, _ = await services.contributions.add(
            NewContribution(
                campaign=campaign,
                village="Nà Làng",
                channel=channel,
                user_id=user,
                display_name=name,
                show_name=False,
                kind="money",
                amount=300_000,
                unit=None,
                description=phone,
                due_on=None,
                source_key=f"site:{number}",
            )
        )
        await services.contributions.move(gift.id, CONFIRMED, "telegram:1")
    reports = []
    # The third an official marks as spam: no page or dataset shows it.
    for number, category in enumerate(("roads", "water", "security")):
        report, _ = await services.reports.add(
            NewReport(
                commune_code=COMMUNE,
                village="Nà Làng",
                category=category,
                description="Ông Lê Văn Giấu 0912 345 678: sạt lở trước nhà",
                photo="photo-file-id-1",
                latitude=22.15,
                longitude=105.6,
                channel="zalo",
                user_id="zalo-5550001",
                display_name="Lê Văn Giấu",
                source_key=f"site-report-{number}",
            ),
            max_open=5,
            max_spam=3,
        )
        assert report is not None
        reports.append(report)
    await services.reports.move(
        reports[0].id, "resolved", "telegram:1", [COMMUNE], _no_notice, answer=ANSWER
    )
    await services.reports.move(reports[2].id, "spam", "telegram:1", [COMMUNE], _no_notice)
    closes = NOW + timedelta(hours=1)
    poll, _ = await services.polls.create(
        NewPoll(COMMUNE, None, one(QUESTION, "Đường", "Nhà văn hóa"), "after_close", closes, "p1"),
        "telegram:1",
    )
    for i in range(12):
        # A voter's village is the one their pledge named.
        await pledged(services, "telegram", f"tg-voter-{i}", "Nà Làng" if i < 7 else "Bản Cuôn")
        await services.polls.vote(poll, ((i % 2,),), "telegram", f"tg-voter-{i}")
    await services.polls.create(
        NewPoll(
            COMMUNE,
            None,
            one(OPEN_QUESTION, "Được", "Không"),
            "after_vote",
            NOW + timedelta(days=3),
            "p2",
        ),
        "telegram:1",
    )
    two, _ = await services.polls.create(
        NewPoll(
            COMMUNE,
            None,
            (
                Question(MONTHS, "many", ("Tháng 1", "Tháng 2", "Tháng 3")),
                Question("Ý kiến khác của bà con?", "text", ()),
            ),
            "after_close",
            closes,
            "p3",
        ),
        "telegram:1",
    )
    for i in range(6):
        words = "ý kiến riêng tư 4711" if i == 0 else ""
        await services.polls.vote(
            two, ((0, 2) if i % 2 else (1,), words), "telegram", f"tg-voter-{i}"
        )
    async with services.db.write() as conn:
        closed = await services.polls.close_due(conn, closes + timedelta(minutes=1))
    assert sorted(p.question for p, _ in closed) == sorted([QUESTION, MONTHS])
    for title, status in ((SENT, "done"), (SCHEDULED, "scheduled")):
        await broadcasts.create(
            services.db,
            "telegram:1",
            kind="announcement",
            title=title,
            text=title,
            scope_level="commune",
            scope_code=COMMUNE,
            topic="commune_news",
            send_at=NOW if status == "done" else NOW + timedelta(days=2),
            status=status,
        )


@pytest.fixture
async def seeded(services: Services) -> Services:
    """The sample database with the seeds above."""
    await seed(services)
    return services


@pytest.fixture
def client(seeded: Services, settings: Settings) -> Iterator[TestClient]:
    """The server of `chungsuc serve` with no messenger configured, on the test's seeded
    database and clock, through Starlette's TestClient (its own event loop and services)."""
    with TestClient(create_app(settings, clock=FixedClock(NOW))) as test_client:
        yield test_client
