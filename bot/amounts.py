"""Contribution amounts as villagers type them: "2tr5", "1,5 tỷ", "3 công", "200m²", "5 bao cát".

Every amount is stored as a whole number of base units, so that nothing downstream needs floats:

- MONEY in đồng;
- LAND in m² (1 ha = 10 000 m²; 1 sào = 360 m² and 1 mẫu = 3 600 m², the Bắc Bộ measures);
- WORKDAYS in *half*-workdays, because "nửa ngày công" (half a day's labour) is common and must
  be exact: "3 công" is 6, "0,5 ngày công" is 1, and "0,3 ngày công" is refused as too precise;
- MATERIALS as a whole count of the unit typed ("bao", "xe", "khối"…), kept in `quantity_text`
  with what it is ("xi măng") in `description`; we never convert between material units.

A "." or "," followed by groups of exactly three digits groups thousands ("1.500.000",
"1,500,000"), unless a multiplier follows and there is only one, in which case it is the decimal
mark ("1.5 tỷ", "1,500 triệu" = 1,5 triệu). Digits after a multiplier continue it ("2tr5" =
2,5 triệu, "1 tỷ 500" = 1,5 tỷ); spaces may group thousands too ("1 500 000 đ"). The bot
always confirms an amount back in full, so the rare misreading of an ambiguous form is caught
by the user rather than guessed silently.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction

from bot.text import clean, fold


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


@dataclass(frozen=True)
class _Unit:
    kind: Kind
    factor: int  # base units per one of this unit
    word: str  # canonical spelling, stored as quantity_text for materials


def _units(kind: Kind, factor: int, word: str, *keys: str) -> dict[str, _Unit]:
    return {key: _Unit(kind, factor, word) for key in keys}


# Keys are folded (see bot.text.fold); a multi-word unit is its words joined by one space.
_UNITS: dict[str, _Unit] = {
    **_units(Kind.MONEY, 1, "đồng", "dong", "d", "vnd", "₫"),
    **_units(Kind.WORKDAYS, 2, "ngày công", "ngay cong", "cong", "ngay", "ngay lao dong"),
    **_units(Kind.WORKDAYS, 2, "ngày công", "ngay cong lao dong", "cong lao dong"),
    **_units(Kind.LAND, 1, "m²", "m2", "met vuong", "m vuong"),
    **_units(Kind.LAND, 10_000, "ha", "ha", "hecta", "hec ta", "hectare"),
    **_units(Kind.LAND, 360, "sào", "sao"),  # sào Bắc Bộ; the Trung Bộ sào (500 m²) is not used
    **_units(Kind.LAND, 3_600, "mẫu", "mau"),  # mẫu Bắc Bộ = 10 sào
}
# Material units are kept as counted: a "khối" (m³) of sand is never turned into tonnes.
_MATERIALS = "bao xe khối viên tấn tạ kg cây m³ thùng bó bộ tấm cuộn chiếc cái can bình"
_UNITS |= {fold(word): _Unit(Kind.MATERIALS, 1, word) for word in _MATERIALS.split()}
_DEFAULT_UNIT = {kind: _Unit(kind, 2 if kind is Kind.WORKDAYS else 1, "") for kind in Kind}
_LONGEST_UNIT = max(key.count(" ") + 1 for key in _UNITS)

# Multipliers: "k", "tr", "củ" (slang for triệu) and "tỷ" say money on their own; "nghìn" says
# money only when nothing else does ("1 nghìn m2" is land); "trăm" is just a number.
_MULTIPLIERS = {"tram": 100, "nghin": 1_000, "ngan": 1_000, "k": 1_000}
_MULTIPLIERS |= {"tr": 10**6, "trieu": 10**6, "cu": 10**6, "ty": 10**9, "ti": 10**9}
_WEAK = {"tram", "nghin", "ngan"}
_WORD_NUMBERS = {"nua": Fraction(1, 2), "mot": Fraction(1)}  # "nửa ngày công", "một sào"
# Words that may surround an amount in a reply without changing it ("tôi góp 2 triệu thôi").
_FILLER = {"toi", "em", "minh", "xin", "se", "gop", "dong", "ung", "ho", "dang", "ky", "them"}
_FILLER |= {"khoang", "tam", "chung", "thoi", "a", "nhe", "nha", "nua", "la", "duoc", "cho"}
_FILLER |= {"dat", "tien", "mat", "hoac", "va", "voi"}  # "200m2 đất"; "hoặc", "và" for mixed
_DESCRIPTION_STOP = {"cho", "de", "va", "hoac", "voi", "lam", "o", "tai", "vao", "nhe", "a"}
_DESCRIPTION_STOP |= {"nha", "thoi", "nua", "gop", "ung", "truoc", "sau", "trong", "den", "tu"}
_DESCRIPTION_STOP |= {"khi", "luc", "hom", "mai", "thu", "tuan", "thang", "nam"}  # then a date

_TOKEN = re.compile(
    r"(?P<num>[0-9]{1,3}(?: [0-9]{3})+(?![0-9.,])|[0-9]+(?:[.,][0-9]+)*)"
    r"|(?P<word>[mM][23](?![0-9])|[^\W\d_]+)"
    r"|(?P<sym>₫|-(?= ?[0-9]))"
)
_GROUPED = re.compile(r"(?!0)[0-9]{1,3}(?:([.,])[0-9]{3})(?:\1[0-9]{3})*")
_MAX_DIGITS = 30  # far beyond any real amount; keeps int() and Fraction cheap on junk input


@dataclass(frozen=True)
class _Token:
    kind: str  # "num", "word" or "sym"
    text: str  # as typed (NFKC), for descriptions
    key: str  # folded, for matching


@dataclass
class _Hit:
    """One quantity found in the tokens, not yet checked against what was expected."""

    end: int
    quantity: Fraction
    unit: _Unit | None = None
    hint: str = ""  # "money" for k/tr/triệu/củ/tỷ, "weak" for nghìn, "" otherwise
    negative: bool = False
    unit_text: str = ""
    description: str | None = None


def _tokenize(text: str) -> list[_Token]:
    text = unicodedata.normalize("NFKC", clean(text))
    tokens = []
    for match in _TOKEN.finditer(text):
        kind, value = match.lastgroup or "sym", match.group()
        key = value if kind != "word" else fold(value)
        tokens.append(_Token(kind, value, key))
    return tokens


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


def _multipliers(tokens: list[_Token], i: int) -> tuple[int, str, int]:
    """The product of the multiplier words from `i` ("nghìn tỷ"), their hint, the next index."""
    product, hint = 1, ""
    while i < len(tokens) and tokens[i].key in _MULTIPLIERS and product < 10**18:
        key = tokens[i].key
        product *= _MULTIPLIERS[key]
        if key not in _WEAK:
            hint = "money"
        elif key != "tram" and not hint:
            hint = "weak"
        i += 1
    return product, hint, i


def _unit(tokens: list[_Token], i: int) -> tuple[_Unit, int] | None:
    for n in range(_LONGEST_UNIT, 0, -1):
        words = tokens[i : i + n]
        if len(words) == n and all(t.kind != "num" for t in words):
            unit = _UNITS.get(" ".join(t.key for t in words))
            if unit:
                return unit, i + n
    return None


def _hit(tokens: list[_Token], i: int) -> _Hit | None:
    """Read a quantity with its multipliers and unit starting at token `i`."""
    first = tokens[i]
    level, hint, j = _multipliers(tokens, i + 1)
    if first.kind == "num":
        value = _number(first.text, decimal=level > 1)
    else:
        value = _WORD_NUMBERS.get(first.key)
        if value is not None and level == 1 and (j == len(tokens) or not _unit(tokens, j)):
            value = None  # "nữa", "một" alone are words, not amounts
    if value is None:
        return None
    value *= level
    while j < len(tokens) and level >= 1_000:  # "2 triệu 500 nghìn", "2tr5", "2 triệu rưỡi"
        token = tokens[j]
        if token.key == "ruoi":
            value, j = value + Fraction(level, 2), j + 1
            break
        if token.kind != "num":
            break
        lower, more_hint, k = _multipliers(tokens, j + 1)
        lower = level // 10 if lower == 100 else lower  # "2 triệu 3 trăm" = 2,3 triệu
        if lower == 1 and re.fullmatch(r"[0-9]{1,3}", token.text) and not _unit(tokens, k):
            value, j = value + Fraction(int(token.text) * level, 10 ** len(token.text)), j + 1
            break
        more = _number(token.text, decimal=True)
        if not 1 < lower < level or more is None:
            break
        value, level, hint, j = value + more * lower, lower, hint or more_hint, k
    hit = _Hit(j, value, hint=hint)
    found = _unit(tokens, j)
    if found and hint == "money" and found[0].kind is not Kind.MONEY:
        found = None  # "2 triệu ngày 15/10" is money and a date, not two million workdays
    if found:
        hit.unit, hit.end = found
        hit.unit_text = " ".join(t.text for t in tokens[j : hit.end]).lower()
        if hit.end < len(tokens) and tokens[hit.end].key == "ruoi" and level == 1:
            hit.quantity, hit.end = value + Fraction(1, 2), hit.end + 1  # "3 ngày rưỡi"
    if hit.unit and hit.unit.kind is Kind.MATERIALS:
        end = hit.end
        while end < len(tokens) and tokens[end].kind == "word":
            if tokens[end].key in _DESCRIPTION_STOP or _unit(tokens, end):
                break
            end += 1
        hit.description = " ".join(t.text for t in tokens[hit.end : end]) or None
        hit.end = end
    return hit


def _scan(text: str) -> tuple[list[_Hit], list[_Token]]:
    """Every quantity in the text, and the tokens that belong to none."""
    tokens = _tokenize(text)
    hits: list[_Hit] = []
    rest: list[_Token] = []
    i = 0
    while i < len(tokens):
        negative = tokens[i].key in ("-", "am") and i + 1 < len(tokens)
        start = i + 1 if negative else i
        hit = None
        if tokens[start].kind == "num" or tokens[start].key in _WORD_NUMBERS:
            hit = _hit(tokens, start)
        if hit is None:
            rest.append(tokens[i])
            i += 1
            continue
        hit.negative = negative
        hits.append(hit)
        i = hit.end
    return hits, rest


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
    """The one amount in a reply such as "2tr5" or "3 ngày công"; raises AmountError."""
    if not clean(text):
        raise AmountError("empty", text)
    hits, rest = _scan(text)
    if len(hits) > 1:
        raise AmountError("mixed", text)
    if not hits or any(token.key not in _FILLER for token in rest):
        raise AmountError("unparseable", text)
    return _resolve(hits[0], expect, text)


def find_amount(text: str) -> Amount | None:
    """The amount mentioned in a sentence, if it mentions exactly one with a unit; never raises.

    Bare numbers ("thôn 3", "năm 2024") are not amounts here; two or more amounts make the
    sentence ambiguous, so the answer is None and the bot asks.
    """
    found = []
    for hit in _scan(text)[0]:
        if hit.unit is None and not hit.hint:
            continue
        try:
            found.append(_resolve(hit, None, text))
        except AmountError:
            continue
    return found[0] if len(found) == 1 else None
