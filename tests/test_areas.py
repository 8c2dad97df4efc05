"""Finding a commune in Thái Nguyên by the names villagers use."""

import unicodedata

import pytest

from bot.services import Services

CHO_DON = "02020"


@pytest.mark.parametrize(
    "typed",
    [
        "cho don",
        "Chợ Đồn",
        "CHO DON",
        unicodedata.normalize("NFD", "Chợ Đồn"),
        "chodon",
        "cho dong",
        "Xã Chợ Đồn",
    ],
)
async def test_today_name_in_any_form(services: Services, typed: str) -> None:
    result = services.areas.search(typed)
    assert result.meant is not None
    assert result.meant.code == CHO_DON


@pytest.mark.parametrize(
    ("typed", "old_name"),
    [
        ("Bằng Lãng", "Xã Bằng Lãng"),
        ("bang lung", "Thị trấn Bằng Lũng"),
        ("Ngọc Phái", "Xã Ngọc Phái"),
        ("phuong vien", "Xã Phương Viên"),
    ],
)
async def test_old_commune_names_lead_to_the_merged_commune(
    services: Services, typed: str, old_name: str
) -> None:
    result = services.areas.search(typed)
    assert result.meant is not None and result.meant.code == CHO_DON
    assert result.found[0].via is not None and result.found[0].via.name == old_name


async def test_an_old_district_offers_its_communes(services: Services) -> None:
    result = services.areas.search("Ba Bể")
    names = {c.name for c in result.communes}
    assert {"Xã Ba Bể", "Xã Chợ Rã", "Xã Phúc Lộc", "Xã Thượng Minh", "Xã Đồng Phúc"} <= names
    assert result.meant is not None and result.meant.name == "Xã Ba Bể"
    assert any(f.via is not None and f.via.name == "Huyện Ba Bể" for f in result.found)


async def test_unknown_names_get_suggestions_not_a_guess(services: Services) -> None:
    result = services.areas.search("Chợ Đồn'; DROP TABLE users;--")
    assert result.meant is None
    assert "Xã Chợ Đồn" in [c.name for c in result.suggestions]
    nothing = services.areas.search("zzzzqqq")
    assert nothing.meant is None and not nothing.found and not nothing.suggestions


async def test_only_the_configured_province_is_searched(services: Services) -> None:
    # Communes of other provinces are never offered: every match is in Thái Nguyên.
    assert all(c.province_code == "19" for c in services.reference.communes.values())
    assert len(services.reference.communes) == 92
