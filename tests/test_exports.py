"""`chungsuc export contributions`: inert cells, a clear refusal, Vietnam's days."""

from __future__ import annotations

import asyncio
import csv
import io
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import update
from typer.testing import CliRunner, Result

from bot.app.services import Services
from bot.interfaces.cli.main import app
from bot.storage.contributions import Contribution, NewContribution
from bot.storage.schema import contributions

LINK = '=HYPERLINK("http://x","y")'


@pytest.fixture
def cli_db(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command uses the test's database, and no other setting from the environment."""
    for name in [n for n in os.environ if n.startswith("CHUNGSUC_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CHUNGSUC_DB_URL", str(services.db.engine.url))


async def export(*args: str) -> Result:
    """The command, in a thread: it runs its own event loop."""
    return await asyncio.to_thread(CliRunner().invoke, app, ["export", "contributions", *args])


async def gift(
    services: Services, key: str, *, created_at: datetime | None = None, **values: object
) -> Contribution:
    """A pledge in the first sample campaign of Chợ Đồn, as a villager might have typed it."""
    campaign = (await services.campaigns.in_commune("02020"))[0]
    fields: dict[str, object] = {
        "village": None,
        "display_name": "Bà Lành",
        "show_name": True,
        "kind": "materials",
        "amount": 5,
        "unit": "bao",
        "description": "xi măng",
        "due_on": None,
    } | values
    added, _ = await services.contributions.add(
        NewContribution(
            campaign=campaign,
            channel="telegram",
            user_id=key,
            source_key=key,
            **fields,  # type: ignore[arg-type]
        )
    )
    if created_at is None:
        return added
    async with services.db.write() as conn:
        await conn.execute(
            update(contributions)
            .where(contributions.c.id == added.id)
            .values(created_at=created_at)
        )
    moved = await services.contributions.get(added.id)
    assert moved is not None
    return moved


def by_receipt(csv_text: str) -> dict[str, dict[str, str]]:
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    return {row["ma_bien_nhan"]: row for row in rows}


async def test_what_villagers_typed_is_never_a_formula(
    services: Services, cli_db: None, tmp_path: Path
) -> None:
    typed = await gift(
        services,
        "f1",
        display_name=LINK,
        village="-1+1",
        description="@SUM(A1:A9)",
        unit="+bao",
    )
    tabbed = await gift(services, "f2", display_name="\t=1+1", description="\r=2")

    result = await export("--area", "02020")

    assert result.exit_code == 0, result.output
    rows = by_receipt(result.stdout)
    row = rows[typed.ref]
    assert row["ten_hien_thi"] == "'" + LINK
    assert (row["thon"], row["mo_ta"]) == ("'-1+1", "'@SUM(A1:A9)")
    assert row["so_luong"] == "5"  # a number stays a number
    assert row["ma_xa"] == "02020" and row["ma_bien_nhan"].startswith("CS-")
    assert rows[tabbed.ref]["ten_hien_thi"] == "'\t=1+1"
    assert rows[tabbed.ref]["mo_ta"] == "'\r=2"

    out = tmp_path / "dong-gop.xlsx"
    result = await export("--format", "xlsx", "-o", str(out))
    assert result.exit_code == 0, result.output
    sheet = load_workbook(out).worksheets[0]
    header = [c.value for c in sheet[1]]
    [cells] = [r for r in sheet.iter_rows(min_row=2) if r[0].value == typed.ref]
    name = cells[header.index("ten_hien_thi")]
    assert (name.value, name.data_type) == (LINK, "s")  # shown as typed, never run
    assert cells[header.index("mo_ta")].data_type == "s"
    amount = cells[header.index("so_luong")]
    assert (amount.value, amount.data_type) == (5, "n")


async def test_an_export_into_a_missing_folder_is_one_clear_line(
    services: Services, cli_db: None, tmp_path: Path
) -> None:
    target = tmp_path / "khong-co" / "dong-gop.csv"

    for format in ("csv", "xlsx"):
        result = await export("--format", format, "-o", str(target.with_suffix(f".{format}")))

        assert result.exit_code == 2, result.output
        assert result.stderr.splitlines() == [
            f"Không có thư mục {target.parent}: hãy tạo thư mục đó trước, hoặc ghi vào nơi khác."
        ]
        assert not isinstance(result.exception, OSError)  # no traceback
    assert not target.parent.exists()


async def test_days_and_dates_are_vietnams(services: Services, cli_db: None) -> None:
    """Vietnam is UTC+7: 18:30 UTC on the 28th is already the 29th there."""
    late_28 = await gift(services, "d1", created_at=datetime(2026, 11, 28, 16, 30, tzinfo=UTC))
    early_29 = await gift(services, "d2", created_at=datetime(2026, 11, 28, 18, 30, tzinfo=UTC))
    early_30 = await gift(services, "d3", created_at=datetime(2026, 11, 29, 17, 30, tzinfo=UTC))
    ours = {late_28.ref, early_29.ref, early_30.ref}

    since = await export("--area", "02020", "--since", "2026-11-29")
    one_day = await export("--area", "02020", "--since", "2026-11-29", "--until", "2026-11-29")
    up_to = await export("--area", "02020", "--until", "2026-11-28")

    assert since.exit_code == one_day.exit_code == up_to.exit_code == 0, since.output
    assert set(by_receipt(since.stdout)) & ours == {early_29.ref, early_30.ref}
    day = by_receipt(one_day.stdout)
    assert set(day) & ours == {early_29.ref}
    assert day[early_29.ref]["ngay_dang_ky"] == "2026-11-29"
    assert set(by_receipt(up_to.stdout)) & ours == {late_28.ref}
    assert by_receipt(up_to.stdout)[late_28.ref]["ngay_dang_ky"] == "2026-11-28"
    bad = await export("--until", "29/11/2026")
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.stderr
