"""Commune statuses against a criteria set: the history is kept; the latest row counts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import case, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage.cache import TtlCache, bump
from bot.storage.contributions import audit
from bot.storage.db import Database
from bot.storage.schema import status_imports, status_records, title_records

T = TypeVar("T")


@dataclass(frozen=True)
class StatusEntry:
    criterion_number: int
    indicator_code: str  # "" for the criterion itself
    met: bool
    value: str | None
    assessed_on: date
    published_by: str
    source: str
    is_sample: bool


@dataclass(frozen=True)
class TitleEntry:
    title: str
    decided_on: date
    published_by: str
    is_sample: bool


@dataclass(frozen=True)
class CommuneStatus:
    commune_code: str
    set_id: str
    criteria: dict[int, StatusEntry]
    indicators: dict[str, StatusEntry]
    title: TitleEntry | None

    @property
    def met(self) -> list[int]:
        return sorted(n for n, e in self.criteria.items() if e.met)

    @property
    def latest(self) -> StatusEntry | None:
        entries = [*self.criteria.values(), *self.indicators.values()]
        return max(entries, key=lambda e: e.assessed_on, default=None)

    @property
    def is_sample(self) -> bool:
        return any(e.is_sample for e in self.criteria.values()) or bool(
            self.title and self.title.is_sample
        )


@dataclass(frozen=True)
class ImportBatch:
    """Validated rows of one import, written in one transaction."""

    file_name: str
    sha256: str
    imported_by: str
    is_sample: bool
    statuses: Sequence[dict[str, Any]]  # status_records columns without import_id
    titles: Sequence[dict[str, Any]]  # title_records columns without import_id


def _latest(set_id: str, codes: Sequence[str], criteria_only: bool) -> Any:
    r = status_records
    rank = (
        func.row_number()
        .over(
            partition_by=(r.c.commune_code, r.c.criterion_number, r.c.indicator_code),
            order_by=(r.c.assessed_on.desc(), r.c.id.desc()),
        )
        .label("rank")
    )
    query = (
        select(r, status_imports.c.is_sample, rank)
        .join(status_imports, status_imports.c.id == r.c.import_id)
        .where(r.c.set_id == set_id, r.c.commune_code.in_(codes))
    )
    if criteria_only:
        query = query.where(r.c.indicator_code == "")
    return query.subquery()


class StatusStore:
    """Queries for status cards, with a short-lived cache: statuses change by import, rarely."""

    def __init__(self, db: Database, ttl_seconds: float = 30.0) -> None:
        self._db = db
        self._cache = TtlCache(ttl_seconds, db.versions, "statuses")

    def invalidate(self) -> None:
        self._cache.clear()

    def memo(self, key: tuple[str, ...], compute: Callable[[], T]) -> T:
        """A value derived from statuses (such as a rendered card), kept as long as they are."""
        key = ("memo", *key)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        value = compute()
        self._cache.put(key, value)
        return value

    async def commune(self, set_id: str, commune_code: str) -> CommuneStatus:
        key = ("commune", set_id, commune_code)
        await self._cache.fresh()
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        latest = _latest(set_id, [commune_code], criteria_only=False)
        t = title_records
        async with self._db.read() as conn:
            rows = (await conn.execute(select(latest).where(latest.c.rank == 1))).all()
            title_row = (
                await conn.execute(
                    select(t, status_imports.c.is_sample)
                    .join(status_imports, status_imports.c.id == t.c.import_id)
                    .where(t.c.set_id == set_id, t.c.commune_code == commune_code)
                    .order_by(t.c.decided_on.desc(), t.c.id.desc())
                    .limit(1)
                )
            ).first()
        criteria: dict[int, StatusEntry] = {}
        indicators: dict[str, StatusEntry] = {}
        for row in rows:
            entry = StatusEntry(
                row.criterion_number,
                row.indicator_code,
                row.met,
                row.value,
                row.assessed_on,
                row.published_by,
                row.source,
                row.is_sample,
            )
            if row.indicator_code:
                indicators[row.indicator_code] = entry
            else:
                criteria[row.criterion_number] = entry
        title = (
            TitleEntry(
                title_row.title, title_row.decided_on, title_row.published_by, title_row.is_sample
            )
            if title_row
            else None
        )
        status = CommuneStatus(commune_code, set_id, criteria, indicators, title)
        self._cache.put(key, status)
        return status

    async def met_counts(self, set_id: str, commune_codes: Sequence[str]) -> dict[str, int]:
        """Criteria met per commune (communes with no data are absent)."""
        key = ("counts", set_id, *sorted(commune_codes))
        await self._cache.fresh()
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        latest = _latest(set_id, commune_codes, criteria_only=True)
        met = func.sum(case((latest.c.met, 1), else_=0))
        async with self._db.read() as conn:
            rows = (
                await conn.execute(
                    select(latest.c.commune_code, met)
                    .where(latest.c.rank == 1)
                    .group_by(latest.c.commune_code)
                )
            ).all()
        counts = {code: int(n or 0) for code, n in rows}
        self._cache.put(key, counts)
        return counts

    async def has_any(self) -> bool:
        async with self._db.read() as conn:
            return (await conn.execute(select(status_imports.c.id).limit(1))).first() is not None

    async def record(self, batch: ImportBatch, actor: str | None = None) -> int:
        """Write one import and its rows atomically; returns the import id. With an `actor`
        (an official importing in chat) the import is in the audit log, in the same commit."""
        async with self._db.write() as conn:
            now = self._db.clock.utcnow()
            import_id = await _insert_import(conn, batch, now)
            if actor is not None:
                communes = sorted({s["commune_code"] for s in batch.statuses})
                after: dict[str, Any] = {"file": batch.file_name, "sha256": batch.sha256}
                after |= {"communes": communes, "rows": len(batch.statuses)}
                await audit(
                    conn, actor, "status.import", "status_import", import_id, None, after, now
                )
            if batch.statuses:
                await conn.execute(
                    insert(status_records), [dict(s, import_id=import_id) for s in batch.statuses]
                )
            if batch.titles:
                await conn.execute(
                    insert(title_records), [dict(x, import_id=import_id) for x in batch.titles]
                )
            await bump(conn, "statuses")
        self.invalidate()
        return import_id

    async def history(
        self, set_id: str, commune_code: str, criterion_number: int
    ) -> list[StatusEntry]:
        """Every assessment of one criterion, newest first (who, when, source)."""
        r = status_records
        async with self._db.read() as conn:
            rows = (
                await conn.execute(
                    select(r, status_imports.c.is_sample)
                    .join(status_imports, status_imports.c.id == r.c.import_id)
                    .where(
                        r.c.set_id == set_id,
                        r.c.commune_code == commune_code,
                        r.c.criterion_number == criterion_number,
                        r.c.indicator_code == "",
                    )
                    .order_by(r.c.assessed_on.desc(), r.c.id.desc())
                )
            ).all()
        return [
            StatusEntry(
                x.criterion_number,
                x.indicator_code,
                x.met,
                x.value,
                x.assessed_on,
                x.published_by,
                x.source,
                x.is_sample,
            )
            for x in rows
        ]


async def _insert_import(conn: AsyncConnection, batch: ImportBatch, at: datetime) -> int:
    result = await conn.execute(
        insert(status_imports)
        .values(
            file_name=batch.file_name,
            sha256=batch.sha256,
            rows=len(batch.statuses) + len(batch.titles),
            imported_by=batch.imported_by,
            imported_at=at,
            is_sample=batch.is_sample,
        )
        .returning(status_imports.c.id)
    )
    return int(result.scalar_one())
