"""One clock: handlers read time only from `Services.clock`, and the sample works on any day."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import select

from bot.app.services import Services
from bot.content.sample import load_sample, load_sample_campaigns, rounds
from bot.core.dispatch import Dispatcher
from bot.domain.clock import TZ, FixedClock
from bot.storage.db import as_utc
from bot.storage.schema import officials
from tests.conftest import Chat

ROOT = Path(__file__).resolve().parent.parent
_READS_THE_MACHINE_CLOCK = re.compile(r"datetime\.now\(|date\.today\(|time\.time\(")


def test_nothing_but_the_clock_module_reads_the_machine_clock() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in ("handlers", "bot")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path.name != "clock.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if _READS_THE_MACHINE_CLOCK.search(line)
    ]
    assert offenders == []


async def test_what_is_stored_is_stamped_by_the_one_clock(services: Services) -> None:
    """Set on Services, the clock stamps the rows the stores write too."""
    services.clock = FixedClock(datetime(2030, 5, 6, 7, 8, tzinfo=TZ))
    assert services.db.clock is services.clock
    await services.officials.grant("telegram:9", "commune_official", "02020", "test")
    async with services.db.read() as conn:
        granted = (await conn.execute(select(officials.c.granted_at))).scalars().all()
    assert [as_utc(g) for g in granted] == [datetime(2030, 5, 6, 0, 8, tzinfo=UTC)]


def test_sample_rounds_are_the_ends_of_past_months() -> None:
    assert rounds(date(2026, 11, 29)) == (date(2026, 6, 30), date(2026, 10, 31))
    assert rounds(date(2031, 1, 1)) == (date(2030, 8, 31), date(2030, 12, 31))


async def test_the_sample_has_an_open_campaign_whatever_the_day(empty_services: Services) -> None:
    services = empty_services
    services.clock = FixedClock(date(2031, 3, 5))
    await load_sample(services.db, services.reference, services.statuses, services.today())
    await load_sample_campaigns(services)
    open_now = await services.campaigns.open_in("02020", services.today())
    assert [c.slug for c in open_now] == ["mau-duong-thon-na-lang"]
    ends_on = open_now[0].ends_on
    assert ends_on is not None and open_now[0].starts_on < date(2031, 3, 5) < ends_on


async def test_examples_in_questions_are_never_in_the_past(
    services: Services, dispatcher: Dispatcher
) -> None:
    await services.officials.grant("telegram:cb", "commune_official", "02020", "test")
    official_chat = Chat(dispatcher, "telegram", "cb")
    services.clock = FixedClock(datetime(2027, 7, 3, 9, 0, tzinfo=TZ))
    await official_chat.say("/thongbaomoi")
    await official_chat.say("Họp thôn tối nay")
    asked = await official_chat.press(official_chat.buttons[0])
    assert "ví dụ 18:00 04/07" in asked
    assert "Gửi chứ?" in await official_chat.say("18:00 04/07")
