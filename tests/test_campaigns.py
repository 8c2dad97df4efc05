"""Campaigns from files and from chat, and the export of a commune's records."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select
from typer.testing import CliRunner

from bot.app.services import Services
from bot.content.campaign_files import CampaignFileError, load_campaign_files, read_campaign
from bot.core.dispatch import Dispatcher
from bot.domain.text import fold
from bot.interfaces.cli.main import app
from bot.storage.contributions import Campaign
from bot.storage.schema import audit_log
from tests.conftest import TODAY, Chat

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
                select(audit_log.c.action, audit_log.c.before, audit_log.c.after)
                .where(audit_log.c.entity == "campaign", audit_log.c.entity_id == str(campaign.id))
                .order_by(audit_log.c.id)  # PostgreSQL returns rows in no order of its own
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
    services: Services, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHUNGSUC_DB_URL", db_url)
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


# --- opening a campaign in chat: what the declared steps must never let through -------------

APOLOGY = "Xin lỗi, hệ thống đang gặp sự cố"
LONG = "Bê tông hóa đường liên thôn từ trung tâm xã Na Rì đến bản"  # 47+ folded characters


@pytest.fixture(params=["terminal", "telegram", "zalo"])
async def official(
    services: Services, dispatcher: Dispatcher, request: pytest.FixtureRequest
) -> Chat:
    """A commune official of Na Rì on each channel (on terminal and Zalo a press is a number)."""
    await services.officials.grant(f"{request.param}:cb", "commune_official", "02155", "test")
    return Chat(dispatcher, request.param, "cb")


async def at_kinds(official: Chat, name: str = "Đường liên thôn Na Rì") -> None:
    assert "Tên cuộc vận động" in await official.say("/taophongtrao")
    assert "Nhận những gì?" in await official.say(name)


async def open_campaign(official: Chat, name: str) -> str:
    """The whole flow for a campaign of money only, without target or end date."""
    await at_kinds(official, name)
    await official.press("camp:kind:money")
    assert "Mục tiêu?" in await official.press("camp:kinds")
    assert "Ngày kết thúc?" in await official.say("bỏ qua")
    assert "Đúng không?" in await official.say("bỏ qua")
    return await official.press("camp:ok")


async def from_chat(services: Services) -> list[Campaign]:
    return [c for c in await services.campaigns.in_commune("02155") if c.source == "chat"]


async def villager_of_na_ri(dispatcher: Dispatcher) -> Chat:
    villager = Chat(dispatcher, "telegram", "v")
    await villager.say("/start")
    await villager.press("lang:vi")
    await villager.say("Na Rì")
    return villager


async def test_a_campaign_cannot_be_opened_without_kinds(
    official: Chat, services: Services, dispatcher: Dispatcher
) -> None:
    await at_kinds(official)
    # "bỏ qua" skips a target or an end date; here it is a cancel word, so it asks first.
    assert "Bạn muốn hủy việc đang làm?" in await official.say("bỏ qua")
    assert "Nhận những gì?" in await official.press("menu:back")
    assert "Chọn ít nhất một loại." in await official.press("camp:kinds")
    await official.press("camp:kind:money")
    await official.press("camp:kind:money")  # and off again
    assert "Chọn ít nhất một loại." in await official.press("camp:kinds")
    assert "Chọn ít nhất một loại." in await official.say("xong")  # the label, typed
    answer = await official.say("không")
    assert "Mục tiêu?" not in answer and "Nhận những gì?" in answer
    assert "camp:kinds" in official.buttons  # still at the kinds, asked again
    assert await from_chat(services) == []
    villager = await villager_of_na_ri(dispatcher)
    for asked in ("/dongop", "/bangdonggop"):
        assert APOLOGY not in await villager.say(asked)


async def test_a_campaign_without_kinds_already_stored_gets_no_villager_an_apology(
    services: Services, dispatcher: Dispatcher
) -> None:
    """One opened before the steps were declared: not open to pledges, and no crash."""
    await services.campaigns.save(
        {
            "slug": "02155-2026-11-01-",
            "name": "Không nhận gì",
            "description": None,
            "commune_code": "02155",
            "villages": [],
            "kinds": [],
            "targets": {},
            "starts_on": TODAY,
            "ends_on": None,
            "status": "open",
            "source": "chat",
            "is_sample": False,
        },
        actor="telegram:old",
    )
    [kindless] = [c for c in await services.campaigns.in_commune("02155") if not c.kinds]
    villager = await villager_of_na_ri(dispatcher)
    pledge = await villager.say("/dongop")
    assert APOLOGY not in pledge and "Không nhận gì" not in pledge
    assert f"contrib:camp:{kindless.id}" not in villager.buttons
    assert APOLOGY not in await villager.press_unoffered(f"contrib:camp:{kindless.id}")
    board = await villager.say("/bangdonggop")
    assert APOLOGY not in board and f"tally:camp:{kindless.id}" in villager.buttons
    assert "Không nhận gì" in await villager.press(f"tally:camp:{kindless.id}")
    assert "contrib:start" not in villager.buttons  # no "Đóng góp" under it


async def test_opening_a_campaign_never_overwrites_another(
    official: Chat, services: Services
) -> None:
    # The slug was once the date and the first 47 folded letters of the name.
    first, second = LONG + " Cuôn", LONG + " Pác Pậu"
    assert fold(first)[:47] == fold(second)[:47]
    assert "Đã mở" in await open_campaign(official, first)
    assert "Đã mở" in await open_campaign(official, second)
    assert "Đã mở" in await open_campaign(official, first)  # the same name again: a new one
    assert sorted(c.name for c in await from_chat(services)) == [first, first, second]


@pytest.mark.parametrize("name", ["!!!", "...", "🙂🙂"])
async def test_a_name_without_letters_is_refused_clearly(
    official: Chat, services: Services, name: str
) -> None:
    assert "Tên cuộc vận động" in await official.say("/taophongtrao")
    answer = await official.say(name)
    assert APOLOGY not in answer
    assert "Tên cần có chữ hoặc số" in answer and "Tên cuộc vận động" in answer
    assert "Nhận những gì?" in await official.say("Nhà văn hóa bản Cuôn")
    assert await from_chat(services) == []


async def test_a_name_in_another_script_is_a_name(official: Chat, services: Services) -> None:
    """It folds to nothing, so it cannot be matched on; it is still the campaign's name."""
    assert fold("中文名称") == ""
    assert "Đã mở “中文名称”" in await open_campaign(official, "中文名称")
    assert "Đã mở “Quỹ khuyến học”" in await open_campaign(official, "Quỹ khuyến học")
    assert "Đã mở “中文名称”" in await open_campaign(official, "中文名称")
    assert sorted(c.name for c in await from_chat(services)) == [
        "Quỹ khuyến học",
        *["中文名称"] * 2,
    ]


