"""Contribution records and poll results as CSV or XLSX, the way a commune office files them.

Villagers type the names and descriptions: a cell is written as text, never as a formula a
spreadsheet would run (`=HYPERLINK(…)`). Dates are Vietnam's.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TextIO

from bot.content.reference import Reference
from bot.domain.clock import TZ
from bot.storage.db import as_utc
from bot.storage.polls import Group, Poll, Results

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
# What makes a spreadsheet read a CSV cell as a formula (OWASP's list).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def day_start(day: date) -> datetime:
    """The instant a day begins in Vietnam: `--since 2026-11-29` means from 00:00 there."""
    return datetime.combine(day, time(0), TZ)


def day_end(day: date) -> datetime:
    """The instant after a day in Vietnam (`--until` includes the whole day)."""
    return day_start(day + timedelta(days=1))


def _row(r: Any, reference: Reference) -> list[Any]:
    commune = reference.communes.get(r.commune_code)
    amount: Any = r.amount / 2 if r.kind == "workdays" else r.amount  # stored in half-days
    created = as_utc(r.created_at)
    return [
        f"CS-{created.year % 100:02d}-{r.id:05d}",  # the receipt the villager got (UTC year)
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
        created.astimezone(TZ).date().isoformat(),
    ]


def write_contributions(
    rows: Sequence[Any], reference: Reference, format: str, output: Path | TextIO
) -> int:
    """Write the rows; returns how many. Villagers' channel ids are not exported."""
    return _write(COLUMNS, [_row(r, reference) for r in rows], "dong_gop", format, output)


POLL_COLUMNS = (
    "ma_binh_chon",
    "ma_xa",
    "ten_xa",
    "pham_vi",
    "cau_hoi",
    "trang_thai",
    "han_chot",
    "nhom",
    "lua_chon",
    "so_phieu",
    "ti_le_phan_tram",
    "so_nguoi_binh_chon",
    "so_nguoi_nhan_tin",
)
ALL, OTHER = "tất cả", "khác"  # the whole scope's row; villages under 5 voters merged


def _group_name(group: Group, poll: Poll, reference: Reference) -> str:
    """A village of the breakdown, or a commune's name (a province poll's), or "khác"."""
    if group.village is None:
        return OTHER
    if poll.whole_province:
        found = reference.communes.get(group.village)
        return found.name if found is not None else group.village
    return group.village


def _poll_rows(poll: Poll, results: Results, reference: Reference) -> list[list[Any]]:
    """One row per option (question after question) for the whole scope, then per village group
    (small ones merged into "khác", as villagers see them): counts only, never who voted."""
    commune = reference.communes.get(poll.commune_code)
    name = reference.province_name if poll.whole_province else commune.name if commune else ""
    whole = "toàn tỉnh" if poll.whole_province else "toàn xã"
    scope = [poll.id, poll.commune_code, name, poll.village or whole]
    state = [poll.status, poll.closes_at.astimezone(TZ).strftime("%Y-%m-%d %H:%M")]
    groups: list[tuple[str, tuple[int, ...], int, int | None]] = [
        (ALL, results.counts, results.voters, results.subscribers)
    ]
    groups += [(_group_name(g, poll, reference), g.counts, g.voters, None) for g in results.groups]
    table = []
    for name, counts, voters, subscribers in groups:
        for question, shares in zip(poll.questions, results.of(poll, counts), strict=True):
            for option, n in zip(question.options, shares, strict=True):
                share = round(100 * n / voters, 1) if voters else 0
                reach = "" if subscribers is None else subscribers
                row = [*scope, question.text, *state, name, option, n, share, voters, reach]
                table.append(row)
    return table


def write_poll_results(
    polls: Sequence[tuple[Poll, Results]], reference: Reference, format: str, output: Path | TextIO
) -> int:
    """Write each poll's results by option, whole and by village; returns how many polls."""
    table = [row for poll, results in polls for row in _poll_rows(poll, results, reference)]
    _write(POLL_COLUMNS, table, "binh_chon", format, output)
    return len(polls)


def _write(
    columns: Sequence[str],
    table: list[list[Any]],
    sheet_name: str,
    format: str,
    output: Path | TextIO,
) -> int:
    if format == "xlsx":
        from openpyxl import Workbook
        from openpyxl.cell import WriteOnlyCell

        assert isinstance(output, Path)
        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet(sheet_name)
        sheet.append(list(columns))
        for row in table:
            cells = []
            for value in row:
                cell = WriteOnlyCell(sheet, value=value)
                if isinstance(value, str):
                    cell.data_type = "s"  # openpyxl makes "=…" a formula otherwise
                cells.append(cell)
            sheet.append(cells)
        workbook.save(output)
        return len(table)
    if isinstance(output, Path):
        with output.open("w", encoding="utf-8-sig", newline="") as handle:
            _csv(handle, columns, table)
    else:
        _csv(output, columns, table)
    return len(table)


def _inert(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as typed: text that would start a formula gets a `'`."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _csv(handle: TextIO, columns: Sequence[str], table: list[list[Any]]) -> None:
    writer = csv.writer(handle)
    writer.writerow(columns)
    writer.writerows([_inert(v) for v in row] for row in table)
