"""One gettext catalog per language, shared by code and templates; Babel formats per locale.

The catalogs are read from the .po files at start-up, so a fresh clone needs no compile step.
The locale of the update being handled sits in a ContextVar.
"""

from __future__ import annotations

import decimal
import io
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from functools import cache

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import NumberPattern, format_compact_decimal, parse_pattern
from babel.support import NullTranslations, Translations

from bot.domain.paths import LOCALES_DIR

DOMAIN = "messages"
LOCALES = ("vi", "en")  # the languages the bot speaks; Vietnamese first
_current: ContextVar[str] = ContextVar("chungsuc_locale", default="vi")


@cache
def translations(locale: str) -> NullTranslations:
    """The catalog for a locale, compiled in memory from its .po file."""
    po_path = LOCALES_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not po_path.is_file():
        return NullTranslations()
    with po_path.open("rb") as handle:
        catalog = read_po(handle, locale=locale, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(fp=buffer, domain=DOMAIN)


def current_locale() -> str:
    return _current.get()


@contextmanager
def use_locale(locale: str) -> Iterator[None]:
    """Run a block in a locale (falls back to Vietnamese for unknown ones)."""
    token = _current.set(locale if locale in LOCALES else "vi")
    try:
        yield
    finally:
        _current.reset(token)


def gettext(message: str) -> str:
    return translations(_current.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(_current.get()).ngettext(singular, plural, n)


_ = gettext


def N_(message: str) -> str:
    """Mark a message for extraction; translate it later with _()."""
    return message


@cache
def _number_format(locale: str, digits: int) -> tuple[NumberPattern, Locale]:
    """The parsed pattern and locale (Babel parses both again at every call otherwise)."""
    return parse_pattern("#,##0" + ("." + "#" * digits if digits else "")), Locale.parse(locale)


def fmt_number(value: float | int, digits: int = 0) -> str:
    """1.500.000 in Vietnamese, 1,500,000 in English; up to `digits` decimals."""
    if type(value) is int and 0 <= value < 1000:  # no separator to place: counts, percentages
        return str(value)
    pattern, locale = _number_format(_current.get(), digits)
    if -_HUGE < value < _HUGE:
        return pattern.apply(value, locale)
    with decimal.localcontext() as context:  # a junk amount typed by hand: 28 digits are not enough
        context.prec = len(str(int(abs(value)))) + digits + 10
        return pattern.apply(value, locale)


_HUGE = 10**24


def fmt_compact(value: float | int) -> str:
    """1.500.000.000 → "1,5 tỷ" in Vietnamese, "1.5 billion" in English."""
    return format_compact_decimal(
        value, format_type="long", locale=_current.get(), fraction_digits=1
    )


def fmt_date(value: date | datetime) -> str:
    """15/10/2023 in Vietnamese, Oct 15, 2023 in English."""
    if _current.get() == "vi":
        return format_date(value, "dd/MM/yyyy", locale="vi")
    return format_date(value, "medium", locale=_current.get())


def fmt_datetime(value: datetime) -> str:
    if _current.get() == "vi":
        return format_datetime(value, "HH:mm dd/MM/yyyy", locale="vi")
    return format_datetime(value, "medium", locale=_current.get())
