"""Contribution amounts as villagers type them: "2tr5", "1,5 tỷ", "hai triệu rưỡi", "3 buổi".

Every amount is stored as a whole number of base units, so that nothing downstream needs floats:

- MONEY in đồng;
- LAND in m² (1 ha = 10 000 m²; 1 sào = 360 m² and 1 mẫu = 3 600 m², the Bắc Bộ measures);
- WORKDAYS in *half*-workdays, because "nửa ngày công" (half a day's labour) is common and must
  be exact: "3 công" is 6, "0,5 ngày công" and "1 buổi" are 1, "0,3 ngày công" is refused as
  too precise;
- MATERIALS as a whole count of the unit typed ("bao", "xe", "khối"…), kept in `quantity_text`
  with what it is ("xi măng") in `description`; we never convert between material units.

Digits. A "." or "," followed by groups of exactly three digits groups thousands ("1.500.000",
"1,500,000"), unless a multiplier follows and there is only one, in which case it is the decimal
mark ("1.5 tỷ", "1,500 triệu" = 1,5 triệu). Digits after a multiplier continue it ("2tr5" =
2,5 triệu, "1 tỷ 500" = 1,5 tỷ); spaces may group thousands too ("1 500 000 đ"). "1/2" before
a unit is a half ("1/2 ha"); otherwise "15/10" and "18:00" are dates and times, not amounts.

Words. Numbers may be spelt out: một, hai, ba, bốn, năm, sáu, bảy, tám, chín; "mười" (ten),
"mươi" (tens, "hai mươi"), then "mốt" (1), "tư" (4), "lăm"/"nhăm" (5) for the unit after
tens ("hai mươi mốt", "mười lăm"); "trăm", with "lẻ"/"linh" for a zero ten ("một trăm lẻ năm"
= 105) and "không trăm" for a zero hundred; "chục" (ten), "nghìn"/"ngàn", "triệu", "tỷ"/"tỉ";
"phẩy" as the decimal mark ("hai phẩy năm triệu"). As people say them, a lone digit after a
multiplier is its tenth ("hai triệu rưỡi" = 2,5 triệu, "triệu mốt" = 1,1 triệu, "trăm hai" =
120) and a group below a thousand after one stands for the next lower multiplier ("hai triệu
ba trăm" = 2 300 000, "một nghìn năm trăm" = 1 500); read out in full, "không" keeps a place
("một triệu không trăm lẻ năm" = 1 000 005, "một triệu không nghìn ba trăm" = 1 000 300).
"rưỡi" is half the unit before it ("một ngày rưỡi" = 3 half-days), "nửa" a half. Slang: "củ" =
triệu, "tỏi" = tỷ, "k" = nghìn; English "2 million", "3 days", "half a day" work too.

Ambiguity. Without diacritics many number words are other words too: "nam" is also "năm"
(year) and a name, "ba" is also father, "sau" is "after", "tam" is "tạm" (roughly), "toi" is
"tôi" (I). A word counts as a number only where it forms one — before a multiplier or a unit,
or inside a spelt number — and when typed with other diacritics ("tạm", "sâu", "tôi", "nữa",
"cụ") it is never a number. After a number "toi" is "tỏi" (1 toi = 1 tỷ), except after the
single words "ba", "nam", … ("ba toi" is my father) or before a verb ("3 toi gop" = 3, I give).
A one-word tail that is also another word ("2 triệu năm nay", "2 triệu sau tết") is read as
the tail only at the end of the reply.

`parse_amount` reads a reply that should be one amount: a word it does not know is an error
("unparseable"), never skipped; polite words around it (dạ, vâng, ạ, em góp, nhé…) are fine.
`find_amount` picks the one amount out of a sentence and ignores other words, but gives None
rather than a guess when two numbers touch ("hai ba ngày") or a vague word comes first ("vài
chục nghìn"). The bot always confirms an amount back in full, so the rare misreading of an
ambiguous form is caught by the user rather than guessed silently.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from functools import lru_cache
from typing import NamedTuple

from bot.domain.text import clean, fold


class Kind(StrEnum):
    WORKDAYS = "workdays"
    LAND = "land"
    MONEY = "money"
    MATERIALS = "materials"


@dataclass(frozen=True)
class Amount:
    kind: Kind
    value: int  # in the base unit of its kind, see the module docstring
    quantity_text: str | None = None  # materials only: the unit word, e.g. "bao"
    description: str | None = None  # materials only: what it is, e.g. "xi măng"


class AmountError(ValueError):
    """Why a text is not one usable amount. `code` is stable, the message is for logs:

    empty, unparseable, zero, negative, mixed (two amounts in one reply), too_precise (not a
    whole number of base units), no_unit (a bare number and no expected kind), wrong_kind.
    """

    def __init__(self, code: str, text: str = "") -> None:
        super().__init__(f"{code}: {text!r}")
        self.code = code


def _forms(spelled: str) -> frozenset[str]:
    return frozenset(spelled.split())


@dataclass(frozen=True)
class _Unit:
    kind: Kind
    factor: int  # base units per one of this unit
    word: str  # canonical spelling, stored as quantity_text for materials
    forms: frozenset[str] = frozenset()  # its accented spellings, when another word folds alike
    marked: bool = False  # typed plain among accented words it is another word ("5 sao" stars)


def _units(
    kind: Kind, factor: int, word: str, *keys: str, forms: str = "", marked: bool = False
) -> dict[str, _Unit]:
    return {key: _Unit(kind, factor, word, _forms(forms), marked) for key in keys}


# Keys are folded (see bot.domain.text.fold); a multi-word unit is its words joined by one space.
_UNITS: dict[str, _Unit] = {
    **_units(Kind.MONEY, 1, "đồng", "dong", "d", "vnd", "₫", "dongs"),
    **_units(Kind.WORKDAYS, 2, "ngày công", "ngay cong", "ngay lao dong", "ngay cong lao dong"),
    **_units(Kind.WORKDAYS, 2, "ngày công", "cong lao dong", "work day", "work days", "workday"),
    **_units(Kind.WORKDAYS, 2, "ngày công", "workdays", "day", "days", "man day", "man days"),
    **_units(Kind.WORKDAYS, 2, "ngày công", "ngay", forms="ngày"),
    **_units(Kind.WORKDAYS, 2, "ngày công", "cong", forms="công"),  # "cộng" is plus
    **_units(Kind.WORKDAYS, 1, "buổi", "buoi", forms="buổi"),  # "bưởi" is a pomelo
    **_units(Kind.WORKDAYS, 1, "buổi", "buoi cong", "buoi lao dong"),
    **_units(Kind.LAND, 1, "m²", "m2", "met vuong", "m vuong", "sqm", "square meter"),
    **_units(Kind.LAND, 1, "m²", "square meters", "square metre", "square metres"),
    **_units(Kind.LAND, 10_000, "ha", "ha", forms="ha"),  # "hạ", "hà" are other words
    **_units(Kind.LAND, 10_000, "ha", "hecta", "hec ta", "hectare", "hectares"),
    **_units(Kind.LAND, 10_000, "ha", "hec", "hecta", forms="héc hécta"),
    # sào Bắc Bộ, not the Trung Bộ 500 m²; "sao" is a star, "mau" quick, "màu" a colour.
    **_units(Kind.LAND, 360, "sào", "sao", forms="sào", marked=True),
    **_units(Kind.LAND, 3_600, "mẫu", "mau", forms="mẫu", marked=True),  # 10 sào
}
# Material units are kept as counted: a "khối" (m³) of sand is never turned into tonnes.
_MATERIALS = "bao xe khối viên tấn tạ kg cây m³ thùng bó bộ tấm cuộn chiếc cái can bình"
_UNITS |= {fold(word): _Unit(Kind.MATERIALS, 1, word) for word in _MATERIALS.split()}
_DEFAULT_UNIT = {kind: _Unit(kind, 2 if kind is Kind.WORKDAYS else 1, "") for kind in Kind}
_LONGEST_UNIT = max(key.count(" ") + 1 for key in _UNITS)


@dataclass(frozen=True)
class _Multiplier:
    factor: int
    hint: str  # "money" when it says money on its own, "weak" for nghìn, "" for trăm and chục
    forms: frozenset[str] = frozenset()


def _mult(factor: int, hint: str, forms: str = "") -> _Multiplier:
    return _Multiplier(factor, hint, _forms(forms))


# "k", "tr", "củ" (slang for triệu), "tỏi" (slang for tỷ) and "tỷ" say money on their own;
# "nghìn" says money only when nothing else does ("1 nghìn m2" is land); "trăm" is a number.
_MULTIPLIERS = {
    "tram": _mult(100, "", "trăm"),
    "chuc": _mult(10, "", "chục"),
    "nghin": _mult(1_000, "weak"),
    "ngin": _mult(1_000, "weak"),  # "ngìn", a common slip
    "ngan": _mult(1_000, "weak", "ngàn"),
    "thousand": _mult(1_000, "weak"),
    "k": _mult(1_000, "money"),
    "tr": _mult(10**6, "money"),
    "trieu": _mult(10**6, "money"),
    "cu": _mult(10**6, "money", "củ"),  # "cụ" is an elder
    "million": _mult(10**6, "money"),
    "millions": _mult(10**6, "money"),
    "ty": _mult(10**9, "money", "tỷ tỉ"),
    "ti": _mult(10**9, "money", "tỉ tỷ"),  # "tí" is a little
    "toi": _mult(10**9, "money", "tỏi"),  # "tôi" is I; see _multipliers
    "billion": _mult(10**9, "money"),
    "billions": _mult(10**9, "money"),
}
# Multipliers that stand for "one …" when something follows: "triệu rưỡi", "trăm nghìn".
_BARE_SCALES = {"tram", "chuc", "nghin", "ngan", "trieu", "ty", "ti"}

_Words = dict[str, tuple[int, frozenset[str]]]


def _words(**spec: tuple[int, str]) -> _Words:
    return {key: (value, _forms(forms)) for key, (value, forms) in spec.items()}


# Number words, with their accented spellings: a word typed with other marks ("tạm", "sâu",
# "Hải") is another word; typed without marks it is read by its place in the number.
_DIGITS = _words(
    mot=(1, "một"),
    hai=(2, "hai"),
    ba=(3, "ba"),
    bon=(4, "bốn"),
    nam=(5, "năm"),
    sau=(6, "sáu"),
    bay=(7, "bảy bẩy"),
    tam=(8, "tám"),
    chin=(9, "chín"),
)
# The unit after tens ("hai mươi mốt", "hai mươi tư", "mười lăm") and a digit after a
# multiplier ("triệu mốt", "trăm tư").
_AFTER_TENS = _DIGITS | _words(mot=(1, "một mốt"), tu=(4, "tư"), lam=(5, "lăm"), nham=(5, "nhăm"))
_TAIL_DIGITS = _DIGITS | _words(mot=(1, "một mốt"), tu=(4, "tư"))
_DECIMAL_DIGITS = _AFTER_TENS | _words(khong=(0, "không"))
_TEN_HEAD = _forms("mười")  # "mươi" alone is "some tens" (vài mươi), not ten
_TEN_AFTER = _forms("mươi mười")
_WORD_FORMS = {
    "tram": _forms("trăm"),  # "trạm" is a station
    "khong": _forms("không"),
    "le": _forms("lẻ"),  # "lễ" is a holiday
    "linh": _forms("linh"),
    "ruoi": _forms("rưỡi rưởi"),  # "ruồi" is a fly
    "nua": _forms("nửa"),  # "nữa" is "more"
    "half": frozenset(),
    "phay": _forms("phẩy phảy"),
}
# Single words that are as often something else: "ba tôi" is my father, "năm nay" this year.
_AMBIGUOUS = {"ba", "nam", "sau", "bay", "tam", "mot", "tu"}
# Plain words after which "toi" is more likely "tôi" than "tỏi": "ba toi" is my father.
_BEFORE_PRONOUN = {"ba", "nam", "sau", "bay", "tam"}
# Unambiguous one-word tails after a multiplier ("2 triệu sáu" even before other words).
_SURE_TAILS = _forms("hai bốn bon sáu bảy bẩy tám chín chin một mốt tư")
# After a number, "toi" before one of these is the pronoun: "thôn 3 toi gop" = thôn 3, I give.
_PRONOUN_NEXT = {"gop", "muon", "xin", "se", "dang", "ung", "dong", "hien", "co", "la", "cung"}
_PRONOUN_NEXT |= {"da", "di", "nop", "tang", "can", "khong", "ko", "van", "chi", "thi", "cu"}

# Words that may surround an amount in a reply without changing it ("dạ em góp 2 triệu ạ").
_FILLER = {"toi", "em", "e", "minh", "mk", "mik", "mjnh", "anh", "chi", "c", "co", "chu", "bac"}
_FILLER |= {"ong", "chau", "nha", "gia", "dinh", "xin", "se", "gop", "dong", "ung", "ho", "dang"}
_FILLER |= {"ky", "them", "hien", "tang", "nop", "muon", "khoang", "tam", "chung", "thoi", "a"}
_FILLER |= {"nhe", "nha", "nhen", "ne", "nua", "la", "duoc", "dc", "cho", "da", "vang", "u"}
_FILLER |= {"uh", "ok", "oke", "okie", "vay", "oi", "thua", "luon", "ah", "nhe", "nghe", "roi"}
_FILLER |= {"dat", "tien", "mat", "hoac", "hay", "va", "voi"}  # "200m2 đất"; "hoặc" for mixed
_FILLER |= {"and", "or", "i", "give", "pledge"}
_DESCRIPTION_STOP = {"cho", "de", "va", "hoac", "voi", "lam", "o", "tai", "vao", "nhe", "a"}
_DESCRIPTION_STOP |= {"nha", "thoi", "nua", "gop", "ung", "truoc", "sau", "trong", "den", "tu"}
_DESCRIPTION_STOP |= {"khi", "luc", "hom", "mai", "thu", "tuan", "thang", "nam"}  # then a date
_DESCRIPTION_STOP |= {"nhen", "ne", "luon", "ok", "oke", "vang", "ah"}  # not "da": đá
# A number right after one of these names a place or a year ("thôn 3", "năm 2024").
_LABELS = {"thon", "xom", "to", "doi", "ap", "khu", "so", "lo", "phong", "nam"}
# A number right after one of these is vague ("vài chục nghìn", "hơn 2 triệu"): find_amount
# gives no answer rather than a wrong one.
_VAGUE = {"vai", "may", "hon", "tren", "duoi", "gan", "ngoai", "it", "nhieu", "over", "about"}
# "ngày" is a date word, not workdays, before these: "sau ngày mai", "ngày 15".
_NOT_DAYS_AFTER = {"mai", "kia", "nay", "mot", "hom", "le", "tet", "nghi", "thu", "cuoi", "dau"}

_TOKEN = re.compile(
    r"(?P<date>[0-9]{1,4}(?: ?[/:] ?[0-9]{1,4})+)"
    r"|(?P<num>[0-9]{1,3}(?: [0-9]{3})+(?![0-9.,/:])|[0-9]+(?:[.,][0-9]+)*)"
    r"|(?P<word>[mM][23](?![0-9])|[^\W\d_]+)"
    r"|(?P<sym>₫|-(?= ?[0-9])|(?<=[0-9]):)"  # "Tiêu chí 2: Hạ tầng" is no amount
)
_GROUPED = re.compile(r"(?!0)[0-9]{1,3}(?:([.,])[0-9]{3})(?:\1[0-9]{3})*")
_FRACTION = re.compile(r"([1-9]) ?/ ?([1-9]|10)")
_MAX_DIGITS = 30  # far beyond any real amount; keeps int() and Fraction cheap on junk input


def is_amount_word(key: str) -> bool:
    """Whether a folded word starts a unit or is a multiplier ("trieu", "ha", "ngay", "m")."""
    return key in _AMOUNT_WORDS


_UNIT_FIRST = frozenset(key.split()[0] for key in _UNITS)
# The words a quantity may start with, besides digits.
_STARTS = set(_DIGITS) | {"muoi", "tram", "khong", "nua", "half"} | _BARE_SCALES
_AMOUNT_WORDS = _UNIT_FIRST | set(_MULTIPLIERS) | {"m"}  # "m" for "m2" typed in pieces


class _Token(NamedTuple):
    kind: str  # "num", "word", "sym" or "date" (a date or time such as "15/10", "18:00")
    text: str  # as typed (NFKC), for descriptions
    key: str  # folded, for matching
    low: str  # lower case as typed, to tell "tạm" from "tám"
    plain: bool  # typed without diacritics
    marked: bool  # some word of the text has diacritics


@dataclass
class _Hit:
    """One quantity found in the tokens, not yet checked against what was expected."""

    start: int
    end: int
    quantity: Fraction
    unit: _Unit | None = None
    hint: str = ""  # "money" for k/tr/triệu/củ/tỷ, "weak" for nghìn, "" otherwise
    negative: bool = False
    unit_text: str = ""
    description: str | None = None
    words: bool = False  # spelt in words with neither multiplier nor unit ("ba", "năm")


_fold_word = lru_cache(maxsize=4096)(fold)  # the same few hundred words, over and over


def _tokenize(text: str) -> list[_Token]:
    text = unicodedata.normalize("NFKC", clean(text))
    marked = not text.isascii()
    tokens = []
    for match in _TOKEN.finditer(text):
        kind, value = match.lastgroup or "sym", match.group()
        key = value if kind != "word" else _fold_word(value)
        low = value.lower()
        tokens.append(_Token(kind, value, key, low, low.isascii(), marked))
    return tokens


def _typed_as(token: _Token, forms: frozenset[str]) -> bool:
    """Whether a word is typed plain or as one of its accented `forms` (none: any way)."""
    return not forms or token.plain or token.low in forms


def _is(tokens: list[_Token], i: int, key: str, forms: frozenset[str] | None = None) -> bool:
    """Whether token `i` is the word `key`, typed plain or with one of its `forms`."""
    if i >= len(tokens) or tokens[i].key != key or tokens[i].kind != "word":
        return False
    return _typed_as(tokens[i], _WORD_FORMS.get(key, frozenset()) if forms is None else forms)


def _lookup(tokens: list[_Token], i: int, table: _Words) -> int | None:
    if i >= len(tokens) or tokens[i].kind != "word":
        return None
    entry = table.get(tokens[i].key)
    if entry is None:
        return None
    value, forms = entry
    return value if _typed_as(tokens[i], forms) else None


def _number(text: str, decimal: bool) -> Fraction | None:
    """The value of digits as typed; `decimal` when a multiplier follows ("1,5 tỷ")."""
    text = text.replace(" ", "")
    seps = [ch for ch in text if ch in ".,"]
    if len(text) > _MAX_DIGITS:
        return None
    if not seps:
        return Fraction(int(text))
    if _GROUPED.fullmatch(text) and not (decimal and len(seps) == 1):
        return Fraction(int(re.sub(r"[.,]", "", text)))
    head, tail = text[: text.rfind(seps[-1])], text[text.rfind(seps[-1]) + 1 :]
    if len(seps) == 1 or (set(seps[:-1]) != {seps[-1]} and _GROUPED.fullmatch(head)):
        return Fraction(re.sub(r"[.,]", "", head) + "." + tail)  # "1,5", "1.500,5", "1,500.5"
    return None


def _multiplier(tokens: list[_Token], i: int, after_ambiguous: bool) -> _Multiplier | None:
    if i >= len(tokens) or tokens[i].kind != "word":
        return None
    token = tokens[i]
    found = _MULTIPLIERS.get(token.key)
    if found is None or not _typed_as(token, found.forms):
        return None
    if token.key == "toi" and token.plain:  # "toi" typed plain: tỏi, or the pronoun tôi?
        pronoun = i + 1 < len(tokens) and tokens[i + 1].key in _PRONOUN_NEXT
        if after_ambiguous or pronoun:
            return None
    return found


def _multipliers(
    tokens: list[_Token], i: int, after_ambiguous: bool = False
) -> tuple[int, str, int]:
    """The product of the multiplier words from `i` ("nghìn tỷ"), their hint, the next index."""
    product, hint = 1, ""
    while product < 10**18:
        found = _multiplier(tokens, i, after_ambiguous and product == 1)
        if found is None:
            break
        product *= found.factor
        if found.hint == "money":
            hint = "money"
        elif found.hint and not hint:
            hint = found.hint
        i += 1
    return product, hint, i


def _unit(tokens: list[_Token], i: int) -> tuple[_Unit, int] | None:
    if i >= len(tokens) or tokens[i].key not in _UNIT_FIRST:
        return None
    for n in range(_LONGEST_UNIT, 0, -1):
        words = tokens[i : i + n]
        if len(words) == n and all(t.kind in ("word", "sym") for t in words):
            unit = _UNITS.get(" ".join(t.key for t in words))
            if unit is None or (n == 1 and not _typed_as(words[0], unit.forms)):
                continue
            if unit.marked and words[0].plain and words[0].marked:
                continue  # "sản phẩm đạt 5 sao": stars, not sào
            if unit.word == "ngày công" and words[-1].key == "ngay" and _date_after(tokens, i + n):
                continue
            return unit, i + n
    return None


def _date_after(tokens: list[_Token], i: int) -> bool:
    """Whether "ngày" before token `i` names a day ("ngày mai", "ngày 15") rather than workdays."""
    if i >= len(tokens):
        return False
    token = tokens[i]
    if token.kind == "date" or token.key in _NOT_DAYS_AFTER:
        return True
    if token.kind != "num" or not token.text.isdigit() or not 1 <= int(token.text) <= 31:
        return False
    later, _hint, j = _multipliers(tokens, i + 1)
    return later == 1 and _unit(tokens, j) is None


def _tens(tokens: list[_Token], i: int, tail: bool) -> tuple[int, int, bool] | None:
    """ "mười lăm", "hai mươi mốt", "ba mươi", "bảy": (value, next index, a lone digit?)."""
    if _is(tokens, i, "muoi", _TEN_HEAD):
        value, j = 10, i + 1
    else:
        digit = _lookup(tokens, i, _TAIL_DIGITS if tail else _DIGITS)
        if digit is None:
            return None
        if not _is(tokens, i + 1, "muoi", _TEN_AFTER):
            return digit, i + 1, True
        value, j = digit * 10, i + 2
    unit = _lookup(tokens, j, _AFTER_TENS)
    if unit is not None and not (_is(tokens, j + 1, "muoi") or _is(tokens, j + 1, "tram")):
        return value + unit, j + 1, False
    return value, j, False


def _group(tokens: list[_Token], i: int, tail: bool = False) -> tuple[int, int, bool] | None:
    """A number below 1000 in words: "một trăm lẻ năm", "hai mươi mốt", "trăm rưỡi"."""
    if _is(tokens, i, "tram"):  # bare "trăm": one hundred, if something follows
        hundreds, j = 1, i + 1
    else:
        digit = _lookup(tokens, i, _DIGITS)
        if digit is None and _is(tokens, i, "khong") and _is(tokens, i + 1, "tram"):
            digit = 0  # "một nghìn không trăm lẻ năm"
        if digit is None or not _is(tokens, i + 1, "tram"):
            return _tens(tokens, i, tail)
        hundreds, j = digit, i + 2
    value = hundreds * 100
    if _is(tokens, j, "le") or _is(tokens, j, "linh"):
        unit = _lookup(tokens, j + 1, _DIGITS)
        if unit is not None:
            return value + unit, j + 2, False
    elif _is(tokens, j, "ruoi"):
        return value + 50, j + 1, False
    else:
        tens = _tens(tokens, j, tail=True)
        if tens is not None:
            return value + (tens[0] * 10 if tens[2] else tens[0]), tens[1], False
    if j == i + 1 and _multiplier(tokens, j, False) is None:
        return None  # "trăm" alone is a word ("trạm" typed plain), not a hundred
    return value, j, False


def _decimals(tokens: list[_Token], i: int) -> tuple[Fraction, int] | None:
    """The digits after "phẩy": "năm" → 0,5; "hai lăm" → 0,25; "5" → 0,5."""
    if i < len(tokens) and tokens[i].kind == "num" and tokens[i].text.isdigit():
        digits, j = tokens[i].text, i + 1
    else:
        digits, j = "", i
        while (digit := _lookup(tokens, j, _DECIMAL_DIGITS)) is not None:
            digits, j = digits + str(digit), j + 1
    if not digits or len(digits) > _MAX_DIGITS:
        return None
    return Fraction(int(digits), 10 ** len(digits)), j


def _head(tokens: list[_Token], i: int) -> tuple[Fraction, int, bool, bool] | None:
    """The number a hit starts with: (value, next index, spelt in words, an ambiguous word)."""
    first = tokens[i]
    if first.kind == "num":
        decimal = _multiplier(tokens, i + 1, False) is not None
        value = _number(first.text, decimal)
        if value is None:
            return None
        if first.text.isdigit() and _is(tokens, i + 1, "phay"):  # "1 phẩy 5 tỷ"
            decimals = _decimals(tokens, i + 2)
            if decimals is not None:
                return value + decimals[0], decimals[1], False, False
        return value, i + 1, False, False
    if first.kind == "date":
        fraction = _FRACTION.fullmatch(first.text)
        if fraction is None or int(fraction[1]) >= int(fraction[2]):
            return None
        if _multiplier(tokens, i + 1, False) is None and _unit(tokens, i + 1) is None:
            return None  # "15/10", "1/2" alone: a date, not a half
        return Fraction(int(fraction[1]), int(fraction[2])), i + 1, False, False
    if _is(tokens, i, "nua") or _is(tokens, i, "half"):
        j = i + 2 if first.key == "half" and _is(tokens, i + 1, "a") else i + 1
        if _multiplier(tokens, j, False) is None and _unit(tokens, j) is None:
            return None  # "nữa", typed plain, is "more": "2 triệu nữa"
        return Fraction(1, 2), j, False, False
    if first.key in _BARE_SCALES and first.key != "tram" and _multiplier(tokens, i, False):
        nxt = i + 1
        if (
            _is(tokens, nxt, "ruoi")
            or _multiplier(tokens, nxt, False) is not None
            or _lookup(tokens, nxt, _TAIL_DIGITS) is not None
        ):
            return Fraction(1), i, True, False  # "triệu rưỡi", "nghìn tỷ", "triệu hai"
        return None
    group = _group(tokens, i)
    if group is None:
        if _is(tokens, i, "khong") and _is(tokens, i + 1, "phay"):
            group = (0, i + 1, True)  # "không phẩy năm ha"
        else:
            return None
    value, j = Fraction(group[0]), group[1]
    ambiguous = j == i + 1 and first.plain and first.key in _BEFORE_PRONOUN
    if _is(tokens, j, "phay"):
        decimals = _decimals(tokens, j + 1)
        if decimals is not None:
            value, j, ambiguous = value + decimals[0], decimals[1], False
    return value, j, True, ambiguous


def _other_unit(tokens: list[_Token], i: int, hint: str) -> bool:
    """Whether a unit other than money starts at `i` after money: "2 triệu 3 ngày" is two
    amounts, "một nghìn không trăm lẻ một ngày công" one."""
    found = _unit(tokens, i) if hint == "money" else None
    return found is not None and found[0].kind is not Kind.MONEY


def _tail_ends(tokens: list[_Token], i: int, k: int) -> bool:
    """Whether a one-word tail at `i` ("2 triệu sáu") may be taken; the reply goes on at `k`."""
    if tokens[i].low in _SURE_TAILS:
        return True
    return all(t.kind == "word" and t.key in _FILLER for t in tokens[k:])


def _continue(
    tokens: list[_Token], j: int, value: Fraction, level: int, hint: str
) -> tuple[Fraction, int, str]:
    """Digits or words after a multiplier: "2 triệu 500 nghìn", "2tr5", "hai triệu rưỡi"."""
    while j < len(tokens) and level >= 1_000:
        if _is(tokens, j, "ruoi"):
            return value + Fraction(level, 2), j + 1, hint
        zero = _multiplier(tokens, j + 1, False) if _is(tokens, j, "khong") else None
        if zero is not None and 1_000 <= zero.factor < level:
            level, j = zero.factor, j + 2  # "một triệu không nghìn ba trăm"
            continue
        zero_ten = _is(tokens, j, "le") or _is(tokens, j, "linh")  # "hai nghìn lẻ năm"
        at = j + 1 if zero_ten else j
        if at >= len(tokens):
            break
        if tokens[at].kind == "word":
            group = _group(tokens, at, tail=True)
            if group is None:
                break
            more, k, single = group
            single = single and not zero_ten
            lower, more_hint, m = _multipliers(tokens, k)
            if lower == 1:
                if _other_unit(tokens, k, hint) or (single and not _tail_ends(tokens, at, k)):
                    break  # "2 triệu ba ngày công" is two amounts; "2 triệu năm nay" one
                if _is(tokens, at, "khong"):  # "một triệu không trăm lẻ năm" = 1 000 005
                    return value + more, k, hint
                return value + Fraction(more * level, 10 if single else 1_000), k, hint
            if not 1 < lower < level:
                break
            value, level, hint, j = value + more * lower, lower, hint or more_hint, m
            continue
        if tokens[at].kind != "num":
            break
        token = tokens[at]
        lower, more_hint, k = _multipliers(tokens, at + 1)
        if zero_ten and lower == 1 and token.text.isdigit() and not _other_unit(tokens, k, "money"):
            return value + Fraction(int(token.text) * level, 1_000), k, hint
        lower = level // 10 if lower == 100 else lower  # "2 triệu 3 trăm" = 2,3 triệu
        if lower == 1 and re.fullmatch(r"[0-9]{1,3}", token.text) and not _unit(tokens, k):
            return value + Fraction(int(token.text) * level, 10 ** len(token.text)), at + 1, hint
        typed = _number(token.text, decimal=True)
        if not 1 < lower < level or typed is None:
            break
        value, level, hint, j = value + typed * lower, lower, hint or more_hint, k
    return value, j, hint


def _hit(tokens: list[_Token], i: int) -> _Hit | None:
    """Read a quantity with its multipliers and unit starting at token `i`."""
    head = _head(tokens, i)
    if head is None:
        return None
    value, j, words, ambiguous = head
    level, hint, j = _multipliers(tokens, j, ambiguous)
    value *= level
    if _is(tokens, j, "ruoi") and level < 1_000:  # "2 trăm rưỡi", "hai rưỡi"
        value, j = value + Fraction(level, 2), j + 1
    else:
        value, j, hint = _continue(tokens, j, value, level, hint)
    hit = _Hit(i, j, value, hint=hint)
    found = _unit(tokens, j)
    if found and hint == "money" and found[0].kind is not Kind.MONEY:
        found = None  # "2 triệu ngày 15/10" is money and a date, not two million workdays
    if found:
        hit.unit, hit.end = found
        hit.unit_text = " ".join(t.text for t in tokens[j : hit.end]).lower()
        if _is(tokens, hit.end, "ruoi") and level == 1:
            hit.quantity, hit.end = value + Fraction(1, 2), hit.end + 1  # "3 ngày rưỡi"
    hit.words = words and level == 1 and not hint and hit.unit is None
    if hit.unit and hit.unit.kind is Kind.MATERIALS:
        end = hit.end
        while end < len(tokens) and tokens[end].kind == "word":
            if tokens[end].key in _DESCRIPTION_STOP or _unit(tokens, end):
                break
            end += 1
        hit.description = " ".join(t.text for t in tokens[hit.end : end]) or None
        hit.end = end
    return hit


def _scan(text: str) -> tuple[list[_Hit], list[_Token], list[_Token]]:
    """Every quantity in the text, the tokens that belong to none, and all the tokens."""
    tokens = _tokenize(text)
    hits: list[_Hit] = []
    rest: list[_Token] = []
    i = 0
    while i < len(tokens):
        negative = tokens[i].key in ("-", "am") and i + 1 < len(tokens)
        start = i + 1 if negative else i
        hit = None
        first = tokens[start]
        labelled = start > 0 and tokens[start - 1].key in _LABELS and first.kind == "num"
        if not labelled and (first.kind in ("num", "date") or first.key in _STARTS):
            hit = _hit(tokens, start)
        if hit is None:
            rest.append(tokens[i])
            i += 1
            continue
        hit.negative = negative
        hits.append(hit)
        i = hit.end
    return hits, rest, tokens


def _resolve(hit: _Hit, expect: Kind | None, text: str) -> Amount:
    if hit.quantity == 0:
        raise AmountError("zero", text)
    if hit.negative:
        raise AmountError("negative", text)
    unit = hit.unit
    if unit is None:
        if hit.hint == "money" or (hit.hint == "weak" and expect in (None, Kind.MONEY)):
            unit = _DEFAULT_UNIT[Kind.MONEY]
        elif expect is not None:
            unit = _DEFAULT_UNIT[expect]
        else:
            raise AmountError("no_unit", text)
    if expect is not None and unit.kind is not expect:
        raise AmountError("wrong_kind", text)
    value = hit.quantity * unit.factor
    if value.denominator != 1:
        raise AmountError("too_precise", text)
    if unit.kind is not Kind.MATERIALS:
        return Amount(unit.kind, int(value))
    # Keep the unit as typed when typed with its accents ("bó" and "bộ" both fold to "bo").
    word = (hit.unit_text if not hit.unit_text.isascii() else unit.word) or None
    return Amount(unit.kind, int(value), word, hit.description)


def parse_amount(text: str, expect: Kind | None = None) -> Amount:
    """The one amount in a reply such as "2tr5", "hai triệu rưỡi" or "3 ngày công".

    Raises AmountError; any word that is neither part of the amount nor a polite or filler word
    makes it "unparseable".
    """
    if not clean(text):
        raise AmountError("empty", text)
    hits, rest, tokens = _scan(text)
    if any(not hit.words for hit in hits):  # "tạm 2 triệu": "tạm" is no eight here
        for hit in (h for h in hits if h.words):
            rest.extend(tokens[hit.start : hit.end])
        hits = [hit for hit in hits if not hit.words]
    if len(hits) > 1:
        raise AmountError("mixed", text)
    if not hits or any(token.kind != "word" or token.key not in _FILLER for token in rest):
        raise AmountError("unparseable", text)
    return _resolve(hits[0], expect, text)


def spelled_number(text: str, ordinal: bool = False, whole: bool = False) -> int | None:
    """The whole number below a thousand that `text` starts with, spelt in words: "hai",
    "mười lăm", "hai mươi mốt"; `ordinal` for the words after "thứ" ("thứ nhất", "thứ tư");
    `whole`: only if the number is all the text. None when the text starts with anything else
    (digits included)."""
    tokens = _tokenize(text)
    if not tokens:
        return None
    if ordinal and _is(tokens, 0, "nhat", _ORDINAL_FIRST):
        group: tuple[int, int, bool] | None = (1, 1, True)
    else:
        group = _group(tokens, 0, tail=ordinal)
    if group is None or (whole and group[1] != len(tokens)):
        return None
    return group[0]


_ORDINAL_FIRST = _forms("nhất")


def find_amount(text: str) -> Amount | None:
    """The amount mentioned in a sentence, if it mentions exactly one with a unit; never raises.

    Bare numbers ("thôn 3", "năm 2024") are not amounts here; two or more amounts make the
    sentence ambiguous, so the answer is None and the bot asks. So do two numbers side by side
    ("hai ba ngày công") and a vague word before the amount ("vài chục nghìn", "hơn 2 triệu").
    """
    hits, _rest, tokens = _scan(text)
    found = []
    ends = {hit.end for hit in hits if not (hit.words and tokens[hit.start].key in _FILLER)}
    starts = {hit.start - hit.negative for hit in hits if _touches_after(hit, tokens)}
    for hit in hits:
        if hit.unit is None and not hit.hint:
            continue
        start = hit.start - hit.negative
        if start in ends or hit.end in starts or (start > 0 and tokens[start - 1].key in _VAGUE):
            return None  # "hai ba ngày công", "3 ngày công rưỡi ba", "vài chục nghìn"
        try:
            found.append(_resolve(hit, None, text))
        except AmountError:
            continue
    return found[0] if len(found) == 1 else None


def _touches_after(hit: _Hit, tokens: list[_Token]) -> bool:
    """Whether a number right after an amount makes it doubtful ("3 ngày công rưỡi ba"); not
    a plain "năm", "sau"… that goes on as other words ("2 triệu năm nay", "2 triệu sau tết")."""
    if not hit.words:
        return True
    first = tokens[hit.start]
    if hit.end == hit.start + 1 and first.key in _AMBIGUOUS:
        return all(t.kind == "word" and t.key in _FILLER for t in tokens[hit.end :])
    return True
