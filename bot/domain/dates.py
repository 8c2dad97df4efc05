"""Days and times as villagers type them: "15/12", "mai", "thứ 6 tuần sau", "8h tối nay".

Nothing here reads the clock: `parse_when` takes `today` and `parse_moment` takes `now` (an
aware datetime in Vietnam's time zone), so that every answer can be tested on a fixed day.

Days (`parse_when`), read from anywhere in a sentence, the first one said wins:

- digits: "15/12", "15/12/2026", "15/12/26", "15-12", "2026-12-15", and "15 tháng 12 (năm
  2026)". A day without a year that has passed means next year ("ngày 15" alone: this month, or
  the next if passed). Digits followed by an amount word are never a date ("2.5 triệu", "5-6
  triệu", "1.5 ha"), nor is anything with a comma ("2,5"); "d.m" with a dot is a date only when
  the rest of the text is date words too ("hạn 2.5"), since "2.5" is mostly a decimal.
- words: "hôm nay"/"hnay"/"today", "bây giờ"/"bgio"/"ngay"/"now" (today; `parse_moment` reads
  them as now), "mai"/"ngày mai"/"tomorrow", "ngày kia"/"ngày mốt"/"mốt" (+2), "hôm qua" (−1),
  "hôm kia" (−2), "N ngày/tuần nữa", "sau N ngày", "tuần sau"/"tuần tới"/"sang tuần"/"next
  week" (next Monday), "tháng sau"/"next month"/"đầu tháng sau" (the 1st of next month),
  "cuối tháng (sau)", "giữa tháng", "cuối năm", "năm sau", "thứ hai"…"chủ nhật", "thứ 2"…
  "thứ 7", "t2"…"t7", "cn", "monday"… (the next such day, never today; "thứ 6 tuần sau" is
  the Friday of next week), "cuối tuần" (the coming Saturday, today on a Saturday).
- ambiguity: typed without marks "mai" is also a name (so "chị Mai" with a capital is not
  tomorrow), "ngay" is also "ngày" (so "3 ngay" and "ngay 15" are not now), plain "mot" is
  mostly "một" (so it means +2 only after "ngày"/"hôm" or alone), "thu 2 trieu" is collecting
  2 million, not Tuesday, "hàng ngày" is daily, "góp thêm 3 ngày nữa" three more days of work,
  "5/10 tiêu chí" a count. "mai mốt" (some day) is no date.

Times (`parse_moment`): "18:30", "18h", "18h30", "18g30", "18 giờ 30 (phút)", "8 giờ rưỡi",
"8 giờ kém 15", "8pm", with "sáng" (morning), "trưa" (noon), "chiều" (afternoon), "tối"
(evening), "đêm" (night) before or after: "8h tối" = 20:00, "3h chiều" = 15:00, "12h trưa" =
12:00, "20h sáng" is refused. Typed plain, "toi" is "tối" only beside a time or before a day
("8h toi", "toi nay"), never after "tuần" ("tuần tới"). A part of the day alone is its usual
hour: sáng 07:00, trưa 12:00, chiều 14:00, tối 19:00, đêm 22:00 ("tối nay", "sáng mai"). The
day is read as by `parse_when`; a time without a day is today if still ahead, else tomorrow;
"bây giờ"/"ngay"/"now" alone is `now`. A day without a time ("30/11") is no moment.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, datetime, time, timedelta
from functools import lru_cache

from bot.domain.amounts import is_amount_word
from bot.domain.text import clean, fold

_TOKEN = re.compile(r"(?P<num>[0-9]+(?:(?: ?[/-] ?|[.,:])[0-9]+)*)|(?P<word>[^\W\d_]+)")
_SEPARATORS = re.compile(r" ?([/.,:-]) ?")


_fold_word = lru_cache(maxsize=4096)(fold)  # the same few hundred words, over and over


class _Token:
    __slots__ = ("key", "kind", "low", "plain", "text")

    def __init__(self, kind: str, text: str) -> None:
        self.kind = kind  # "num" or "word"
        self.text = text  # as typed, for capitals ("chị Mai")
        self.low = text.lower()
        self.key = _fold_word(text) if kind == "word" else text
        self.plain = self.low.isascii()


def _tokenize(text: str) -> list[_Token]:
    return [_Token(m.lastgroup or "word", m.group()) for m in _TOKEN.finditer(clean(text))]


# Word forms, accented: a word typed with other marks is another word ("tôi" is not "tối").
_FORMS = {
    "thu": "thứ",
    "hai": "hai",
    "ba": "ba",
    "tu": "tư",
    "nam": "năm",
    "sau": "sáu sau",
    "bay": "bảy bẩy bây",
    "mai": "mai",
    "mot": "mốt một",
    "ngay": "ngày ngay",
    "toi": "tới tối",
    "sang": "sáng sang",
    "trua": "trưa",
    "chieu": "chiều",
    "dem": "đêm",
    "khuya": "khuya",
    "nay": "nay này",
    "kia": "kia",
    "hom": "hôm",
    "bua": "bữa",
    "qua": "qua",
    "tuan": "tuần",
    "thang": "tháng",
    "cuoi": "cuối",
    "dau": "đầu",
    "giua": "giữa",
    "nua": "nữa",
    "gio": "giờ",
    "ruoi": "rưỡi rưởi",
    "kem": "kém",
    "phut": "phút",
    "chu": "chủ",
    "nhat": "nhật",
    "mung": "mùng",
    "mong": "mồng",
}
_FORM_SETS = {key: frozenset(forms.split()) for key, forms in _FORMS.items()}
_WEEKDAY_WORDS = {"hai": 0, "ba": 1, "tu": 2, "nam": 3, "sau": 4, "bay": 5}
_ENGLISH_DAYS = {name.lower(): i for i, name in enumerate(calendar.day_name)}
_SMALL = {"mot": 1, "hai": 2, "ba": 3, "bon": 4, "nam": 5, "sau": 6, "bay": 7, "tam": 8}
_SMALL |= {"chin": 9, "muoi": 10}
_NOW_NEXT = {"a", "nhe", "nha", "nhen", "ne", "di", "luon", "bay", "bgio", "bjo", "lap", "lien"}
_NOW_NEXT |= {"hom", "ok", "gium", "giup", "voi", "cho", "nhe"}
_NOT_NOW_BEFORE = {"hang", "moi", "cac", "nhung", "trong", "ca", "ban", "nua", "vai", "may"}
_NOT_NOW_BEFORE |= {"tung", "hom", "nhieu", "it", "mot", "sau", "truoc", "cung", "vao"}
# After a dotted "d.m", the text must hold only such words for it to be a date.
_DATE_CONTEXT = {"ngay", "hom", "vao", "luc", "han", "den", "truoc", "tu", "toi", "thang"}
_DATE_CONTEXT |= {"nhe", "nha", "a", "da", "vang", "la", "hen", "khoang", "tam", "ok", "dc"}
_DATE_CONTEXT |= {"duoc", "oi", "em", "anh", "chi", "minh", "thi", "roi", "sang", "trua"}
_DATE_CONTEXT |= {"chieu", "dem", "mung", "mong", "hoac", "hay", "nhen", "ne", "the", "vay"}
# "5/10 tiêu chí", "3/5 hộ": a count, not a day.
_COUNTED = {"tieu", "chi", "ho", "nguoi", "phan", "xa", "thon", "cau", "diem", "lan", "so"}
_NUMBERISH = {"muoi", "tram", "nghin", "ngan", "trieu", "ty", "ti", "tr", "k", "cu", "toi"}
_NUMBERISH |= set(_SMALL)
_GIVING = {"them", "gop", "ho", "hien", "lam", "cong", "tang", "xin", "dang", "ky"}
_PERIODS = {"sang": 7, "trua": 12, "chieu": 14, "toi": 19, "dem": 22, "khuya": 23}
_PERIOD_HOURS = {  # the hours of the clock each part of the day covers
    "sang": range(0, 12),
    "trua": range(10, 15),
    "chieu": range(12, 19),
    "toi": range(17, 24),
    "dem": range(20, 24),
    "khuya": range(21, 24),
}
_PERIOD_FORMS = {"sang": "sáng", "trua": "trưa", "chieu": "chiều", "toi": "tối", "dem": "đêm"}
_PERIOD_FORMS |= {"khuya": "khuya"}
_HOUR_WORDS = {"h", "g", "gio"}
_DAY_BEFORE_NUMBER = ("thu", "ngay", "mung", "mong", "thang")


def _is(tokens: list[_Token], i: int, *keys: str) -> bool:
    """Whether token `i` is one of the words `keys`, typed plain or with the right marks."""
    if i < 0 or i >= len(tokens) or tokens[i].kind != "word" or tokens[i].key not in keys:
        return False
    token = tokens[i]
    forms = _FORM_SETS.get(token.key)
    return forms is None or token.plain or token.low in forms


def _int(tokens: list[_Token], i: int) -> int | None:
    if 0 <= i < len(tokens) and tokens[i].kind == "num" and tokens[i].text.isdigit():
        return int(tokens[i].text) if len(tokens[i].text) <= 4 else None
    return None


def _small(tokens: list[_Token], i: int) -> int | None:
    """A small count in digits or words: "3", "hai", "mười"."""
    value = _int(tokens, i)
    if value is not None:
        return value
    if _is(tokens, i, *_SMALL):
        return _SMALL[tokens[i].key]
    return None


def _safe(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


RECENT = 45  # days: a day-month that passed this recently means that past day, not next year


def _ahead(today: date, month: int, day: int) -> date | None:
    """This day of the year, or the next year's when it has passed (or is 29/2 elsewhere).

    A day that passed within RECENT days is that past day ("1/12" typed on 2/12 is yesterday,
    which the caller can refuse), never silently a year ahead."""
    just_passed = _safe(today.year, month, day)
    if just_passed is not None and 0 < (today - just_passed).days <= RECENT:
        return just_passed
    if month == 12 and today.month == 1:
        last_year = _safe(today.year - 1, month, day)
        if last_year is not None and 0 < (today - last_year).days <= RECENT:
            return last_year
    for year in range(today.year, today.year + 8):
        found = _safe(year, month, day)
        if found is not None and found >= today:
            return found
    return None


def _month_day(today: date, day: int) -> date | None:
    """ "ngày 15": this month's, or the next month's that has it when it has passed."""
    year, month = today.year, today.month
    for _ in range(13):
        found = _safe(year, month, day)
        if found is not None and found >= today:
            return found
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return None


def _next_month(today: date, months: int = 1) -> tuple[int, int]:
    index = today.year * 12 + today.month - 1 + months
    return index // 12, index % 12 + 1


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _year(text: str) -> int | None:
    if len(text) == 4:
        return int(text)
    return 2000 + int(text) if len(text) == 2 else None


def _datey(tokens: list[_Token], skip: int) -> bool:
    """Whether every token but `skip` is a date word: "hạn 2.5 nhé" is a day, "góp 2.5" no."""
    return all(
        i == skip or (t.kind == "word" and t.key in _DATE_CONTEXT) for i, t in enumerate(tokens)
    )


def _digits(tokens: list[_Token], i: int, today: date) -> date | None:
    """ "15/12", "15/12/2026", "15-12", "2026-12-15", "15.12" (see `_datey`)."""
    token = tokens[i]
    parts = _SEPARATORS.split(token.text)
    numbers, seps = parts[::2], set(parts[1::2])
    if not seps or seps & {",", ":"} or len(numbers) > 3 or (len(seps) > 1 and "." in seps):
        return None
    after = tokens[i + 1] if i + 1 < len(tokens) else None
    if after is not None and after.kind == "word" and _counts(after.key):
        return None  # "2.5 triệu", "5-6 triệu", "1.5 ha", "5/10 tiêu chí"
    if "." in seps and not _datey(tokens, i):
        return None
    if len(numbers) == 3 and len(numbers[0]) == 4 and "." not in seps:
        year, month, day = (int(n) for n in numbers)  # ISO: 2026-12-15
        return _safe(year, month, day) if len(numbers[2]) <= 2 else None
    if any(len(n) > 2 for n in numbers[:2]):
        return None
    day, month = int(numbers[0]), int(numbers[1])
    if len(numbers) == 2:
        return _ahead(today, month, day)
    full = _year(numbers[2])
    return None if full is None else _safe(full, month, day)


def _day_month(tokens: list[_Token], i: int, today: date) -> tuple[date, int] | None:
    """ "15 tháng 12", "15 tháng 12 năm 2026", "15 thang 12 2026", "5 tháng sau"."""
    day, month = _int(tokens, i), _int(tokens, i + 2)
    if day is None or not _is(tokens, i + 1, "thang"):
        return None
    if month is None:
        if not _next_word(tokens, i + 2):
            return None
        found = _safe(*_next_month(today), day)  # "mùng 5 tháng sau"
        return (found, i + 3) if found else None
    j = i + 3
    year_at = j + 1 if _is(tokens, j, "nam") else j
    if _int(tokens, year_at) is not None and len(tokens[year_at].text) == 4:
        found = _safe(int(tokens[year_at].text), month, day)
        return (found, year_at + 1) if found else None
    found = _ahead(today, month, day)
    return (found, j) if found else None


def _weekday(tokens: list[_Token], i: int) -> tuple[int, int] | None:
    """ "thứ hai", "thứ 2", "t2", "chủ nhật", "cn", "monday": (0 = Monday…, next index)."""
    token = tokens[i]
    if token.kind != "word":
        return None
    if _is(tokens, i, "thu"):
        number = _int(tokens, i + 1)
        if number is not None and 2 <= number <= 7 and len(tokens[i + 1].text) == 1:
            return number - 2, i + 2
        if _is(tokens, i + 1, *_WEEKDAY_WORDS):
            return _WEEKDAY_WORDS[tokens[i + 1].key], i + 2
        return None
    if token.key == "t" and (number := _int(tokens, i + 1)) is not None:
        return (number - 2, i + 2) if 2 <= number <= 7 and len(tokens[i + 1].text) == 1 else None
    if token.key == "cn":
        return 6, i + 1
    if _is(tokens, i, "chu") and _is(tokens, i + 1, "nhat"):
        return 6, i + 2
    if token.key in _ENGLISH_DAYS:
        return _ENGLISH_DAYS[token.key], i + 1
    return None


def _on_weekday(tokens: list[_Token], i: int, today: date) -> tuple[date, int] | None:
    found = _weekday(tokens, i)
    if found is None:
        return None
    weekday, j = found
    if j < len(tokens) and tokens[j].kind == "word" and is_amount_word(tokens[j].key):
        return None  # "thu 2 trieu" is collecting two million
    monday = today - timedelta(days=today.weekday())
    if _is(tokens, j, "tuan") and _next_word(tokens, j + 1):
        return monday + timedelta(days=7 + weekday), j + 2  # "thứ 6 tuần sau"
    if _is(tokens, j, "tuan") and _is(tokens, j + 1, "nay"):
        return monday + timedelta(days=weekday), j + 2
    ahead = (weekday - today.weekday() - 1) % 7 + 1
    return today + timedelta(days=ahead), j


def _next_week(tokens: list[_Token], j: int, today: date) -> tuple[date, int]:
    """Next Monday, or the day of next week named after it ("tuần sau thứ 6")."""
    monday = today + timedelta(days=7 - today.weekday())
    found = _weekday(tokens, j) if j < len(tokens) else None
    if found is not None:
        return monday + timedelta(days=found[0]), found[1]
    return monday, j


def _saturday(today: date, next_week: bool) -> date:
    if next_week:
        return today + timedelta(days=7 - today.weekday() + 5)
    return today + timedelta(days=(5 - today.weekday()) % 7)


def _now_word(tokens: list[_Token], i: int) -> int | None:
    """The end of "bây giờ", "bgio", "now", or plain "ngay" (right away) at `i`."""
    token = tokens[i]
    if token.key in ("now", "bgio", "bjo"):
        return i + 1
    if _is(tokens, i, "bay") and token.low not in ("bảy", "bẩy") and _is(tokens, i + 1, "gio", "h"):
        return i + 2  # plain "bay gio" is "bây giờ", not "bảy giờ"
    alone = i + 1 == len(tokens) or tokens[i + 1].key in _NOW_NEXT
    after_word = i > 0 and tokens[i - 1].key in _NOT_NOW_BEFORE  # "hàng ngày", "ban ngày"
    if token.low == "ngay" and alone and not (after_word or _numberish(tokens, i - 1)):
        return i + 1
    return None


def _numberish(tokens: list[_Token], i: int) -> bool:
    return 0 <= i < len(tokens) and (tokens[i].kind == "num" or tokens[i].key in _NUMBERISH)


def _relative(tokens: list[_Token], i: int, today: date) -> tuple[date, int] | None:
    """ "3 ngày nữa", "hai tuần nữa", "sau 3 ngày": days from today."""
    at = i + 1 if _is(tokens, i, "sau") else i
    count = _small(tokens, at)
    if count is None or not _is(tokens, at + 1, "ngay", "hom", "tuan", "thang"):
        return None
    if at == i and (not _is(tokens, at + 2, "nua") or (i > 0 and tokens[i - 1].key in _GIVING)):
        return None  # "3 ngày" alone, "góp thêm 3 ngày nữa": an amount of work
    unit = tokens[at + 1].key
    end = at + 3 if at == i else at + 2
    if unit == "thang":
        year, month = _next_month(today, count)
        found = _safe(year, month, min(today.day, calendar.monthrange(year, month)[1]))
        return (found, end) if found else None
    return today + timedelta(days=count * (7 if unit == "tuan" else 1)), end


def _words(tokens: list[_Token], i: int, today: date) -> tuple[date, int, bool] | None:
    """A day said in words at token `i`: (the day, next index, whether it means now)."""
    key = tokens[i].key
    nxt = tokens[i + 1].key if i + 1 < len(tokens) else ""
    end = _now_word(tokens, i)
    if end is not None:
        return today, end, True
    if key == "today" or key == "hnay" or key == "tonight":
        return today, i + 1, False
    if key in ("tomorrow", "yesterday", "hqua"):
        return today + timedelta(days=1 if key == "tomorrow" else -1), i + 1, False
    if key == "next" and nxt in ("week", "month"):
        if nxt == "week":
            return today + timedelta(days=7 - today.weekday()), i + 2, False
        return date(*_next_month(today), 1), i + 2, False
    if key == "weekend":
        return _saturday(today, False), i + 1, False
    if _is(tokens, i, "ngay", "mung", "mong"):
        if _is(tokens, i + 1, "mai"):
            return today + timedelta(days=1), i + 2, False
        if _is(tokens, i + 1, "kia") or _day_after_tomorrow(tokens, i + 1):
            return today + timedelta(days=2), i + 2, False
        day = _int(tokens, i + 1)
        if day is not None and 1 <= day <= 31 and not _is(tokens, i + 2, "thang"):
            after = tokens[i + 2] if i + 2 < len(tokens) else None
            if after is None or after.kind != "word" or not _counts(after.key):
                found = _month_day(today, day)
                return (found, i + 2, False) if found else None
        return None
    if _is(tokens, i, "hom", "bua"):
        shift = {"nay": 0, "qua": -1, "kia": -2, "sau": 1}
        if _is(tokens, i + 1, *shift):
            return today + timedelta(days=shift[nxt]), i + 2, False
        if _day_after_tomorrow(tokens, i + 1):
            return today + timedelta(days=2), i + 2, False
        return None
    if _is(tokens, i, "mai"):
        if _is(tokens, i + 1, "mot"):
            return None  # "mai mốt": some day
        token = tokens[i]
        if i > 0 and token.text[0].isupper() and not token.text.isupper():
            return None  # "chị Mai"
        return today + timedelta(days=1), i + 1, False
    if tokens[i].low == "mốt" or (tokens[i].low == "mot" and len(tokens) == 1):
        if not (_numberish(tokens, i - 1) or _is(tokens, i - 1, "mai")):  # "triệu mốt"
            return today + timedelta(days=2), i + 1, False
        return None
    if _is(tokens, i, *_PERIODS) and _is(tokens, i + 1, "nay"):
        return today, i + 2, False  # "tối nay"
    if _is(tokens, i, "tuan") and _next_word(tokens, i + 1):
        found, end = _next_week(tokens, i + 2, today)
        return found, end, False
    if _is(tokens, i, "sang") and tokens[i].low == "sang":  # "sang tuần", "sang tháng"
        if _is(tokens, i + 1, "tuan"):
            found, end = _next_week(tokens, i + 2, today)
            return found, end, False
        return _month_or_year(tokens, i + 1, today)
    if _is(tokens, i, "cuoi", "dau", "giua"):
        return _edge(tokens, i, today)
    if _is(tokens, i, "thang", "nam") and _next_word(tokens, i + 1):
        return _month_or_year(tokens, i, today)
    return None


def _next_word(tokens: list[_Token], i: int) -> bool:
    """ "sau" or "tới" (next) at `i`, and no number: "năm sáu triệu" is five or six million."""
    if not ((_is(tokens, i, "sau") and tokens[i].low == "sau") or _is(tokens, i, "toi")):
        return False
    after = tokens[i + 1] if i + 1 < len(tokens) else None
    return after is None or after.kind == "num" or not is_amount_word(after.key)


def _day_after_tomorrow(tokens: list[_Token], i: int) -> bool:
    """ "mốt" after "ngày"/"hôm"; "một" typed with its marks is one."""
    return _is(tokens, i, "mot") and tokens[i].low != "một"


def _counts(key: str) -> bool:
    """Whether a word after digits makes them an amount or a count, not a day."""
    return is_amount_word(key) or key in _COUNTED


def _month_or_year(tokens: list[_Token], i: int, today: date) -> tuple[date, int, bool] | None:
    """The first day of next month or next year ("tháng sau", "sang năm")."""
    end = i + 2 if _next_word(tokens, i + 1) else i + 1
    if _is(tokens, i, "thang"):
        return date(*_next_month(today), 1), end, False
    if _is(tokens, i, "nam"):
        return date(today.year + 1, 1, 1), end, False
    return None


def _edge(tokens: list[_Token], i: int, today: date) -> tuple[date, int, bool] | None:
    """ "cuối tuần", "cuối tháng (sau)", "đầu tháng sau", "giữa tháng", "cuối năm"."""
    edge, j = tokens[i].key, i + 1
    later = _next_word(tokens, j + 1)
    end = j + 2 if later or _is(tokens, j + 1, "nay") else j + 1
    if _is(tokens, j, "tuan"):
        if edge == "cuoi":
            return _saturday(today, later), end, False
        if edge == "dau":
            return today + timedelta(days=7 - today.weekday()), end, False
        return None
    if _is(tokens, j, "thang") and (named := _month_number(tokens, j + 1)) is not None:
        # "cuối tháng 3": that month, this year or, once it has passed, the next
        year = today.year if _month_end(today.year, named) >= today else today.year + 1
        day = {"cuoi": _month_end(year, named), "dau": date(year, named, 1)}.get(
            edge, date(year, named, 15)
        )
        if day < today:  # "đầu tháng 12" on the 5th of December: next year's
            day = day.replace(year=day.year + 1)
        return day, j + 2, False
    if _is(tokens, j, "thang") and j + 1 < len(tokens) and tokens[j + 1].kind == "num":
        return None  # "cuối tháng 13": no such month, never this month's end
    if _is(tokens, j, "thang"):
        year, month = _next_month(today, 1) if later else (today.year, today.month)
        if edge == "cuoi":
            return _month_end(year, month), end, False
        if edge == "dau":
            if not later and today.day > 1:
                year, month = _next_month(today, 1)
            return date(year, month, 1), end, False
        mid = date(year, month, 15)
        return (mid if mid >= today else date(*_next_month(today, 1), 15)), end, False
    if _is(tokens, j, "nam") and edge != "giua":
        if edge == "cuoi":
            return date(today.year + later, 12, 31), end, False
        first = date(today.year + later, 1, 1)  # "đầu năm" alone: the next 1st of January
        return (first if first >= today else date(today.year + 1, 1, 1)), end, False
    return None


def _month_number(tokens: list[_Token], i: int) -> int | None:
    """The month a number names at tokens[i] ("3" in "cuối tháng 3"), or None."""
    if i < len(tokens) and tokens[i].kind == "num" and tokens[i].text.isdigit():
        value = int(tokens[i].text)
        return value if 1 <= value <= 12 else None
    return None


def _find_day(tokens: list[_Token], today: date) -> tuple[date, bool] | None:
    """The first day said in the tokens, and whether it was said as "now"."""
    for i, token in enumerate(tokens):
        if token.kind == "num":
            if not token.text.isdigit():
                found = _digits(tokens, i, today)
                if found is not None:
                    return found, False
                continue
            dated = _day_month(tokens, i, today) or _relative(tokens, i, today)
            if dated is not None:
                return dated[0], False
            continue
        if (relative := _relative(tokens, i, today)) is not None:
            return relative[0], False
        if (weekday := _on_weekday(tokens, i, today)) is not None:
            return weekday[0], False
        if _is(tokens, i, "ngay", "mung", "mong") and _day_month(tokens, i + 1, today):
            continue  # "ngày 15 tháng 12": read at the number
        said = _words(tokens, i, today)
        if said is not None:
            return said[0], said[2]
    return None


def parse_when(text: str, today: date) -> date | None:
    """The day a text names ("15/12", "ngày mai", "thứ 6", "cuối tháng"); None if it names none.

    `today` is the caller's today (Vietnam time); a decimal such as "2.5 triệu" is never a day.
    """
    found = _find_day(_tokenize(text), today)
    return found[0] if found else None


# --- times --------------------------------------------------------------------------------


def _period(tokens: list[_Token], i: int) -> str | None:
    """The part of the day at `i`: "tối", not "tới" nor "tôi"; plain "toi" after "tuần" is next."""
    if not _is(tokens, i, *_PERIODS):
        return None
    token = tokens[i]
    if token.plain:
        return (
            None if token.key == "toi" and _is(tokens, i - 1, "tuan", "thang", "nam") else token.key
        )
    return token.key if token.low == _PERIOD_FORMS[token.key] else None


def _clock(tokens: list[_Token], i: int) -> tuple[int, int, int] | None:
    """A time of day at token `i`: (hour, minute, next index), not yet checked for range."""
    token = tokens[i]
    if token.kind == "num" and ":" in token.text:
        parts = token.text.split(":")
        if len(parts) == 2 and all(p.isdigit() and len(p) <= 2 for p in parts):
            return int(parts[0]), int(parts[1]), i + 1
        return None
    hour = _int(tokens, i)
    if hour is None and _is(tokens, i, *_SMALL):
        if token.key == "bay" and token.low != "bảy" and token.low != "bẩy":
            return None  # plain "bay gio" is "bây giờ", now
        hour = _SMALL[token.key]
        if token.key == "muoi" and (extra := _small(tokens, i + 1)) is not None and extra < 3:
            hour, i = 10 + extra, i + 1
        if not _is(tokens, i + 1, "gio"):
            return None
    if hour is None or (token.kind == "num" and len(token.text) > 2):
        return None
    if i > 0 and (tokens[i - 1].key == "t" or _is(tokens, i - 1, *_DAY_BEFORE_NUMBER)):
        return None  # "thứ 7 tối" is Saturday evening, "ngày 15 tối" the evening of the 15th
    j = i + 1
    if j < len(tokens) and tokens[j].kind == "word" and tokens[j].key in ("am", "pm"):
        if not 1 <= hour <= 12:
            return None
        return hour % 12 + (12 if tokens[j].key == "pm" else 0), 0, j + 1
    if j < len(tokens) and tokens[j].kind == "word" and tokens[j].key in _HOUR_WORDS:
        if tokens[j].key == "gio" and not _is(tokens, j, "gio"):
            return None
        j += 1
        minute = _int(tokens, j)
        if minute is not None and len(tokens[j].text) <= 2 and not _is(tokens, j + 1, "thang"):
            j += 1
            if j < len(tokens) and tokens[j].key in ("p", "phut"):
                j += 1
            return hour, minute, j
        if _is(tokens, j, "ruoi"):
            return hour, 30, j + 1
        if _is(tokens, j, "kem") and (less := _int(tokens, j + 1)) is not None and less < 60:
            j += 2
            if j < len(tokens) and tokens[j].key in ("p", "phut"):
                j += 1
            return hour - 1, 60 - less, j
        return hour, 0, j
    if _is(tokens, j, "ruoi") and _period(tokens, j + 1):
        return hour, 30, j + 1  # "8 rưỡi tối"
    if _period(tokens, j) and not _is(tokens, j + 1, "ngay"):
        return hour, 0, j  # "8 tối"
    return None


def _in_period(hour: int, period: str) -> int | None:
    """The hour of the day "8" means "tối" (20), or None when it cannot ("20h sáng")."""
    for candidate in (hour, hour + 12):
        if candidate in _PERIOD_HOURS[period]:
            return candidate
    return None


def _find_clock(tokens: list[_Token]) -> tuple[int, int, int, int] | None:
    """The first time of day: (hour, minute, first token, next token)."""
    for i in range(len(tokens)):
        found = _clock(tokens, i)
        if found is not None:
            return found[0], found[1], i, found[2]
    return None


def _find_period(tokens: list[_Token], start: int, end: int, today: date) -> str | None:
    """The part of the day said beside the time ("8h tối", "tối 8h", "tối lúc 8h") or before a
    day ("tối mai 8h", "sáng thứ 2"); alone, it stands for its usual hour ("tối")."""
    if start >= 0:
        for at in (end, start - 1, start - 2 if _is(tokens, start - 1, "luc") else -1):
            if (period := _period(tokens, at)) is not None:
                return period
    alone = all(t.kind == "word" and t.key in _DATE_CONTEXT for t in tokens)
    for i in range(len(tokens)):
        period = _period(tokens, i)
        if period is None or (tokens[i].low == "sang" and _is(tokens, i + 1, "tuan", "thang")):
            continue  # plain "sang tuần" is next week, not morning
        if alone or _is(tokens, i + 1, "nay") or _find_day(tokens[i + 1 : i + 3], today):
            return period
    return None


def parse_moment(text: str, now: datetime) -> datetime | None:
    """The moment a text names ("18:00 30/11", "8h tối nay", "sáng mai", "bây giờ"), in the
    time zone of `now`; None when no time of day is said or it is not a real time."""
    tokens = _tokenize(text)
    clock = _find_clock(tokens)
    start, end = (clock[2], clock[3]) if clock else (-1, -1)
    period = _find_period(tokens, start, end, now.date())
    day = _find_day(tokens[:start] + tokens[end:] if clock else tokens, now.date())
    if clock is None:
        if period is None:
            return now if day is not None and day[1] else None
        hour, minute = _PERIODS[period], 0
    else:
        adjusted = clock[0] if period is None else _in_period(clock[0], period)
        if adjusted is None:
            return None  # "20h sáng"
        hour, minute = adjusted, clock[1]
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        return None
    moment = datetime.combine(day[0] if day else now.date(), time(hour, minute), now.tzinfo)
    if day is None and moment <= now:
        moment += timedelta(days=1)
    return moment
