"""The catalogs: complete, current, and shared by code and templates; Babel formats per locale."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from bot.app.services import Services
from bot.domain.i18n import fmt_compact, fmt_date, fmt_number, use_locale
from bot.domain.paths import LOCALES_DIR, TEMPLATES_DIR

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def catalog(locale: str) -> Catalog:
    with (LOCALES_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=locale)


def source_msgids() -> set[str]:
    """What `make messages` would extract from the code and templates right now."""
    with (ROOT / "babel.cfg").open() as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
    return {
        message if isinstance(message, str) else message[0]  # a plural: its singular
        for _, _, message, _, _ in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=keywords
        )
    }


def test_catalogs_are_not_stale() -> None:
    extracted = source_msgids()
    assert len(extracted) > 50
    for locale in ("vi", "en"):
        in_catalog = {m.id[0] if isinstance(m.id, tuple) else m.id for m in catalog(locale) if m.id}
        assert extracted - in_catalog == set(), f"{locale}: run `make messages`"
        assert in_catalog - extracted == set(), f"{locale}: obsolete entries, run `make messages`"


def test_every_message_has_an_english_translation_with_the_same_placeholders() -> None:
    for message in catalog("en"):
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings), f"untranslated: {message.id!r}"
        assert not message.fuzzy, f"fuzzy: {message.id!r}"
        for text in strings:
            assert set(PLACEHOLDER.findall(ids[0])) == set(PLACEHOLDER.findall(text)), ids


def test_vietnamese_is_the_source_language() -> None:
    for m in catalog("vi"):
        if m.id:
            strings = m.string if isinstance(m.string, tuple) else (m.string,)
            assert not any(strings), m.id


@pytest.mark.parametrize("locale", ["vi", "en"])
async def test_every_template_renders_in_every_locale(services: Services, locale: str) -> None:
    reference = services.reference
    commune = reference.communes["02020"]
    for cset in reference.criteria_sets:
        status = await services.statuses.commune(cset.id, commune.code)
        criterion = cset.criteria[2]
        contexts = {
            "help.txt": {},
            "status_empty.txt": {"commune": commune, "cset": cset},
            "criteria_list.txt": {"cset": cset, "commune": commune, "status": status},
            "criterion.txt": {
                "cset": cset,
                "criterion": criterion,
                "commune": commune,
                "entry": status.criteria.get(criterion.number),
                "indicators": status.indicators,
            },
            "status_card.txt": {
                "commune": commune,
                "province": reference.province_name,
                "cset": cset,
                "met": 3,
                "total": len(cset.criteria),
                "title": "x",
                "title_entry": status.title,
                "not_met": list(cset.criteria[:2]),
                "no_data": list(cset.criteria[2:3]),
                "latest": status.latest,
                "sample": True,
                "average": 5.25,
                "rank": 2,
                "ranked": 9,
                "given": "27.955 ngày công",
                "households": 1200,
            },
        }
        contexts["status_ward.txt"] = {"commune": commune, "cset": cset}
        contexts["digest.txt"] = {
            "commune": commune,
            "since": date(2026, 11, 1),
            "until": date(2026, 11, 29),
            "announcements": [type("A", (), {"title": "Họp thôn"})()],
            "news": [type("N", (), {"title": "Tin", "published_on": date(2026, 11, 2)})()],
            "status_changes": [type("C", (), {"number": 2, "name": criterion.name, "met": True})()],
            "met": 3,
            "total": len(cset.criteria),
            "sample": True,
            "tallies": [{"name": "Đường", "given": "1,5 tỷ đồng"}],
            "polls_opened": [{"question": "Làm việc nào trước?", "closes": "18:00 05/12/2026"}],
            "polls_closed": [{"question": "Sửa kênh?", "voters": "12"}],
            "projects": [
                {"name": "Đường", "status": "đang thi công", "bar": "▓▓░ 20%", "note": "Khởi công"}
            ],
        }
        assert set(contexts) == {p.name for p in TEMPLATES_DIR.glob("*.txt")}
        with use_locale(locale):
            for name, context in contexts.items():
                rendered = services.renderer.render(name, **context)
                assert rendered.strip(), name
                if locale == "en":
                    assert "Bộ tiêu chí:" not in rendered and "Căn cứ:" not in rendered


def test_babel_formats_vietnamese_like_the_seed_article() -> None:
    with use_locale("vi"):
        assert fmt_number(177165) == "177.165"
        assert fmt_number(27955) == "27.955"
        assert fmt_compact(1_500_000_000) == "1,5 tỷ"
        assert fmt_date(date(2023, 10, 15)) == "15/10/2023"
        assert fmt_number(5.26, 1) == "5,3"
    with use_locale("en"):
        assert fmt_number(177165) == "177,165"
        assert fmt_date(date(2023, 10, 15)) == "Oct 15, 2023"
