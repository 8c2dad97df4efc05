"""Read-mostly reference data: areas and criteria sets, loaded from content/ into the database
when a shipped file changes, and cached in memory as frozen dataclasses."""

from __future__ import annotations

import hashlib
import json
import logging
import tomllib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select

from bot.domain.i18n import current_locale
from bot.domain.paths import CONTENT_DIR
from bot.storage import schema as t
from bot.storage.db import Database

log = logging.getLogger(__name__)

CURRENT_ERA = "2025"


def localized(text: dict[str, str] | None) -> str:
    """Pick the user's language from a {"vi": …, "en": …} content field."""
    if not text:
        return ""
    return text.get(current_locale()) or text.get("vi") or next(iter(text.values()))


@dataclass(frozen=True)
class Commune:
    code: str
    name: str
    kind: str
    province_code: str


@dataclass(frozen=True)
class LegacyUnit:
    """A commune or district as it was before 1 July 2025."""

    code: str
    name: str
    level: str  # commune | district
    successors: tuple[str, ...]


@dataclass(frozen=True)
class Indicator:
    code: str
    name: dict[str, str]
    threshold: dict[str, str] | None


@dataclass(frozen=True)
class Criterion:
    number: int
    name: dict[str, str]
    group_id: str | None
    keywords: tuple[str, ...]
    indicators: tuple[Indicator, ...]


@dataclass(frozen=True)
class CriteriaSet:
    id: str
    name: dict[str, str]
    legal_basis: dict[str, str]
    in_force_from: date
    in_force_until: date | None
    indicator_count: int | None
    titles: tuple[tuple[str, dict[str, str]], ...]  # (id, name), lowest first
    criteria: tuple[Criterion, ...]

    def criterion(self, number: int) -> Criterion | None:
        return next((c for c in self.criteria if c.number == number), None)

    def title_name(self, title_id: str) -> str:
        return next((localized(name) for tid, name in self.titles if tid == title_id), title_id)


@dataclass(frozen=True)
class Reference:
    """Everything read-mostly the bot needs for one province."""

    province_code: str
    province_name: str
    communes: dict[str, Commune]
    legacy: tuple[LegacyUnit, ...]
    criteria_sets: tuple[CriteriaSet, ...]  # oldest first

    def set_in_force(self, on: date) -> CriteriaSet:
        """The criteria set that applies on a date (the newest that has started)."""
        started = [s for s in self.criteria_sets if s.in_force_from <= on]
        return started[-1] if started else self.criteria_sets[0]

    def criteria_set(self, set_id: str) -> CriteriaSet | None:
        return next((s for s in self.criteria_sets if s.id == set_id), None)


# --- loading shipped files into the database ------------------------------------------------


