"""Status import: the spreadsheet a province office keeps, one row per commune and criterion.

Every row is checked before anything is written; a malformed file is rejected whole with the
row number and every problem of each row, in the official's language, naming the columns as the
file names them. A file over the size limit is refused before it is read.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.content.reference import CURRENT_ERA, Reference
from bot.domain.clock import Clock
from bot.domain.i18n import _, fmt_date, fmt_number
from bot.domain.text import clean, fold
from bot.storage.db import Database
from bot.storage.schema import areas
from bot.storage.statuses import ImportBatch

# Column names as offices write them (folded), for each field.
COLUMNS: dict[str, tuple[str, ...]] = {
    "commune_code": ("ma xa", "ma don vi", "ma dvhc", "commune code"),
    "criteria_set": ("bo tieu chi", "giai doan", "criteria set"),
    "criterion": ("tieu chi", "so tieu chi", "criterion"),
    "indicator": ("chi tieu", "ma chi tieu", "indicator"),
    "met": ("dat", "ket qua", "met"),
    "value": ("gia tri", "so lieu", "value"),
    "assessed_on": ("ngay danh gia", "ngay cap nhat", "ngay", "assessed on", "date"),
    "published_by": ("don vi cong bo", "co quan cong bo", "nguoi cong bo", "published by"),
    "source": ("nguon", "van ban", "can cu", "source"),
    "title": ("danh hieu", "title"),
}
REQUIRED = (
    "commune_code",
    "criteria_set",
    "criterion",
    "met",
    "assessed_on",
    "published_by",
    "source",
)
YES = {"co", "dat", "x", "1", "yes", "true", "y", "met"}
NO = {"khong", "chua dat", "chua", "0", "no", "false", "n", "not met"}
_INDICATOR = re.compile(r"^\d+(\.\d+)*$")
MAX_ERRORS = 20  # rows with problems listed before stopping
# An .xlsx may unpack to this many times the limit: its XML holds what a CSV a sixth its size does.
XLSX_EXPANSION = 6
MB = 1024 * 1024


class ImportRejected(Exception):
    """The file is not imported; `problems` says where and why."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class RawTable:
    header: list[str]
    rows: list[tuple[int, list[Any]]]  # (spreadsheet row number, cells)


def _too_big(path: Path, max_mb: float) -> str | None:
    """Why the file is too big to read, or None. The whole file is held while it is checked
    (all or nothing), at about twenty times its size as CSV."""
    size = path.stat().st_size
    if size > max_mb * MB:
        return _(
            "{file}: tệp nặng {size} MB, quá giới hạn {limit} MB; hãy chia thành nhiều tệp"
        ).format(file=path.name, size=fmt_number(size / MB, 1), limit=fmt_number(max_mb, 1))
    if path.suffix.lower() == ".xlsx":
        try:
            with zipfile.ZipFile(path) as archive:
                unpacked = sum(member.file_size for member in archive.infolist())
        except zipfile.BadZipFile:
            return None  # not a workbook, which reading it says
        if unpacked > max_mb * MB * XLSX_EXPANSION:
            return _(
                "{file}: giải nén ra {size} MB, quá giới hạn {limit} MB; hãy chia thành nhiều tệp"
            ).format(
                file=path.name,
                size=fmt_number(unpacked / MB, 1),
                limit=fmt_number(max_mb * XLSX_EXPANSION, 1),
            )
    return None


