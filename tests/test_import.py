"""Status import (`chungsuc import status FILE`): the importer, the store and the command."""

from __future__ import annotations

import csv
import sqlite3
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select
from typer.testing import CliRunner

from bot.app.services import Services
from bot.content.importer import ImportRejected, StatusImporter, file_digest, read_table
from bot.core.dispatch import Dispatcher
from bot.domain.i18n import use_locale
from bot.interfaces.cli.main import app
from bot.storage.schema import status_imports, status_records, title_records
from bot.storage.statuses import CommuneStatus, ImportBatch
from handlers import build_router
from tests.conftest import Chat

SET = "2026-2030"
CHO_DON = "02020"
HEADER = [
    "ma_xa",
    "bo_tieu_chi",
    "tieu_chi",
    "chi_tieu",
    "dat",
    "gia_tri",
    "ngay_danh_gia",
    "don_vi_cong_bo",
    "nguon",
    "danh_hieu",
]
HEADER_VI = [
    "Mã xã",
    "Bộ tiêu chí",
    "Tiêu chí",
    "Chỉ tiêu",
    "Đạt",
    "Giá trị",
    "Ngày đánh giá",
    "Đơn vị công bố",
    "Nguồn",
    "Danh hiệu",
]
PUBLISHER = "UBND huyện Chợ Đồn"
SOURCE = "Báo cáo 12/BC-UBND, ngày 30/6/2026"
MET_WORDS = ["có", "Đạt", "x", "CÓ", "1", "có", "đạt"]  # criteria 1–7
NOT_MET_WORDS = ["không", "Chưa đạt", "0"]  # criteria 8–10


def good_rows(on: str = "30/06/2026") -> list[list[object]]:
    """Chợ Đồn against the 2026–2030 set: criteria 1–7 met, 8–10 not, plus one indicator."""
    words = MET_WORDS + NOT_MET_WORDS
    rows: list[list[object]] = [
        [CHO_DON, SET, n, "", words[n - 1], "", on, PUBLISHER, SOURCE, ""] for n in range(1, 11)
    ]
    rows[0][9] = "Chưa đạt chuẩn nông thôn mới"
    rows.append([CHO_DON, SET, 2, "2.1", "có", "85%", on, PUBLISHER, SOURCE, ""])
    return rows


