"""Finding a commune in Thái Nguyên by the names villagers use."""

import unicodedata

import pytest

from bot.app.services import Services
from bot.content.areas import bare

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


@pytest.mark.parametrize(
    ("typed", "name"),
    [
        # two letters swapped
        ("cao mnih", "Xã Cao Minh"),
        ("dong phcu", "Xã Đồng Phúc"),
        ("cho dno", "Xã Chợ Đồn"),
        ("Xã Cao Mnih", "Xã Cao Minh"),
        ("phuong duc xaun", "Phường Đức Xuân"),
        ("DONGPHCU", "Xã Đồng Phúc"),
        # one letter wrong (a neighbouring key)
        ("cao mibh", "Xã Cao Minh"),
        ("dong phux", "Xã Đồng Phúc"),
        # one letter missing
        ("cao mnh", "Xã Cao Minh"),
        ("dong phc", "Xã Đồng Phúc"),
        # one letter too many
        ("cao mjinh", "Xã Cao Minh"),
        ("cho dopn", "Xã Chợ Đồn"),
    ],
)
async def test_one_letter_off_still_finds_the_only_commune_it_can_be(
    services: Services, typed: str, name: str
) -> None:
    result = services.areas.search(typed)
    assert result.meant is not None and result.meant.name == name
    assert not result.found[0].exact


@pytest.mark.parametrize(
    ("typed", "names"),
    [
        # one letter from "tan khanh" and from "tan thanh"
        ("tan xhanh", {"Xã Tân Khánh", "Xã Tân Thành"}),
        # one letter from "tan khanh" and from "an khanh"
        ("tn khanh", {"Xã Tân Khánh", "Xã An Khánh"}),
        ("van khanh", {"Xã Tân Khánh", "Xã An Khánh"}),
    ],
)
async def test_a_typo_two_names_could_come_from_offers_both(
    services: Services, typed: str, names: set[str]
) -> None:
    result = services.areas.search(typed)
    assert result.meant is None
    assert names <= {c.name for c in result.communes}


async def test_every_swapped_pair_of_letters_finds_the_commune_or_asks(
    services: Services,
) -> None:
    # Every commune name of five letters or more, with each pair of neighbouring letters
    # swapped: never another commune, and most of the time the right one without asking.
    communes = services.reference.communes.values()
    names = {bare(c.name) for c in communes}
    tried = right = 0
    for commune in communes:
        name = bare(commune.name)
        if len(name.replace(" ", "")) < 5:
            continue
        for i in range(len(name) - 1):
            typo = name[:i] + name[i + 1] + name[i] + name[i + 2 :]
            if " " in name[i : i + 2] or typo == name or typo in names:
                continue
            meant = services.areas.search(typo).meant
            assert meant is None or meant == commune, (typo, meant)
            tried += 1
            right += meant == commune
    assert tried > 400
    assert right / tried >= 0.7


@pytest.mark.parametrize(
    "typed",
    [
        "na",
        "dung",
        "Đúng",
        "dừng",
        "Dũng",
        "huy",
        "hủy",
        "ok",
        "alo",
        "chao",
        "chào",
        "cam on",
        "cảm ơn",
        "dong y",  # one letter from "Đồng Hỷ"
        "Đồng ý",
        "ngày",  # one letter from "Nga My"
        "cho tôi",  # one letter from "Chợ Mới"
        "góp tiền",  # one letter from "Hợp Tiến"
        "văn hóa",  # one letter from "Tân Hòa"
        "đã hiểu",  # one letter from "Hà Hiệu"
        "tên cũ",  # one letter from "Yên Cư"
    ],
)
async def test_everyday_words_are_not_taken_for_a_commune(services: Services, typed: str) -> None:
    result = services.areas.search(typed)
    assert result.meant is None and not result.found


@pytest.mark.parametrize(
    ("typed", "name"),
    [
        ("Văn Lăng", "Xã Văn Lăng"),
        ("Văn Lang", "Xã Văn Lang"),
        ("VĂN LĂNG", "Xã Văn Lăng"),
        (unicodedata.normalize("NFD", "Văn Lăng"), "Xã Văn Lăng"),
        ("Xã Văn Lang", "Xã Văn Lang"),
        ("vănlăng", "Xã Văn Lăng"),
        ("van lăng", "Xã Văn Lăng"),  # the one mark typed is only in "Lăng"
        ("Văn Lăngg", "Xã Văn Lăng"),  # a typo, and the marks still choose
    ],
)
async def test_marks_choose_between_names_that_differ_only_by_them(
    services: Services, typed: str, name: str
) -> None:
    result = services.areas.search(typed)
    assert result.meant is not None and result.meant.name == name
    assert [c.name for c in result.communes] == [name]


@pytest.mark.parametrize(
    ("typed", "old_name", "name"),
    [
        ("Yến Lạc", "Thị trấn Yến Lạc", "Xã Na Rì"),
        ("Yên Lạc", "Xã Yên Lạc", "Xã Phú Lương"),
        (unicodedata.normalize("NFD", "thị trấn Yến Lạc"), "Thị trấn Yến Lạc", "Xã Na Rì"),
        ("Quán Triều", "Phường Quán Triều", "Phường Quan Triều"),
    ],
)
async def test_marks_choose_between_old_names_too(
    services: Services, typed: str, old_name: str, name: str
) -> None:
    result = services.areas.search(typed)
    assert result.meant is not None and result.meant.name == name
    assert [f.via.name for f in result.found if f.via is not None] == [old_name]


@pytest.mark.parametrize(
    ("typed", "names"),
    [
        ("van lang", {"Xã Văn Lang", "Xã Văn Lăng"}),
        ("VAN LANG", {"Xã Văn Lang", "Xã Văn Lăng"}),
        ("Vân Lang", {"Xã Văn Lang", "Xã Văn Lăng"}),  # marks of neither: both are offered
        ("yen lac", {"Xã Na Rì", "Xã Phú Lương"}),
    ],
)
async def test_without_their_marks_both_names_are_offered(
    services: Services, typed: str, names: set[str]
) -> None:
    result = services.areas.search(typed)
    assert result.meant is None
    assert {c.name for c in result.communes} == names
