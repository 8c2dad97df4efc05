"""Contribution records as CSV or XLSX, the way a commune office files them."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from bot.reference import Reference

COLUMNS = (
    "ma_bien_nhan",
    "cuoc_van_dong",
    "ma_xa",
    "ten_xa",
    "thon",
    "loai",
    "so_luong",
    "don_vi",
    "mo_ta",
    "hen_ngay",
    "trang_thai",
    "ly_do",
    "cong_khai_ten",
    "ten_hien_thi",
    "kenh",
    "ngay_dang_ky",
)
UNITS = {"money": "đồng", "land": "m²", "workdays": "ngày công"}


def _row(r: Any, reference: Reference) -> list[Any]:
    commune = reference.communes.get(r.commune_code)
    amount: Any = r.amount / 2 if r.kind == "workdays" else r.amount  # stored in half-days
    created = r.created_at
    return [
        f"CS-{created.year % 100:02d}-{r.id:05d}",
        r.campaign_name,
        r.commune_code,
        commune.name if commune else "",
        r.village or "",
        r.kind,
        amount,
        UNITS.get(r.kind, r.unit or ""),
        r.description or "",
        r.due_on.isoformat() if r.due_on else "",
        r.status,
        r.reason or "",
        "có" if r.show_name else "không",
        r.display_name if r.show_name else "",
        r.channel,
        created.date().isoformat(),
    ]


def write_contributions(
    rows: Sequence[Any], reference: Reference, format: str, output: Path | TextIO
) -> int:
    """Write the rows; returns how many. Villagers' channel ids are not exported."""
    table = [_row(r, reference) for r in rows]
    if format == "xlsx":
        from openpyxl import Workbook

        assert isinstance(output, Path)
        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet("dong_gop")
        sheet.append(list(COLUMNS))
        for row in table:
            sheet.append(row)
        workbook.save(output)
        return len(table)
    if isinstance(output, Path):
        with output.open("w", encoding="utf-8-sig", newline="") as handle:
            _csv(handle, table)
    else:
        _csv(output, table)
    return len(table)


def _csv(handle: TextIO, table: list[list[Any]]) -> None:
    writer = csv.writer(handle)
    writer.writerow(COLUMNS)
    writer.writerows(table)
