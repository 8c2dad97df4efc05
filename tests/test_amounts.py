"""Contribution amounts as villagers really type them, and properties against Babel's output."""

import unicodedata
from decimal import Decimal

import pytest
from babel.numbers import format_compact_decimal, format_currency, format_decimal
from hypothesis import assume, given
from hypothesis import strategies as st

from bot.domain.amounts import Amount, AmountError, Kind, find_amount, parse_amount
from bot.domain.text import fold

MONEY, LAND, DAYS, MAT = Kind.MONEY, Kind.LAND, Kind.WORKDAYS, Kind.MATERIALS
CODES = {"empty", "unparseable", "zero", "negative", "mixed", "too_precise", "no_unit"}
CODES |= {"wrong_kind"}
Case = tuple[str, Kind | None, Amount]


def _id(value: object) -> str:
    """A readable ASCII test id: accents dropped, anything else exotic escaped."""
    text = unicodedata.normalize("NFKD", str(value).replace("đ", "d").replace("Đ", "D"))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return text.encode("ascii", "backslashreplace").decode() or "<empty>"


def money(text: str, value: int, expect: Kind | None = None) -> Case:
    return text, expect, Amount(MONEY, value)


def days(text: str, halves: int, expect: Kind | None = None) -> Case:
    return text, expect, Amount(DAYS, halves)


def land(text: str, m2: int, expect: Kind | None = None) -> Case:
    return text, expect, Amount(LAND, m2)


def mat(text: str, n: int, unit: str | None, what: str | None, expect: Kind | None = None) -> Case:
    return text, expect, Amount(MAT, n, unit, what)


VALID = [
    # money: the forms in the reference, then what else turns up in chats
    money("1,5 tỷ", 1_500_000_000),
    money("1.5 tỷ", 1_500_000_000),
    money("1 tỷ 5", 1_500_000_000),
    money("1ty5", 1_500_000_000),
    money("1 tỷ rưỡi", 1_500_000_000),
    money("1,5 TỶ", 1_500_000_000),
    money("1 ti 500 trieu", 1_500_000_000),
    money("2 triệu", 2_000_000),
    money("2tr", 2_000_000),
    money("2 củ", 2_000_000),
    money("2 trieu", 2_000_000),
    money("2 TRIỆU", 2_000_000),
    money("2tr5", 2_500_000),
    money("2 triệu rưỡi", 2_500_000),
    money("2 trieu ruoi", 2_500_000),
    money("2 triệu 5", 2_500_000),
    money("2,5tr", 2_500_000),
    money("2 triệu 500 nghìn", 2_500_000),
    money("2tr500k", 2_500_000),
    money("2tr500", 2_500_000),
    money("2tr05", 2_050_000),
    money("500k", 500_000),
    money("500 nghìn", 500_000),
    money("500 ngàn", 500_000),
    money("500 nghin", 500_000),
    money("500K", 500_000),
    money("1.500.000đ", 1_500_000),
    money("1.500.000 đ", 1_500_000),
    money("1.500.000 VND", 1_500_000),
    money("1.500.000 vnđ", 1_500_000),
    money("1.500.000 đồng", 1_500_000),
    money("1.500.000,00 đ", 1_500_000),
    money("1,500,000", 1_500_000, MONEY),
    money("1500000", 1_500_000, MONEY),
    money("1500000d", 1_500_000),
    money("1 500 000 đ", 1_500_000),
    money("1.500.000 ₫", 1_500_000),
    money("50 nghìn đồng", 50_000),
    money("1 trăm nghìn", 100_000),
    money("5 trăm nghìn", 500_000),
    money("2 triệu 3 trăm", 2_300_000),
    money("1.500", 1_500, MONEY),
    money("200000", 200_000, MONEY),
    money("500 nghìn", 500_000, MONEY),
    money("tôi góp 2 triệu", 2_000_000),
    money("khoảng 3 triệu thôi ạ", 3_000_000),
    money(unicodedata.normalize("NFD", "2 triệu rưỡi"), 2_500_000),
    money("2\u200btriệu", 2_000_000),
    money("１２ triệu", 12_000_000),
    money("10 nghìn tỷ", 10_000_000_000_000),
    money("1,2345 triệu", 1_234_500),
    money("nửa triệu", 500_000),
    money("một triệu", 1_000_000),
    # workdays, counted in half-days
    days("3 ngày công", 6),
    days("3 cong", 6),
    days("3 công", 6),
    days("3 ngày", 6),
    days("3 ngay", 6),
    days("3 ngày lao động", 6),
    days("10 Ngày Công", 20),
    days("nửa ngày công", 1),
    days("0,5 ngày công", 1),
    days("0.5 cong", 1),
    days("1,5 ngày công", 3),
    days("3 ngày rưỡi", 7),
    days("3", 6, DAYS),
    days("2,5", 5, DAYS),
    days("3 công", 6, DAYS),
    # land, in m²
    land("200 m2", 200),
    land("200m²", 200),
    land("200㎡", 200),
    land("200 mét vuông", 200),
    land("200 met vuong", 200),
    land("200m2 đất", 200),
    land("1.500 m2", 1_500),
    land("0,5 ha", 5_000),
    land("1 hecta", 10_000),
    land("1 héc ta", 10_000),
    land("1 héc-ta", 10_000),
    land("1 sào", 360),
    land("2 sao", 720),
    land("một sào", 360),
    land("1 nghìn m2", 1_000),
    land("300", 300, LAND),
    land("0,5 ha", 5_000, LAND),
    # materials, counted in the unit typed
    mat("5 bao xi măng", 5, "bao", "xi măng"),
    mat("5 bao xi măng", 5, "bao", "xi măng", MAT),
    mat("5 bao xi mang", 5, "bao", "xi mang"),
    mat("2 xe cát", 2, "xe", "cát"),
    mat("100 viên gạch", 100, "viên", "gạch"),
    mat("3 khối đá", 3, "khối", "đá"),
    mat("3 khoi da", 3, "khối", "da"),
    mat("3 m3 cát", 3, "m³", "cát"),
    mat("2 tấn thép", 2, "tấn", "thép"),
    mat("20 cây tre", 20, "cây", "tre"),
    mat("10 bao", 10, "bao", None),
    mat("4", 4, None, None, MAT),
]


