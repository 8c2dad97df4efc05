"""Days and times as villagers type them: rules on fixed days, and properties over any day.

The corpus (tests/corpus/amounts.toml) holds the typed phrases; here are the rules that must
hold whatever today is: year ends, every weekday, decimals, time zones.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.dates import RECENT, parse_moment, parse_when

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
WEDNESDAY = date(2026, 11, 25)
NEW_YEARS_EVE = date(2026, 12, 31)  # a Thursday
DAYS = st.dates(min_value=date(2024, 1, 1), max_value=date(2040, 12, 31))
NOWS = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2040, 12, 31), timezones=st.just(TZ)
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # what the handlers' parse_when understood before, unchanged
        ("tuần sau", date(2026, 11, 30)),
        ("tuan toi", date(2026, 11, 30)),
        ("next week", date(2026, 11, 30)),
        ("ngày mai", date(2026, 11, 26)),
        ("tomorrow", date(2026, 11, 26)),
        ("tháng sau", date(2026, 12, 1)),
        ("tháng tới", date(2026, 12, 1)),
        ("next month", date(2026, 12, 1)),
        ("15/12", date(2026, 12, 15)),
        ("15/12/2026", date(2026, 12, 15)),
        ("15/12/26", date(2026, 12, 15)),
        ("15-12-2026", date(2026, 12, 15)),
        ("1/11", date(2026, 11, 1)),  # passed 24 days ago: that day, which callers refuse
        ("góp 2 triệu vào 30/11", date(2026, 11, 30)),
        ("31/2", None),
        ("xin chào", None),
        ("", None),
    ],
)
def test_what_the_old_parser_read_still_reads_the_same(text: str, expected: date | None) -> None:
    assert parse_when(text, WEDNESDAY) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mai", date(2027, 1, 1)),
        ("ngày kia", date(2027, 1, 2)),
        ("tháng sau", date(2027, 1, 1)),
        ("cuối tháng sau", date(2027, 1, 31)),
        ("15/1", date(2027, 1, 15)),
        ("30/12", date(2026, 12, 30)),  # yesterday, never silently a year ahead
        ("ngày 5", date(2027, 1, 5)),
        ("tuần sau", date(2027, 1, 4)),
        ("cuối tuần", date(2027, 1, 2)),
        ("cuối năm", date(2026, 12, 31)),
        ("năm sau", date(2027, 1, 1)),
        ("hôm nay", NEW_YEARS_EVE),
    ],
)
def test_the_year_turns(text: str, expected: date) -> None:
    assert parse_when(text, NEW_YEARS_EVE) == expected


_WEEKDAYS = [
    ["thứ hai", "thu 2", "t2", "thứ 2", "monday"],
    ["thứ ba", "thu ba", "t3", "Thứ 3"],
    ["thứ tư", "thu tu", "t4", "thứ 4"],
    ["thứ năm", "thu nam", "t5"],
    ["thứ sáu", "thu sau", "t6", "thu 6"],
    ["thứ bảy", "thu bay", "t7", "thứ 7", "saturday"],
    ["chủ nhật", "chu nhat", "cn", "CN", "sunday"],
]


@given(DAYS)
def test_a_weekday_is_the_next_one_never_today(today: date) -> None:
    for weekday, spellings in enumerate(_WEEKDAYS):
        for text in spellings:
            found = parse_when(text, today)
            assert found is not None, text
            assert found.weekday() == weekday, text
            assert 1 <= (found - today).days <= 7, text
            following = parse_when(f"{text} tuần sau", today)
            assert following is not None
            assert following.weekday() == weekday
            monday = today + timedelta(days=7 - today.weekday())
            assert monday <= following < monday + timedelta(days=7), text


@given(DAYS)
def test_relative_days_follow_today(today: date) -> None:
    saturday = parse_when("cuối tuần", today)
    assert saturday is not None
    assert saturday.weekday() == 5
    assert 0 <= (saturday - today).days <= 6
    monday = parse_when("tuần sau", today)
    assert monday is not None
    assert monday.weekday() == 0
    assert 1 <= (monday - today).days <= 7
    first = parse_when("tháng sau", today)
    assert first is not None
    assert first.day == 1
    assert (first.year * 12 + first.month) - (today.year * 12 + today.month) == 1
    last = parse_when("cuối tháng", today)
    assert last is not None
    assert (last.year, last.month) == (today.year, today.month)
    assert (last + timedelta(days=1)).day == 1
    assert parse_when("mai", today) == today + timedelta(days=1)
    assert parse_when("ngay mot", today) == today + timedelta(days=2)
    assert parse_when("hom nay", today) == today
    assert parse_when("3 ngày nữa", today) == today + timedelta(days=3)


@given(DAYS, st.integers(min_value=1, max_value=28), st.integers(min_value=1, max_value=12))
def test_a_day_without_a_year_is_ahead_or_just_passed(today: date, day: int, month: int) -> None:
    """Ahead within a year; or, if it passed within RECENT days, that past day (the caller says
    it has passed) — never a year ahead for a day the villager just missed."""
    for text in (f"{day}/{month}", f"{day:02d}-{month:02d}", f"{day} tháng {month}"):
        found = parse_when(text, today)
        assert found is not None, text
        assert (found.day, found.month) == (day, month)
        assert today - timedelta(days=RECENT) <= found < today + timedelta(days=366), text


@given(DAYS)
def test_the_answer_depends_on_today_only(today: date) -> None:
    """Nothing reads the clock: a week later, every weekly answer is a week later."""
    later = today + timedelta(days=7)
    for text in ("mai", "thứ 6", "tuần sau", "cuối tuần", "hôm nay", "bây giờ", "t7 tuan sau"):
        found, moved = parse_when(text, today), parse_when(text, later)
        assert found is not None
        assert moved == found + timedelta(days=7), text


_AMOUNT_WORDS = ["triệu", "trieu", "tr", "tỷ", "k", "nghìn", "ha", "m2", "ngày", "cong", "đ"]


@given(
    st.integers(min_value=1, max_value=31),
    st.integers(min_value=1, max_value=12),
    st.sampled_from(_AMOUNT_WORDS),
    st.sampled_from(["", "ung ho ", "góp ", "tôi góp "]),
)
def test_a_decimal_is_never_a_date(whole: int, part: int, word: str, before: str) -> None:
    for text in (f"{before}{whole}.{part} {word}", f"{before}{whole},{part}", f"{whole},{part}"):
        assert parse_when(text, WEDNESDAY) is None, text
    assert parse_when(f"{before}{whole}.{part}{word}", WEDNESDAY) is None
    assert parse_when(f"{before}{whole}-{part} {word}", WEDNESDAY) is None


@given(st.text())
def test_any_text_gives_a_day_or_none(text: str) -> None:
    assert parse_when(text, WEDNESDAY) is None or isinstance(parse_when(text, WEDNESDAY), date)


_PIECES = [*"0123456789/.:-, h", "ngày", "mai", "mốt", "thứ", "tuần", "sau", "tháng", "giờ"]
_PIECES += ["tối", "sáng", "chiều", "nay", "rưỡi", "kém", "pm", "cuối", "đầu", "nữa", "triệu"]


@given(st.lists(st.sampled_from(_PIECES), max_size=10).map(" ".join), NOWS)
def test_any_moment_is_vietnam_time_or_none(text: str, now: datetime) -> None:
    moment = parse_moment(text, now)
    assert moment is None or moment.tzinfo is now.tzinfo
    day = parse_when(text, now.date())
    assert day is None or isinstance(day, date)


@given(NOWS, st.integers(min_value=0, max_value=23), st.integers(min_value=0, max_value=59))
def test_a_time_without_a_day_is_the_next_one(now: datetime, hour: int, minute: int) -> None:
    for text in (f"{hour}:{minute:02d}", f"{hour}h{minute:02d}", f"{hour} giờ {minute}"):
        moment = parse_moment(text, now)
        assert moment is not None, text
        assert (moment.hour, moment.minute) == (hour, minute)
        assert now < moment <= now + timedelta(days=1), text
        assert moment.tzinfo is now.tzinfo


@given(NOWS, st.integers(min_value=1, max_value=11))
def test_parts_of_the_day(now: datetime, hour: int) -> None:
    evening = parse_moment(f"{hour}h tối mai", now) if hour >= 5 else None
    if evening is not None:
        assert evening.date() == now.date() + timedelta(days=1)
        assert evening.hour == hour + 12
    morning = parse_moment(f"{hour} giờ sáng mai", now)
    assert morning is not None
    assert (morning.date(), morning.hour) == (now.date() + timedelta(days=1), hour)
    afternoon = parse_moment(f"{min(hour, 6)}h chiều nay", now)
    assert afternoon is not None
    assert (afternoon.date(), afternoon.hour) == (now.date(), min(hour, 6) + 12)


def test_now_is_now() -> None:
    now = datetime(2026, 11, 25, 16, 30, 5, 123, tzinfo=TZ)
    for text in ("bây giờ", "bay gio", "ngay", "gửi ngay", "ngay bây giờ", "now"):
        assert parse_moment(text, now) == now, text
    for text in ("7 giờ", "bảy giờ"):
        moment = parse_moment(text, now)
        assert moment is not None
        assert moment.hour == 7, text


@pytest.mark.parametrize(
    "text", ["30/11", "mai", "thứ 6", "18:60", "24:00", "20h sáng", "3h trưa", "toi gop 2 trieu"]
)
def test_no_time_of_day_no_moment(text: str) -> None:
    assert parse_moment(text, datetime(2026, 11, 25, 16, 30, tzinfo=TZ)) is None
