"""What the public site and the open data read: counts and public fields only — never who.

Contributions are summed per campaign and village; reports give their category, village, state,
dates and the official's answer, never the reporter, the text they wrote, their photo or place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import case, func, select

from bot.domain.clock import TZ
from bot.storage.contributions import COUNTED
from bot.storage.db import Database, as_utc
from bot.storage.reports import SPAM, ref_of
from bot.storage.schema import (
    broadcasts,
    contributions,
    news_items,
    reports,
    status_imports,
    status_records,
    title_records,
)


@dataclass(frozen=True)
class VillageGift:
    """Confirmed gifts of one kind (and material) to one campaign from one village."""

    campaign_id: int
    village: str | None
    kind: str
    unit: str | None
    description: str | None
    amount: int
    households: int


@dataclass(frozen=True)
class PublicReport:
    id: int
    commune_code: str
    village: str | None
    category: str
    state: str
    answer: str | None
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None

    @property
    def ref(self) -> str:
        return ref_of(self.id, self.created_at)


@dataclass(frozen=True)
class MetOn:
    """Criteria met as of one assessment date (the latest assessment of each up to then)."""

    day: date
    met: int
    assessed: int
    is_sample: bool


@dataclass(frozen=True)
class Headline:
    slug: str
    title: str
    published_on: date
    scope_level: str


class PublicStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def gifts_by_village(self, commune_code: str | None = None) -> list[VillageGift]:
        """Confirmed (and done) contributions summed per campaign, village, kind and material;
        households counted per group, so no one person's gift stands alone with their name."""
        c = contributions
        households = func.count(func.distinct(c.c.channel + ":" + c.c.user_id))
        # Only a material has a unit and a name worth telling apart; any other note is a
        # villager's own words and stays out.
        material = c.c.kind == "materials"
        unit = case((material, c.c.unit), else_=None).label("unit")
        what = case((material, c.c.description), else_=None).label("what")
        query = (
            select(c.c.campaign_id, c.c.village, c.c.kind, unit, what, func.sum(c.c.amount))
            .add_columns(households)
            .where(c.c.status.in_(COUNTED))
            .group_by(c.c.campaign_id, c.c.village, c.c.kind, unit, what)
        )
        if commune_code is not None:
            query = query.where(c.c.commune_code == commune_code)
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        gifts = [VillageGift(r[0], r[1], r[2], r[3], r[4], int(r[5]), int(r[6])) for r in rows]
        return sorted(gifts, key=lambda g: (g.campaign_id, g.village or "", g.kind, g.unit or ""))

    async def reports(
        self, commune_code: str | None = None, limit: int | None = None
    ) -> list[PublicReport]:
        """Reports, the newest first: public fields only; none an official marked as spam."""
        r = reports
        query = (
            select(
                r.c.id,
                r.c.commune_code,
                r.c.village,
                r.c.category,
                r.c.state,
                r.c.answer,
                r.c.created_at,
                r.c.updated_at,
                r.c.closed_at,
            )
            .where(r.c.state != SPAM)
            .order_by(r.c.id.desc())
        )
        if commune_code is not None:
            query = query.where(r.c.commune_code == commune_code)
        if limit is not None:
            query = query.limit(limit)
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [
            PublicReport(
                row.id,
                row.commune_code,
                row.village,
                row.category,
                row.state,
                row.answer,
                as_utc(row.created_at),
                as_utc(row.updated_at),
                as_utc(row.closed_at) if row.closed_at is not None else None,
            )
            for row in rows
        ]

    async def met_over_time(self, set_id: str, commune_code: str) -> list[MetOn]:
        """Criteria met at each assessment date of the commune, oldest first."""
        r = status_records
        query = (
            select(r.c.criterion_number, r.c.met, r.c.assessed_on, status_imports.c.is_sample)
            .join(status_imports, status_imports.c.id == r.c.import_id)
            .where(r.c.set_id == set_id, r.c.commune_code == commune_code, r.c.indicator_code == "")
            .order_by(r.c.assessed_on, r.c.id)
        )
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        state: dict[int, bool] = {}
        sample = False
        points: list[MetOn] = []
        for number, met, day, is_sample in rows:
            state[number] = bool(met)
            sample = sample or bool(is_sample)
            point = MetOn(day, sum(state.values()), len(state), sample)
            if points and points[-1].day == day:
                points[-1] = point
            else:
                points.append(point)
        return points

    async def status_history(self) -> list[Any]:
        """Every status assessment ever imported, oldest first, with its import's sample flag."""
        return await self._with_import(status_records, status_records.c.assessed_on)

    async def title_history(self) -> list[Any]:
        """Every title decided, oldest first, with its import's sample flag."""
        return await self._with_import(title_records, title_records.c.decided_on)

    async def _with_import(self, table: Any, day: Any) -> list[Any]:
        query = (
            select(table, status_imports.c.is_sample)
            .join(status_imports, status_imports.c.id == table.c.import_id)
            .order_by(table.c.commune_code, day, table.c.id)
        )
        async with self._db.read() as conn:
            return list((await conn.execute(query)).all())

    async def headlines(self, commune_code: str, province_code: str, limit: int) -> list[Headline]:
        """The latest news files and announcements sent to a commune or its province (their
        titles: what every subscriber of the scope was sent), newest first."""
        n, b = news_items, broadcasts
        news = ((n.c.scope_level == "commune") & (n.c.scope_code == commune_code)) | (
            (n.c.scope_level == "province") & (n.c.scope_code == province_code)
        )
        sent = ((b.c.scope_level == "commune") & (b.c.scope_code == commune_code)) | (
            (b.c.scope_level == "province") & (b.c.scope_code == province_code)
        )
        async with self._db.read() as conn:
            files = await conn.execute(
                select(n.c.slug, n.c.title, n.c.published_on, n.c.scope_level)
                .where(news)
                .order_by(n.c.published_on.desc(), n.c.slug)
                .limit(limit)
            )
            found = [Headline(*row) for row in files]
            announced = await conn.execute(
                select(b.c.id, b.c.title, b.c.send_at, b.c.scope_level)
                .where(
                    sent,
                    b.c.kind == "announcement",
                    b.c.scope_village.is_(None),
                    b.c.status.in_(("sending", "done")),
                )
                .order_by(b.c.send_at.desc(), b.c.id.desc())
                .limit(limit)
            )
            found += [
                Headline(f"broadcast-{i}", title, as_utc(at).astimezone(TZ).date(), level)
                for i, title, at, level in announced
            ]
        return sorted(found, key=lambda h: (h.published_on, h.slug), reverse=True)[:limit]