@pytest.mark.parametrize(
    ("text", "expect", "amount"), VALID, ids=[_id(f"{t}|{e or 'any'}") for t, e, _ in VALID]
)
def test_typed_amounts(text: str, expect: Kind | None, amount: Amount) -> None:
    assert parse_amount(text, expect) == amount


def test_the_table_is_large_and_covers_every_kind() -> None:
    assert len(VALID) >= 70
    assert {amount.kind for _, _, amount in VALID} == set(Kind)


def error(text: str, code: str, expect: Kind | None = None) -> tuple[str, Kind | None, str]:
    return text, expect, code


ERRORS = [
    error("", "empty"),
    error("   ", "empty"),
    error("\u200b\ufeff", "empty"),
    error("0", "zero"),
    error("0 đồng", "zero"),
    error("0,0 triệu", "zero"),
    error("-5", "negative"),
    error("-2 triệu", "negative"),
    error("âm 5 triệu", "negative"),
    error("abc", "unparseable"),
    error("nhiều lắm", "unparseable"),
    error("mấy triệu", "unparseable"),
    error("tr5", "unparseable"),
    error("triệu", "unparseable"),
    error("1.2.3 triệu", "unparseable"),
    error("góp 2 triệu cho đường thôn", "unparseable"),
    error("3 ngày hoặc 2 triệu", "mixed"),
    error("3 ngày công và 2 triệu", "mixed"),
    error("2 triệu 2 triệu", "mixed"),
    error("5-6 triệu", "mixed"),
    error("1,2345678 triệu", "too_precise"),
    error("0,3 ngày công", "too_precise"),
    error("1,5", "too_precise", MONEY),
    error("2,5 bao xi măng", "too_precise"),
    error("5", "no_unit"),
    error("1.500.000", "no_unit"),
    error("2 triệu", "wrong_kind", LAND),
    error("3 ngày", "wrong_kind", MONEY),
    error("5 bao xi măng", "wrong_kind", MONEY),
    error("200 m2", "wrong_kind", DAYS),
]