def _area_rows(data: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    province = data["province"]
    pcode = province["code"]
    rows = [
        {
            "era": CURRENT_ERA,
            "level": "province",
            "code": pcode,
            "kind": "tinh",
            "name": province["name"],
            "parent_code": None,
            "province_code": pcode,
        },
    ]
    rows += [
        {
            "era": CURRENT_ERA,
            "level": "commune",
            "code": c["code"],
            "kind": c["kind"],
            "name": c["name"],
            "parent_code": pcode,
            "province_code": pcode,
        }
        for c in data["communes"]
    ]
    legacy = data["legacy"]
    era = legacy["era"]
    rows += [
        {
            "era": era,
            "level": "province",
            "code": p["code"],
            "kind": "tinh",
            "name": p["name"],
            "parent_code": None,
            "province_code": p["code"],
        }
        for p in legacy["provinces"]
    ]
    district_province = {d["code"]: d["province_code"] for d in legacy["districts"]}
    rows += [
        {
            "era": era,
            "level": "district",
            "code": d["code"],
            "kind": d["kind"],
            "name": d["name"],
            "parent_code": d["province_code"],
            "province_code": d["province_code"],
        }
        for d in legacy["districts"]
    ]
    rows += [
        {
            "era": era,
            "level": "commune",
            "code": c["code"],
            "kind": c["kind"],
            "name": c["name"],
            "parent_code": c["district_code"],
            "province_code": district_province[c["district_code"]],
        }
        for c in legacy["communes"]
    ]
    successions = [
        {"old_era": era, "old_code": c["code"], "new_code": new}
        for c in legacy["communes"]
        for new in c["successors"]
    ]
    return rows, successions


async def _load_areas(db: Database, path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    rows, successions = _area_rows(data)
    async with db.write() as conn:
        for row in rows:
            await conn.execute(
                delete(t.areas).where(
                    t.areas.c.era == row["era"],
                    t.areas.c.level == row["level"],
                    t.areas.c.code == row["code"],
                )
            )
        await conn.execute(insert(t.areas), rows)
        old_codes = sorted({s["old_code"] for s in successions})
        era = data["legacy"]["era"]
        await conn.execute(
            delete(t.area_successions).where(
                t.area_successions.c.old_era == era, t.area_successions.c.old_code.in_(old_codes)
            )
        )
        if successions:
            await conn.execute(insert(t.area_successions), successions)


async def _load_criteria(db: Database, path: Path) -> None:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    set_id = data["id"]
    source = data["source"]
    async with db.write() as conn:
        await conn.execute(delete(t.indicators).where(t.indicators.c.set_id == set_id))
        await conn.execute(delete(t.criteria).where(t.criteria.c.set_id == set_id))
        await conn.execute(delete(t.criteria_sets).where(t.criteria_sets.c.id == set_id))
        await conn.execute(
            insert(t.criteria_sets).values(
                id=set_id,
                name=data["name"],
                legal_basis=data["legal_basis"],
                in_force_from=data["in_force_from"],
                in_force_until=data.get("in_force_until"),
                indicator_count=data.get("indicator_count"),
                titles=[{"id": x["id"], "name": x["name"]} for x in data["titles"]],
                source=source,
            )
        )
        await conn.execute(
            insert(t.criteria),
            [
                {
                    "set_id": set_id,
                    "number": c["number"],
                    "group_id": c.get("group"),
                    "name": c["name"],
                    "keywords": c.get("keywords", []),
                }
                for c in data["criteria"]
            ],
        )
        indicator_rows = [
            {
                "set_id": set_id,
                "code": i["code"],
                "criterion_number": c["number"],
                "name": i["name"],
                "source": source,
                "thresholds": {"default": i["threshold"]} if "threshold" in i else None,
            }
            for c in data["criteria"]
            for i in c.get("indicators", [])
        ]
        if indicator_rows:
            await conn.execute(insert(t.indicators), indicator_rows)


def shipped_files() -> list[tuple[Path, Any]]:
    files: list[tuple[Path, Any]] = [
        (p, _load_areas) for p in sorted(CONTENT_DIR.glob("areas/*.json"))
    ]
    files += [(p, _load_criteria) for p in sorted(CONTENT_DIR.glob("criteria/*.toml"))]
    return files


async def sync_reference(db: Database, files: list[tuple[Path, Any]] | None = None) -> int:
    """Load each shipped reference file whose content changed since it was last loaded."""
    async with db.read() as conn:
        rows = await conn.execute(select(t.content_versions.c.name, t.content_versions.c.sha256))
        known = {name: digest for name, digest in rows}
    loaded = 0
    for path, loader in files if files is not None else shipped_files():
        name = f"{path.parent.name}/{path.name}"
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if known.get(name) == digest:
            continue
        await loader(db, path)
        async with db.write() as conn:
            await conn.execute(delete(t.content_versions).where(t.content_versions.c.name == name))
            await conn.execute(
                insert(t.content_versions).values(
                    name=name, sha256=digest, loaded_at=db.clock.utcnow()
                )
            )
        log.info("loaded reference file %s", name)
        loaded += 1
    return loaded


# --- the in-memory cache ---------------------------------------------------------------------


async def load_reference(db: Database, province_code: str) -> Reference:
    """Read the province's areas and every criteria set into memory."""
    a, s = t.areas, t.area_successions
    async with db.read() as conn:
        province = (
            await conn.execute(
                select(a.c.name).where(
                    a.c.era == CURRENT_ERA, a.c.level == "province", a.c.code == province_code
                )
            )
        ).scalar_one_or_none()
        if province is None:
            raise LookupError(f"province {province_code} is not loaded")
        commune_rows = (
            await conn.execute(
                select(a.c.code, a.c.name, a.c.kind).where(
                    a.c.era == CURRENT_ERA,
                    a.c.level == "commune",
                    a.c.province_code == province_code,
                )
            )
        ).all()
        communes = {r.code: Commune(r.code, r.name, r.kind, province_code) for r in commune_rows}
        succ_rows = (await conn.execute(select(s))).all()
        legacy_rows = (
            await conn.execute(
                select(a.c.era, a.c.level, a.c.code, a.c.name, a.c.parent_code).where(
                    a.c.era != CURRENT_ERA, a.c.level.in_(("commune", "district"))
                )
            )
        ).all()
        set_rows = (
            await conn.execute(select(t.criteria_sets).order_by(t.criteria_sets.c.in_force_from))
        ).all()
        crit_rows = (await conn.execute(select(t.criteria).order_by(t.criteria.c.number))).all()
        ind_rows = (await conn.execute(select(t.indicators))).all()

    # Only old units that went (at least partly) into this province's communes matter here.
    successors: dict[tuple[str, str], list[str]] = {}
    for r in succ_rows:
        if r.new_code in communes:
            successors.setdefault((r.old_era, r.old_code), []).append(r.new_code)
    district_communes: dict[tuple[str, str], set[str]] = {}
    for r in legacy_rows:
        if r.level == "commune" and (r.era, r.code) in successors:
            district_communes.setdefault((r.era, r.parent_code), set()).update(
                successors[(r.era, r.code)]
            )
    legacy = [
        LegacyUnit(r.code, r.name, "commune", tuple(successors[(r.era, r.code)]))
        for r in legacy_rows
        if r.level == "commune" and (r.era, r.code) in successors
    ] + [
        LegacyUnit(r.code, r.name, "district", tuple(sorted(district_communes[(r.era, r.code)])))
        for r in legacy_rows
        if r.level == "district" and (r.era, r.code) in district_communes
    ]

    indicators_by: dict[tuple[str, int], list[Indicator]] = {}
    for r in sorted(ind_rows, key=lambda r: [int(x) for x in r.code.split(".") if x.isdigit()]):
        threshold = (r.thresholds or {}).get("default")
        indicators_by.setdefault((r.set_id, r.criterion_number), []).append(
            Indicator(r.code, r.name, threshold)
        )
    sets = tuple(
        CriteriaSet(
            id=r.id,
            name=r.name,
            legal_basis=r.legal_basis,
            in_force_from=r.in_force_from,
            in_force_until=r.in_force_until,
            indicator_count=r.indicator_count,
            titles=tuple((x["id"], x["name"]) for x in r.titles),
            criteria=tuple(
                Criterion(
                    c.number,
                    c.name,
                    c.group_id,
                    tuple(c.keywords),
                    tuple(indicators_by.get((r.id, c.number), ())),
                )
                for c in crit_rows
                if c.set_id == r.id
            ),
        )
        for r in set_rows
    )
    if not sets:
        raise LookupError("no criteria set is loaded")
    return Reference(province_code, province, communes, tuple(legacy), sets)