def write_csv(
    path: Path,
    rows: Sequence[Sequence[object]],
    header: Sequence[str] = HEADER,
    delimiter: str = ",",
    encoding: str = "utf-8",
) -> Path:
    with path.open("w", encoding=encoding, newline="") as f:
        writer = csv.writer(f, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


async def check(services: Services, path: Path, by: str = "tester") -> ImportBatch:
    return await StatusImporter(services.db, services.reference).check(
        read_table(path),
        file_name=path.name,
        sha256=file_digest(path),
        imported_by=by,
        today=services.today(),
    )


async def import_file(services: Services, path: Path, by: str = "tester") -> int:
    """Check and record one file, as the command does; returns the number of status rows."""
    batch = await check(services, path, by)
    await services.statuses.record(batch)
    return len(batch.statuses)


async def counts(services: Services) -> tuple[int, int, int]:
    found = []
    async with services.db.read() as conn:
        for table in (status_records, status_imports, title_records):
            found.append((await conn.execute(select(func.count()).select_from(table))).scalar_one())
    return found[0], found[1], found[2]


async def rejected(services: Services, path: Path) -> list[str]:
    """The problems of a file that must be rejected; asserts that nothing was written."""
    before = await counts(services)
    with pytest.raises(ImportRejected) as caught:
        await import_file(services, path)
    assert await counts(services) == before
    return caught.value.problems


def assert_cho_don_card(status: CommuneStatus) -> None:
    assert status.met == [1, 2, 3, 4, 5, 6, 7]
    assert sorted(status.criteria) == list(range(1, 11))
    assert not any(status.criteria[n].met for n in (8, 9, 10))
    entry = status.criteria[3]
    assert (entry.assessed_on, entry.published_by, entry.source) == (
        date(2026, 6, 30),
        PUBLISHER,
        SOURCE,
    )
    assert not status.is_sample
    assert status.indicators["2.1"].value == "85%"
    assert status.indicators["2.1"].met
    assert status.title is not None
    assert status.title.title == "chua_dat"


# --- good files --------------------------------------------------------------------------------


async def test_good_csv_becomes_the_status_card(empty_services: Services, tmp_path: Path) -> None:
    services = empty_services
    path = write_csv(tmp_path / "cho-don.csv", good_rows())

    assert await import_file(services, path, by="so-nong-nghiep") == 11

    assert await counts(services) == (11, 1, 1)
    assert_cho_don_card(await services.statuses.commune(SET, CHO_DON))
    assert await services.statuses.met_counts(SET, [CHO_DON, "01840"]) == {CHO_DON: 7}
    assert (await services.statuses.commune(SET, "01840")).criteria == {}
    async with services.db.read() as conn:
        batch = (await conn.execute(select(status_imports))).one()
    assert (batch.file_name, batch.imported_by, batch.is_sample) == (
        "cho-don.csv",
        "so-nong-nghiep",
        False,
    )
    assert batch.sha256 == file_digest(path)

    # and what a villager of Chợ Đồn now sees
    router, fallbacks = build_router()
    chat = Chat(Dispatcher(services, router, fallbacks))
    await chat.say("/start")
    await chat.press("lang:vi")
    await chat.say("cho don")
    card = await chat.say("/tiendo")
    assert "Đạt 7/10 tiêu chí" in card
    assert "Dữ liệu mẫu" not in card
    assert PUBLISHER in card


async def test_xlsx_with_date_cells_and_numeric_codes(
    empty_services: Services, tmp_path: Path
) -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(HEADER)
    for row in good_rows():
        # what Excel keeps: 02020 typed as the number 2020, the date as a date cell
        cells = [2020, *row[1:6], date(2026, 6, 30), *row[7:]]
        sheet.append([None if c == "" else c for c in cells])
    path = tmp_path / "cho-don.xlsx"
    workbook.save(path)

    assert await import_file(empty_services, path) == 11
    assert_cho_don_card(await empty_services.statuses.commune(SET, CHO_DON))


async def test_diacritic_headers_and_semicolons(empty_services: Services, tmp_path: Path) -> None:
    # Excel's "CSV UTF-8" in a Vietnamese locale: a BOM, semicolons, commas inside values
    path = write_csv(
        tmp_path / "cho-don.csv", good_rows(), HEADER_VI, delimiter=";", encoding="utf-8-sig"
    )
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")

    assert await import_file(empty_services, path) == 11
    assert_cho_don_card(await empty_services.statuses.commune(SET, CHO_DON))


async def test_columns_in_any_order_and_optional_ones_absent(
    empty_services: Services, tmp_path: Path
) -> None:
    header = ["nguon", "don_vi_cong_bo", "ngay_danh_gia", "dat", "tieu_chi", "bo_tieu_chi", "ma_xa"]
    rows = [[SOURCE, PUBLISHER, "2026-06-30", "có", 4, SET, CHO_DON]]
    path = write_csv(tmp_path / "one.csv", rows, header)

    assert await import_file(empty_services, path) == 1
    status = await empty_services.statuses.commune(SET, CHO_DON)
    assert status.met == [4]
    assert status.title is None


# --- malformed files ---------------------------------------------------------------------------


async def test_malformed_rows_are_all_reported_and_nothing_is_written(
    empty_services: Services, tmp_path: Path
) -> None:
    services = empty_services
    await import_file(services, write_csv(tmp_path / "earlier.csv", good_rows()))
    card_before = await services.statuses.commune(SET, CHO_DON)

    def row(**changes: object) -> list[object]:
        defaults = [CHO_DON, SET, 1, "", "có", "", "31/10/2026", "Xã", "QĐ 1", ""]
        values = dict(zip(HEADER, defaults, strict=True))
        values.update(changes)
        return [values[h] for h in HEADER]

    rows = [
        row(tieu_chi=2),  # row 2: fine on its own
        row(ma_xa="99999"),  # 3
        row(tieu_chi=11),  # 4: the 2026–2030 set has 10 criteria
        row(dat="có lẽ"),  # 5
        row(ngay_danh_gia="01/12/2026"),  # 6: TODAY is 29/11/2026
        [],  # 7: a blank line keeps its number
        row(tieu_chi=2, chi_tieu="3.1"),  # 8
        row(don_vi_cong_bo=""),  # 9
        row(tieu_chi=2),  # 10: repeats row 2
        row(ngay_danh_gia="31/02/2026"),  # 11
        row(bo_tieu_chi="2026-2035"),  # 12
        row(danh_hieu="Xã anh hùng"),  # 13
    ]
    path = write_csv(tmp_path / "bad.csv", rows)

    problems = await rejected(services, path)

    expected = {
        3: "“ma_xa”: không có xã nào mã “99999”",
        4: "“tieu_chi”: bộ 2026-2030 không có tiêu chí “11”",
        5: "“dat”: ghi “có” hoặc “không”, không phải “có lẽ”",
        6: "“ngay_danh_gia”: ngày 01/12/2026 chưa đến",
        8: "“chi_tieu”: chỉ tiêu “3.1” không thuộc tiêu chí 2",
        9: "“don_vi_cong_bo” để trống",
        10: "trùng với dòng 2",
        11: "“ngay_danh_gia”: “31/02/2026” không phải ngày dạng dd/mm/yyyy",
        12: "“bo_tieu_chi”: không có bộ tiêu chí “2026-2035” (có: 2021-2025, 2026-2030)",
        13: "“danh_hieu”: bộ 2026-2030 không có danh hiệu “Xã anh hùng” (có: chua_dat,",
    }
    assert len(problems) == len(expected)
    for (number, reason), problem in zip(expected.items(), problems, strict=True):
        assert problem.startswith(f"dòng {number}: {reason}")
    assert await services.statuses.commune(SET, CHO_DON) == card_before


async def test_every_problem_of_a_row_is_told_with_the_column_as_the_file_names_it(
    empty_services: Services, tmp_path: Path
) -> None:
    """One line per row, every problem in it, the columns as written in the file's header."""
    rows = [
        ["99999", SET, 4, "", "có lẽ", "", "01/12/2026", PUBLISHER, "", ""],  # row 2
        [CHO_DON, "2026-2035", 99, "99.1", "có", "", "30/06/2026", PUBLISHER, SOURCE, "x"],
    ]
    path = write_csv(tmp_path / "nhieu-loi.csv", rows, HEADER_VI)

    problems = await rejected(empty_services, path)

    assert problems == [
        "dòng 2: “Nguồn” để trống; “Mã xã”: không có xã nào mã “99999”; "
        "“Đạt”: ghi “có” hoặc “không”, không phải “có lẽ”; "
        "“Ngày đánh giá”: ngày 01/12/2026 chưa đến",
        # an unknown set: its criterion, indicator and title cannot be judged, so are not
        "dòng 3: “Bộ tiêu chí”: không có bộ tiêu chí “2026-2035” (có: 2021-2025, 2026-2030)",
    ]
    with use_locale("en"):
        english = await rejected(empty_services, path)
    assert english[0] == (
        "row 2: “Nguồn” is empty; “Mã xã”: no commune has the code “99999”; "
        "“Đạt”: write “có” or “không” (yes/no), not “có lẽ”; "
        "“Ngày đánh giá”: Dec 1, 2026 has not come yet"
    )


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        pytest.param(b"", "bad.csv: tệp trống", id="empty"),
        pytest.param(b"\n\n", "dòng 1: thiếu cột ma_xa,", id="blank-lines"),
        pytest.param(
            ",".join(HEADER).encode() + b"\n", "tệp không có dòng số liệu nào", id="header"
        ),
        pytest.param(
            ",".join(h for h in HEADER if h != "nguon").encode()
            + f"\n{CHO_DON},{SET},1,,có,,30/06/2026,Xã,\n".encode(),
            "dòng 1: thiếu cột nguon",
            id="missing-column",
        ),
        pytest.param(
            b"ma_xa\n02020\n",
            "dòng 1: thiếu cột bo_tieu_chi, tieu_chi, dat, ngay_danh_gia, don_vi_cong_bo, nguon",
            id="one-column",
        ),
        pytest.param(
            "\t".join(HEADER_VI).encode("utf-16") + "\n".encode("utf-16-le"),
            "bad.csv: tệp không phải UTF-8; hãy lưu lại dưới dạng “CSV UTF-8”",
            id="not-utf8",
        ),
    ],
)
async def test_malformed_files_are_rejected(
    empty_services: Services, tmp_path: Path, content: bytes, problem: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    problems = await rejected(empty_services, path)
    assert len(problems) == 1
    assert problems[0].startswith(problem)


@pytest.mark.parametrize("name", ["bad.xlsx", "bad.ods"])
async def test_unreadable_or_unknown_file_types(
    empty_services: Services, tmp_path: Path, name: str
) -> None:
    path = tmp_path / name
    path.write_text("ma_xa,bo_tieu_chi\n", encoding="utf-8")
    (problem,) = await rejected(empty_services, path)
    assert problem.startswith(f"{name}: ")


# --- history -----------------------------------------------------------------------------------


async def test_later_assessment_becomes_current_and_history_is_kept(
    empty_services: Services, tmp_path: Path
) -> None:
    services = empty_services

    def one(met: str, on: str, publisher: str, source: str) -> list[list[object]]:
        return [[CHO_DON, SET, 2, "", met, "", on, publisher, source, ""]]

    first = write_csv(
        tmp_path / "june.csv", one("không", "30/06/2026", "UBND xã Chợ Đồn", "Báo cáo 12/BC")
    )
    second = write_csv(
        tmp_path / "oct.csv", one("có", "31/10/2026", "Sở Nông nghiệp", "QĐ 345/QĐ-UBND")
    )
    await import_file(services, first, by="telegram:111")
    assert (await services.statuses.commune(SET, CHO_DON)).met == []

    await import_file(services, second, by="telegram:222")

    current = (await services.statuses.commune(SET, CHO_DON)).criteria[2]
    assert (current.met, current.assessed_on, current.published_by, current.source) == (
        True,
        date(2026, 10, 31),
        "Sở Nông nghiệp",
        "QĐ 345/QĐ-UBND",
    )
    history = await services.statuses.history("2026-2030", CHO_DON, 2)
    assert [(e.met, e.assessed_on, e.published_by, e.source) for e in history] == [
        (True, date(2026, 10, 31), "Sở Nông nghiệp", "QĐ 345/QĐ-UBND"),
        (False, date(2026, 6, 30), "UBND xã Chợ Đồn", "Báo cáo 12/BC"),
    ]
    async with services.db.read() as conn:
        who = (
            await conn.execute(
                select(status_records.c.assessed_on, status_imports.c.imported_by)
                .join(status_imports, status_imports.c.id == status_records.c.import_id)
                .where(status_imports.c.imported_at.is_not(None))
                .order_by(status_records.c.assessed_on)
            )
        ).all()
    assert [tuple(r) for r in who] == [
        (date(2026, 6, 30), "telegram:111"),
        (date(2026, 10, 31), "telegram:222"),
    ]

    # a late import of an older assessment goes into the history, not over the current one
    older = write_csv(tmp_path / "march.csv", one("không", "31/03/2026", "Xã", "Báo cáo 3"))
    await import_file(services, older)
    assert (await services.statuses.commune(SET, CHO_DON)).criteria[2].met
    assert [e.assessed_on for e in await services.statuses.history("2026-2030", CHO_DON, 2)] == [
        date(2026, 10, 31),
        date(2026, 6, 30),
        date(2026, 3, 31),
    ]


async def test_official_import_replaces_the_sample(services: Services, tmp_path: Path) -> None:
    before = await services.statuses.commune(SET, CHO_DON)
    assert before.is_sample
    records, imports, _ = await counts(services)

    await import_file(services, write_csv(tmp_path / "nov.csv", good_rows("15/11/2026")))

    after = await services.statuses.commune(SET, CHO_DON)
    assert not after.is_sample
    assert after.met == [1, 2, 3, 4, 5, 6, 7]
    assert after.latest is not None and after.latest.assessed_on == date(2026, 11, 15)
    assert (await counts(services))[:2] == (records + 11, imports + 1)
    history = await services.statuses.history("2026-2030", CHO_DON, 1)
    assert [(e.assessed_on, e.is_sample) for e in history] == [
        (date(2026, 11, 15), False),
        (date(2026, 10, 31), True),
        (date(2026, 6, 30), True),
    ]
    # the other communes keep their sample statuses (Na Rì; wards have none: not in the programme)
    assert (await services.statuses.commune(SET, "02155")).is_sample


# --- the command -------------------------------------------------------------------------------


def _db_counts(db: Path) -> tuple[int, int]:
    with sqlite3.connect(db) as conn:
        records = conn.execute("SELECT count(*) FROM status_records").fetchone()[0]
        imports = conn.execute("SELECT count(*) FROM status_imports").fetchone()[0]
    conn.close()
    return records, imports


def test_import_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "cli.sqlite3"
    monkeypatch.setenv("CHUNGSUC_DB_URL", f"sqlite+aiosqlite:///{db}")
    monkeypatch.delenv("CHUNGSUC_CONFIG", raising=False)
    runner = CliRunner()
    bad_rows = [*good_rows(), [CHO_DON, SET, 11, "", "có", "", "01/01/2026", "Xã", "QĐ 1", ""]]
    bad_rows.append([CHO_DON, SET, 1, "", "[/b]", "", "01/01/2026", "Xã", "QĐ 1", ""])
    bad = write_csv(tmp_path / "bad.csv", bad_rows)

    result = runner.invoke(app, ["import", "status", str(bad)])

    assert result.exit_code == 1, result.output
    assert "bad.csv chưa được nhập, không có gì thay đổi:" in result.stderr
    assert "dòng 13: “tieu_chi”: bộ 2026-2030 không có tiêu chí “11”" in result.stderr
    assert "dòng 14: “dat”: ghi “có” hoặc “không”, không phải “[/b]”" in result.stderr
    assert "Imported" not in result.stdout
    assert _db_counts(db) == (0, 0)

    good = write_csv(tmp_path / "good.csv", good_rows())
    result = runner.invoke(app, ["import", "status", str(good), "--by", "telegram:42"])

    assert result.exit_code == 0, result.output
    assert "Imported 11 status rows from good.csv." in result.stdout
    assert _db_counts(db) == (11, 1)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT imported_by FROM status_imports").fetchall() == [
            ("telegram:42",)
        ]
    conn.close()