@pytest.mark.parametrize(
    ("text", "expect", "code"),
    ERRORS,
    ids=[_id(f"{t}|{e or 'any'}->{c}") for t, e, c in ERRORS],
)
def test_refused_amounts(text: str, expect: Kind | None, code: str) -> None:
    with pytest.raises(AmountError) as caught:
        parse_amount(text, expect)
    assert caught.value.code == code


FOUND: list[tuple[str, Amount | None]] = [
    ("tôi muốn góp 3 ngày công làm đường", Amount(DAYS, 6)),
    ("góp 2 triệu cho đường thôn Nà Làng", Amount(MONEY, 2_000_000)),
    ("Tôi góp 1,5 tỷ.", Amount(MONEY, 1_500_000_000)),
    ("năm 2024 gia đình tôi ủng hộ 500k", Amount(MONEY, 500_000)),
    ("em hiến 200m2 đất làm đường", Amount(LAND, 200)),
    (
        "Nhà tôi xin góp 5 bao xi măng cho nhà văn hóa thôn 3",
        Amount(MAT, 5, "bao", "xi măng"),
    ),
    ("góp 2 triệu ngày 15/10", Amount(MONEY, 2_000_000)),
    ("góp 5 bao xi măng trước ngày 20/10", Amount(MAT, 5, "bao", "xi măng")),
    ("tôi muốn đóng góp", None),
    ("xã tôi đạt bao nhiêu tiêu chí", None),
    ("xã tôi đạt 19/19 tiêu chí", None),
    ("góp 3 ngày công hoặc 2 triệu", None),
    ("góp -5 triệu", None),
    ("góp 0 đồng", None),
    ("", None),
]


@pytest.mark.parametrize(("sentence", "amount"), FOUND, ids=[_id(text) for text, _ in FOUND])
def test_find_amount_in_a_sentence(sentence: str, amount: Amount | None) -> None:
    assert find_amount(sentence) == amount


@given(st.integers(min_value=0, max_value=10**13))
def test_babel_formatted_money_parses_back(n: int) -> None:
    grouped = format_decimal(n, locale="vi")
    typed = [grouped, grouped + " đồng", grouped + "đ", format_currency(n, "VND", locale="vi")]
    for text in typed:
        if n == 0:
            with pytest.raises(AmountError) as caught:
                parse_amount(text, MONEY)
            assert caught.value.code == "zero"
        else:
            assert parse_amount(text, MONEY) == Amount(MONEY, n), text


_COMPACT_WORDS = {"triệu": 10**6, "tỷ": 10**9, "nghìn tỷ": 10**12}


@given(
    st.one_of(
        st.integers(min_value=10, max_value=99_999).map(lambda m: m * 100_000),
        st.builds(
            lambda m, scale: m * scale,
            st.integers(min_value=10, max_value=9_999),
            st.sampled_from([10**5, 10**8, 10**11]),
        ),
    )
)
def test_babel_compact_money_parses_back(n: int) -> None:
    text = format_compact_decimal(n, format_type="long", locale="vi", fraction_digits=1)
    number, _, word = text.partition(" ")
    assume(Decimal(number.replace(".", "").replace(",", ".")) * _COMPACT_WORDS[word] == n)
    assert parse_amount(text) == Amount(MONEY, n), text


_DIGIT_WORDS = ["không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín"]
_SCALES = ["", "nghìn", "triệu", "tỷ"]


