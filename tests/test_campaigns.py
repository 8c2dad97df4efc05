"""Campaigns from files and from chat, and the export of a commune's records."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select
from typer.testing import CliRunner

from bot.campaign_files import CampaignFileError, load_campaign_files, read_campaign
from bot.cli import app
from bot.dispatch import Dispatcher
from bot.services import Services
from bot.storage.schema import audit_log
from tests.conftest import Chat

GOOD = """
slug = "cau-treo"
name = "Cầu treo bản Cuôn"
commune = "02020"
kinds = ["money", "workdays"]
starts_on = 2026-10-01
[targets]
money = "1,5 tỷ"
workdays = "27.955 ngày công"
"""


def write(tmp_path: Path, text: str, name: str = "cau-treo.toml") -> Path:
    folder = tmp_path / "campaigns"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_campaign_file_is_read_with_targets_as_people_write_them(tmp_path: Path) -> None:
    values = read_campaign(write(tmp_path, GOOD), {"02020"})
    assert values["targets"] == {"money": 1_500_000_000, "workdays": 27_955 * 2}
    assert values["source"] == "campaigns/cau-treo.toml" and values["status"] == "open"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (('commune = "02020"', 'commune = "99999"'), "unknown commune"),
        (('kinds = ["money", "workdays"]', 'kinds = ["gold"]'), "kinds must be among"),
        (('money = "1,5 tỷ"', 'money = "nhiều"'), "target money"),
        (("starts_on = 2026-10-01", 'starts_on = "mai"'), "dates are written like"),
        (('name = "Cầu treo bản Cuôn"', ""), "'name' is missing"),
        (("[targets]", "[targets"), "cau-treo.toml"),
    ],
)
def test_a_bad_campaign_file_names_its_problem(
    tmp_path: Path, change: tuple[str, str], problem: str
) -> None:
    with pytest.raises(CampaignFileError, match=problem):
        read_campaign(write(tmp_path, GOOD.replace(*change)), {"02020"})


async def test_files_create_then_update_by_slug_with_an_audit_trail(
    services: Services, tmp_path: Path
) -> None:
    path = write(tmp_path, GOOD)
    communes = set(services.reference.communes)
    assert await load_campaign_files(services.campaigns, communes, path.parent) == 1
    assert await load_campaign_files(services.campaigns, communes, path.parent) == 0
    path.write_text(GOOD.replace("Cầu treo bản Cuôn", "Cầu treo bản Cuôn mới"), "utf-8")
    assert await load_campaign_files(services.campaigns, communes, path.parent) == 1
    campaign = await services.campaigns.by_slug("cau-treo")
    assert campaign is not None and campaign.name == "Cầu treo bản Cuôn mới"
    async with services.db.read() as conn:
        rows = (
            await conn.execute(
                select(audit_log.c.action, audit_log.c.before, audit_log.c.after).where(
                    audit_log.c.entity == "campaign", audit_log.c.entity_id == str(campaign.id)
                )
            )
        ).all()
    assert [r.action for r in rows] == ["campaign.create", "campaign.update"]
    assert rows[1].before["name"] == "Cầu treo bản Cuôn"
    assert rows[1].after["name"] == "Cầu treo bản Cuôn mới"


async def test_an_official_opens_a_campaign_in_chat(
    services: Services, dispatcher: Dispatcher
) -> None:
    await services.officials.grant("telegram:cb", "commune_official", "02155", "test")
    official = Chat(dispatcher, "telegram", "cb")
    assert "Tên cuộc vận động" in await official.say("/taophongtrao")
    assert "Nhận những gì?" in await official.say("Đường liên thôn Na Rì")
    await official.press("camp:kind:money")
    await official.press("camp:kind:workdays")
    assert "Mục tiêu?" in await official.press("camp:kinds")
    assert "Ngày kết thúc?" in await official.say("300 triệu, 800 ngày công")
    summary = await official.say("31/12/2026")
    assert "Mở “Đường liên thôn Na Rì” ở Xã Na Rì" in summary
    assert "300.000.000 đồng, 800 ngày công" in summary and "31/12/2026" in summary
    assert "Đã mở “Đường liên thôn Na Rì”" in await official.press("camp:ok")
    [campaign] = [c for c in await services.campaigns.in_commune("02155") if c.source == "chat"]
    assert campaign.targets == {"money": 300_000_000, "workdays": 1600}
    villager = Chat(dispatcher, "telegram", "v")
    await villager.say("/start")
    await villager.press("lang:vi")
    await villager.say("Na Rì")
    assert "Bạn muốn góp cho phong trào, công trình nào?" in await villager.say("/dongop")
    assert f"contrib:camp:{campaign.id}" in villager.buttons


async def test_villagers_cannot_open_campaigns(dispatcher: Dispatcher) -> None:
    villager = Chat(dispatcher, "telegram", "v")
    assert "chỉ cán bộ xã phụ trách" in await villager.say("/newcampaign")


def test_export_contributions_as_csv_and_xlsx(
    services: Services, settings: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHUNGSUC_DB_URL", f"sqlite+aiosqlite:///{tmp_path / 'chungsuc.sqlite3'}")
    runner = CliRunner()
    result = runner.invoke(app, ["export", "contributions", "--area", "02020"])
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0][:3] == ["ma_bien_nhan", "cuoc_van_dong", "ma_xa"]
    assert len(rows) == 1 + 5 and {r[2] for r in rows[1:]} == {"02020"}
    assert rows[1][5:8] == ["workdays", "3.0", "ngày công"]
    out = tmp_path / "dong-gop.xlsx"
    result = runner.invoke(app, ["export", "contributions", "--format", "xlsx", "-o", str(out)])
    assert result.exit_code == 0, result.output
    workbook = load_workbook(out, read_only=True)
    try:
        assert len(list(workbook.worksheets[0].iter_rows(values_only=True))) == 1 + 6
    finally:
        workbook.close()
    later = runner.invoke(app, ["export", "contributions", "--since", "2099-01-01"])
    assert later.exit_code == 0 and len(later.stdout.strip().splitlines()) == 1
    bad = runner.invoke(app, ["export", "contributions", "--area", "77777"])
    assert bad.exit_code == 2