def test_a_file_over_the_limit_is_refused_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "cli.sqlite3"
    monkeypatch.setenv("CHUNGSUC_DB_URL", f"sqlite+aiosqlite:///{db}")
    monkeypatch.setenv("CHUNGSUC_IMPORT_MAX_MB", "1")
    monkeypatch.delenv("CHUNGSUC_CONFIG", raising=False)
    big = tmp_path / "ca-tinh.csv"
    # not UTF-8 either: had it been read, that is what the command would have said
    big.write_bytes(",".join(HEADER).encode() + b"\n" + b"\xff" * (3 * 1024 * 1024 // 2))

    result = CliRunner().invoke(app, ["import", "status", str(big)])

    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines() == [
        "ca-tinh.csv chưa được nhập, không có gì thay đổi:",
        "  ca-tinh.csv: tệp nặng 1,5 MB, quá giới hạn 1 MB; hãy chia thành nhiều tệp",
    ]
    assert _db_counts(db) == (0, 0)


def test_an_xlsx_that_unpacks_to_too_much_is_refused(tmp_path: Path) -> None:
    """A workbook is compressed: what it unpacks to is what would be held in memory."""
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(HEADER)
    for _ in range(6000):
        sheet.append([CHO_DON, SET, 1, None, "có", None, "30/06/2026", PUBLISHER, SOURCE])
    path = tmp_path / "nen.xlsx"
    workbook.save(path)
    assert path.stat().st_size < 0.2 * 1024 * 1024  # small as a file

    with pytest.raises(ImportRejected) as caught:
        read_table(path, max_mb=0.2)

    (problem,) = caught.value.problems
    assert problem.startswith("nen.xlsx: giải nén ra ")
    assert problem.endswith(" MB, quá giới hạn 1,2 MB; hãy chia thành nhiều tệp")
    assert len(read_table(path, max_mb=1).rows) == 6000


def test_import_command_needs_an_existing_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHUNGSUC_DB_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.sqlite3'}")
    result = CliRunner().invoke(app, ["import", "status", str(tmp_path / "missing.csv")])
    assert result.exit_code == 2
    assert "does not exist" in result.stderr
    assert not (tmp_path / "cli.sqlite3").exists()