def _spell_group(n: int, inner: bool) -> list[str]:
    """0 < n < 1000 as read aloud; `inner` when a higher group comes first ("không trăm")."""
    hundreds, tens, units = n // 100, n // 10 % 10, n % 10
    words = [_DIGIT_WORDS[hundreds], "trăm"] if hundreds or inner else []
    if tens == 0:
        words += (["lẻ"] if words else []) + [_DIGIT_WORDS[units]] if units else []
    elif tens == 1:
        words += ["mười"] + ([{5: "lăm"}.get(units, _DIGIT_WORDS[units])] if units else [])
    else:
        after = {1: "mốt", 4: "tư", 5: "lăm"}.get(units, _DIGIT_WORDS[units])
        words += [_DIGIT_WORDS[tens], "mươi"] + ([after] if units else [])
    return words


def spell(n: int) -> str:
    """A whole number below 10¹² in words, the way a careful speaker reads it out:
    1 000 005 is "một triệu không nghìn không trăm lẻ năm"."""
    groups = [n // 1000**k % 1000 for k in range(len(_SCALES))][::-1]
    first = next(k for k, g in enumerate(groups) if g)
    last = max(k for k, g in enumerate(groups) if g)
    words: list[str] = []
    for k in range(first, last + 1):
        scale = _SCALES[len(groups) - 1 - k]
        if groups[k]:
            words += _spell_group(groups[k], inner=k > first)
        else:
            words.append("không")
        words += [scale] if scale else []
    return " ".join(words)


def test_the_speller_reads_as_people_do() -> None:
    assert spell(105) == "một trăm lẻ năm"
    assert spell(21) == "hai mươi mốt"
    assert spell(15) == "mười lăm"
    assert spell(2_500_000) == "hai triệu năm trăm nghìn"
    assert spell(1_000_005) == "một triệu không nghìn không trăm lẻ năm"


@given(st.integers(min_value=1, max_value=10**12 - 1))
def test_spelt_out_money_parses_back(n: int) -> None:
    words = spell(n)
    assert parse_amount(words + " đồng") == Amount(MONEY, n), words
    assert parse_amount(fold(words) + " dong") == Amount(MONEY, n), fold(words)


@given(st.integers(min_value=1, max_value=99_999))
def test_spelt_out_workdays_and_land_parse_back(n: int) -> None:
    words = spell(n)
    assert parse_amount(words + " ngày công") == Amount(DAYS, 2 * n), words
    assert parse_amount(fold(words) + " met vuong") == Amount(LAND, n), words
    assert find_amount(f"nhà tôi góp {words} ngày công làm đường") == Amount(DAYS, 2 * n), words


def _check_total(text: str, expect: Kind | None) -> None:
    try:
        amount = parse_amount(text, expect)
    except AmountError as exc:
        assert exc.code in CODES
    else:
        assert isinstance(amount, Amount)
        assert amount.value > 0
        assert expect is None or amount.kind is expect
    found = find_amount(text)
    assert found is None or isinstance(found, Amount)


_EXPECT = st.sampled_from([None, *Kind])


@given(st.text(), _EXPECT)
def test_any_text_gives_an_amount_or_an_amount_error(text: str, expect: Kind | None) -> None:
    _check_total(text, expect)


_PIECES = [
    *"0123456789.,- ",
    "1,5",
    "1.500",
    "000",
    "tr",
    "triệu",
    "k",
    "nghìn",
    "trăm",
    "tỷ",
    "rưỡi",
    "nửa",
    "âm",
    "ngày",
    "công",
    "m2",
    "m²",
    "ha",
    "héc",
    "ta",
    "sào",
    "bao",
    "xi măng",
    "đ",
    "₫",
    "hoặc",
    "\u200b",
    "\u0301",
    "１",
    " hai",
    " mươi",
    " mười",
    " mốt",
    " lẻ",
    " tư",
    " lăm",
    " không",
    " chục",
    " tỏi",
    " toi",
    " tôi",
    " củ",
    " buổi",
    " phẩy",
    " nửa",
    "1/2",
    "15/10",
    "18:00",
]


@given(st.lists(st.sampled_from(_PIECES), max_size=12).map("".join), _EXPECT)
def test_amount_like_junk_gives_an_amount_or_an_amount_error(
    text: str, expect: Kind | None
) -> None:
    _check_total(text, expect)