@pytest.mark.parametrize("confirm", [None, "đúng, mở", "Đúng"])
async def test_a_revoked_official_cannot_open_the_campaign_at_the_confirmation(
    official: Chat, services: Services, confirm: str | None
) -> None:
    await at_kinds(official)
    await official.press("camp:kind:money")
    await official.press("camp:kinds")
    await official.say("bỏ qua")
    assert "Đúng không?" in await official.say("bỏ qua")
    assert await services.officials.revoke(f"{official.channel}:cb", "commune_official", "02155")
    answer = await official.press("camp:ok") if confirm is None else await official.say(confirm)
    assert "chỉ cán bộ xã phụ trách" in answer
    assert await from_chat(services) == []
    async with services.db.read() as conn:
        actions = await conn.execute(
            select(audit_log.c.action).where(audit_log.c.actor == f"{official.channel}:cb")
        )
        assert actions.scalars().all() == []


@pytest.mark.parametrize("typed", ["khong", "không", "ko"])
async def test_no_typed_at_the_campaign_confirmation_asks_before_leaving_and_opens_nothing(
    official: Chat, services: Services, typed: str
) -> None:
    """ "khong" at "Đúng không? Đúng, mở / Hủy" got "chưa hiểu"; it means Hủy, asked first."""
    await at_kinds(official)
    await official.press("camp:kind:money")
    await official.press("camp:kinds")
    await official.say("bỏ qua")
    assert "Đúng không?" in await official.say("bỏ qua")
    asked = await official.say(typed)
    assert "hủy" in asked.lower() and "chưa hiểu" not in asked
    assert await from_chat(services) == []
    assert "Đúng không?" in await official.press("menu:back")  # "Tiếp tục": back where it was
    await official.press("camp:ok")
    assert [c.name for c in await from_chat(services)] == ["Đường liên thôn Na Rì"]
