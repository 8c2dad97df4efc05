"""Contribution amounts spelled out for people, per locale, from base units."""

from __future__ import annotations

from bot.domain.i18n import _, fmt_compact, fmt_number, ngettext

BILLION = 1_000_000_000


def spell(
    kind: str, amount: int, unit: str | None = None, what: str | None = None, compact: bool = False
) -> str:
    """1500000 money → "1.500.000 đồng"; with compact, big sums read "1,5 tỷ đồng"."""
    if kind == "money":
        if compact and amount >= 1_000_000 and amount % 100_000 == 0:
            return _("{amount} đồng").format(amount=fmt_compact(amount))
        return _("{amount} đồng").format(amount=fmt_number(amount))
    if kind == "land":
        return _("{amount} m² đất").format(amount=fmt_number(amount))
    if kind == "workdays":
        return _("{amount} ngày công").format(amount=fmt_number(amount / 2, 1))
    parts = [fmt_number(amount), unit or "", what or ""]
    return " ".join(p for p in parts if p)


def households(count: int) -> str:
    """ "5 hộ" / "5 households" (English has a singular)."""
    return ngettext("{count} hộ", "{count} hộ", count).format(count=fmt_number(count))


def kind_name(kind: str) -> str:
    names = {
        "workdays": _("Ngày công"),
        "land": _("Đất (m²)"),
        "money": _("Tiền"),
        "materials": _("Vật liệu"),
    }
    return names[kind]
