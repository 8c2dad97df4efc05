"""Status import: the spreadsheet a province office keeps, one row per commune and criterion.

Every row is checked before anything is written; a malformed file is rejected whole with the
row number and the reason of each problem.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import zipfile
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.clock import Clock
from bot.reference import CURRENT_ERA, Reference
from bot.storage.db import Database
from bot.storage.schema import areas
from bot.storage.statuses import ImportBatch
from bot.text import clean, fold

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
MAX_ERRORS = 20


class ImportRejected(Exception):
    """The file is not imported; `problems` says where and why."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class RawTable:
    header: list[str]
    rows: list[tuple[int, list[Any]]]  # (spreadsheet row number, cells)


def read_table(path: Path) -> RawTable:
    """Read a .csv (UTF-8, comma or semicolon) or .xlsx file's first sheet."""
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        from openpyxl import load_workbook
        from openpyxl.utils.exceptions import InvalidFileException

        try:
            workbook = load_workbook(path, read_only=True, data_only=True)
        except (zipfile.BadZipFile, KeyError, InvalidFileException):
            raise ImportRejected([f"{path.name}: not a readable .xlsx workbook"]) from None
        try:
            sheet = workbook.worksheets[0]
            all_rows = [list(r) for r in sheet.iter_rows(values_only=True)]
        finally:
            workbook.close()
    elif suffix == ".csv":
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            raise ImportRejected(
                [f"{path.name}: the file is not UTF-8; save it as “CSV UTF-8”"]
            ) from None
        try:
            dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
        except csv.Error:  # empty, or one column: nothing to sniff
            dialect = csv.excel
        all_rows = [list(r) for r in csv.reader(io.StringIO(text), dialect)]
    else:
        raise ImportRejected([f"{path.name}: only .csv and .xlsx files can be imported"])
    if not all_rows:
        raise ImportRejected([f"{path.name}: the file is empty"])
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
        raise ImportRejected([f"row 1: missing column(s): {', '.join(missing)}"])
    return found


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return clean(str(value))


def _date(value: Any) -> date:
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
    raise ValueError(f"date {text!r} is not dd/mm/yyyy")


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
        for number, cells in table.rows:
            if len(problems) >= MAX_ERRORS:
                problems.append("… (stopped after the first problems)")
                break

            def cell(field: str, cells: list[Any] = cells) -> Any:
                index = columns.get(field)
                return cells[index] if index is not None and index < len(cells) else None

            try:
                row = self._row(cell, communes, today)
            except ValueError as problem:
                problems.append(f"row {number}: {problem}")
                continue
            key = (
                row["commune_code"],
                row["set_id"],
                row["criterion_number"],
                row["indicator_code"],
                row["assessed_on"],
            )
            if key in seen:
                problems.append(f"row {number}: repeats row {seen[key]}")
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
            problems.append("the file has no data rows")
        if problems:
            raise ImportRejected(problems)
        return ImportBatch(
            file_name, sha256, imported_by, is_sample, statuses, list(titles.values())
        )

    def _row(self, cell: Any, communes: set[str], today: date) -> dict[str, Any]:
        for field in REQUIRED:
            if not _text(cell(field)):
                raise ValueError(f"{COLUMNS[field][0].replace(' ', '_')} is empty")
        code = _commune_code(cell("commune_code"))
        if code not in communes:
            raise ValueError(f"unknown commune code {code!r}")
        set_id = _text(cell("criteria_set"))
        cset = self._reference.criteria_set(set_id)
        if cset is None:
            known = ", ".join(s.id for s in self._reference.criteria_sets)
            raise ValueError(f"unknown criteria set {set_id!r} (known: {known})")
        number_text = _text(cell("criterion"))
        if not number_text.isdigit() or cset.criterion(int(number_text)) is None:
            raise ValueError(f"criterion {number_text!r} is not in set {set_id}")
        number = int(number_text)
        indicator = _text(cell("indicator"))
        if indicator and (
            not _INDICATOR.match(indicator) or indicator.split(".")[0] != number_text
        ):
            raise ValueError(f"indicator {indicator!r} does not belong to criterion {number}")
        met_text = fold(_text(cell("met")))
        if met_text not in YES | NO:
            raise ValueError(f"met must be có/không (yes/no), not {_text(cell('met'))!r}")
        assessed_on = _date(cell("assessed_on"))
        if assessed_on > today:
            raise ValueError(f"date {assessed_on.isoformat()} is in the future")
        title = _text(cell("title"))
        title_id = None
        if title:
            by_name = {fold(tid): tid for tid, _ in cset.titles}
            by_name |= {fold(name.get(lang, "")): tid for tid, name in cset.titles for lang in name}
            title_id = by_name.get(fold(title))
            if title_id is None:
                known = ", ".join(tid for tid, _ in cset.titles)
                raise ValueError(f"unknown title {title!r} for set {set_id} (known: {known})")
        return {
            "commune_code": code,
            "set_id": set_id,
            "criterion_number": number,
            "indicator_code": indicator,
            "met": met_text in YES,
            "value": _text(cell("value")) or None,
            "assessed_on": assessed_on,
            "published_by": _text(cell("published_by"))[:200],
            "source": _text(cell("source"))[:300],
            "title": title_id,
        }


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