def read_table(path: Path, max_mb: float = 10) -> RawTable:
    """Read a .csv (UTF-8, comma or semicolon) or .xlsx file's first sheet, up to `max_mb`."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise ImportRejected([_("{file}: chỉ nhập được tệp .csv và .xlsx").format(file=path.name)])
    problem = _too_big(path, max_mb)
    if problem:
        raise ImportRejected([problem])
    if suffix == ".xlsx":
        from openpyxl import load_workbook
        from openpyxl.utils.exceptions import InvalidFileException

        try:
            workbook = load_workbook(path, read_only=True, data_only=True)
        except (zipfile.BadZipFile, KeyError, InvalidFileException):
            raise ImportRejected(
                [_("{file}: không đọc được tệp .xlsx này").format(file=path.name)]
            ) from None
        try:
            sheet = workbook.worksheets[0]
            all_rows = [list(r) for r in sheet.iter_rows(values_only=True)]
        finally:
            workbook.close()
    else:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            raise ImportRejected(
                [
                    _("{file}: tệp không phải UTF-8; hãy lưu lại dưới dạng “CSV UTF-8”").format(
                        file=path.name
                    )
                ]
            ) from None
        try:
            dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
        except csv.Error:  # empty, or one column: nothing to sniff
            dialect = csv.excel
        all_rows = [list(r) for r in csv.reader(io.StringIO(text), dialect)]
    if not all_rows:
        raise ImportRejected([_("{file}: tệp trống").format(file=path.name)])
    header = ["" if h is None else str(h) for h in all_rows[0]]
    rows = [
        (number, cells)
        for number, cells in enumerate(all_rows[1:], start=2)
        if any(c not in (None, "") and str(c).strip() for c in cells)
    ]
    return RawTable(header, rows)


def _columns(header: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for index, name in enumerate(header):
        key = fold(name)
        for field, names in COLUMNS.items():
            if key in names and field not in found:
                found[field] = index
    missing = [COLUMNS[f][0].replace(" ", "_") for f in REQUIRED if f not in found]
    if missing:
        raise ImportRejected([_("dòng 1: thiếu cột {columns}").format(columns=", ".join(missing))])
    return found


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return clean(str(value))


def _date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = _text(value)
    for pattern in ("%d/%m/%Y", "%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    return None


def _commune_code(value: Any) -> str:
    text = _text(value)
    return text.zfill(5) if text.isdigit() else text


class StatusImporter:
    def __init__(self, db: Database, reference: Reference) -> None:
        self._db = db
        self._reference = reference

    async def _known_communes(self) -> set[str]:
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(areas.c.code).where(areas.c.era == CURRENT_ERA, areas.c.level == "commune")
            )
            return set(rows.scalars())

    async def check(
        self,
        table: RawTable,
        *,
        file_name: str,
        sha256: str,
        imported_by: str,
        is_sample: bool = False,
        today: date | None = None,
    ) -> ImportBatch:
        """Validate every row; raise ImportRejected listing the problems, or return the batch."""
        columns = _columns(table.header)
        communes = await self._known_communes()
        today = today or Clock().today()  # Vietnam's date, not the server's
        problems: list[str] = []
        statuses: list[dict[str, Any]] = []
        titles: dict[tuple[str, str, str, date], dict[str, Any]] = {}
        seen: dict[tuple[Any, ...], int] = {}

        def column(field: str) -> str:
            """The column's name as the file writes it."""
            return clean(table.header[columns[field]]) or COLUMNS[field][0].replace(" ", "_")

        for number, cells in table.rows:
            if len(problems) >= MAX_ERRORS:
                problems.append(_("… (dừng lại sau {n} dòng có lỗi đầu tiên)").format(n=MAX_ERRORS))
                break

            def cell(field: str, cells: list[Any] = cells) -> Any:
                index = columns.get(field)
                return cells[index] if index is not None and index < len(cells) else None

            row, wrong = self._row(cell, column, communes, today)
            if wrong:
                problems.append(
                    _("dòng {row}: {problems}").format(row=number, problems="; ".join(wrong))
                )
                continue
            key = (
                row["commune_code"],
                row["set_id"],
                row["criterion_number"],
                row["indicator_code"],
                row["assessed_on"],
            )
            if key in seen:
                problems.append(
                    _("dòng {row}: trùng với dòng {first}").format(row=number, first=seen[key])
                )
                continue
            seen[key] = number
            title = row.pop("title")
            if title:
                titles[(row["commune_code"], row["set_id"], title, row["assessed_on"])] = {
                    "commune_code": row["commune_code"],
                    "set_id": row["set_id"],
                    "title": title,
                    "decided_on": row["assessed_on"],
                    "published_by": row["published_by"],
                    "source": row["source"],
                }
            statuses.append(row)
        if not problems and not statuses:
            problems.append(_("tệp không có dòng số liệu nào"))
        if problems:
            raise ImportRejected(problems)
        return ImportBatch(
            file_name, sha256, imported_by, is_sample, statuses, list(titles.values())
        )

    def _row(
        self,
        cell: Callable[[str], Any],
        column: Callable[[str], str],
        communes: set[str],
        today: date,
    ) -> tuple[dict[str, Any], list[str]]:
        """The row's values and every problem in it; a check that rests on a wrong cell (the
        criterion of an unknown set) is left out."""
        problems: list[str] = []

        def wrong(field: str, message: str, **values: Any) -> None:
            problems.append(message.format(column=column(field), **values))

        for field in REQUIRED:
            if not _text(cell(field)):
                wrong(field, _("“{column}” để trống"))
        code = _commune_code(cell("commune_code"))
        if code and code not in communes:
            wrong("commune_code", _("“{column}”: không có xã nào mã “{value}”"), value=code)
        set_id = _text(cell("criteria_set"))
        cset = self._reference.criteria_set(set_id) if set_id else None
        if set_id and cset is None:
            wrong(
                "criteria_set",
                _("“{column}”: không có bộ tiêu chí “{value}” (có: {known})"),
                value=set_id,
                known=", ".join(s.id for s in self._reference.criteria_sets),
            )
        number_text = _text(cell("criterion"))
        number: int | None = None
        if cset is not None and number_text:
            if number_text.isdigit() and cset.criterion(int(number_text)) is not None:
                number = int(number_text)
            else:
                wrong(
                    "criterion",
                    _("“{column}”: bộ {set} không có tiêu chí “{value}”"),
                    set=set_id,
                    value=number_text,
                )
        indicator = _text(cell("indicator"))
        if (
            indicator
            and number is not None
            and (not _INDICATOR.match(indicator) or indicator.split(".")[0] != number_text)
        ):
            wrong(
                "indicator",
                _("“{column}”: chỉ tiêu “{value}” không thuộc tiêu chí {criterion}"),
                value=indicator,
                criterion=number,
            )
        met = _text(cell("met"))
        if met and fold(met) not in YES | NO:
            wrong("met", _("“{column}”: ghi “có” hoặc “không”, không phải “{value}”"), value=met)
        written_on = _text(cell("assessed_on"))
        assessed_on = _date(cell("assessed_on")) if written_on else None
        if written_on and assessed_on is None:
            wrong(
                "assessed_on",
                _("“{column}”: “{value}” không phải ngày dạng dd/mm/yyyy"),
                value=written_on,
            )
        elif assessed_on is not None and assessed_on > today:
            wrong("assessed_on", _("“{column}”: ngày {date} chưa đến"), date=fmt_date(assessed_on))
        title = _text(cell("title"))
        title_id = None
        if title and cset is not None:
            by_name = {fold(tid): tid for tid, _name in cset.titles}
            by_name |= {fold(name.get(lang, "")): tid for tid, name in cset.titles for lang in name}
            title_id = by_name.get(fold(title))
            if title_id is None:
                wrong(
                    "title",
                    _("“{column}”: bộ {set} không có danh hiệu “{value}” (có: {known})"),
                    set=set_id,
                    value=title,
                    known=", ".join(tid for tid, _name in cset.titles),
                )
        return {
            "commune_code": code,
            "set_id": set_id,
            "criterion_number": number,
            "indicator_code": indicator,
            "met": fold(met) in YES,
            "value": _text(cell("value")) or None,
            "assessed_on": assessed_on,
            "published_by": _text(cell("published_by"))[:200],
            "source": _text(cell("source"))[:300],
            "title": title_id,
        }, problems


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_upload(data: bytes, file_name: str, max_mb: float = 10) -> RawTable:
    """The same as `read_table` for a file sent in chat: its bytes and the name it was sent
    with (only its last part is kept, so a name cannot point anywhere on this machine)."""
    import tempfile

    name = Path(file_name.replace("\\", "/")).name or "upload"
    with tempfile.TemporaryDirectory(prefix="chungsuc-upload-") as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        return read_table(path, max_mb)
