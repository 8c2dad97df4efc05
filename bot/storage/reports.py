"""Dân kiểm tra: citizen reports, their states, the officials' queue and the public figures."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median
from typing import Any

from sqlalchemy import case, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage.contributions import audit
from bot.storage.db import Database, as_utc
from bot.storage.schema import reports

CATEGORIES = (
    "roads",
    "power",
    "water",
    "environment",
    "security",
    "services",
    "money",
    "criterion",
    "other",
)
NEW, RECEIVED, IN_PROGRESS = "new", "received", "in_progress"
RESOLVED, OUT_OF_SCOPE, DUPLICATE, DECLINED = "resolved", "out_of_scope", "duplicate", "declined"
OPEN = (NEW, RECEIVED, IN_PROGRESS)
CLOSED = (RESOLVED, OUT_OF_SCOPE, DUPLICATE, DECLINED)
STATES = OPEN + CLOSED
TRANSITIONS: dict[str, tuple[str, ...]] = {
    RECEIVED: (NEW,),
    IN_PROGRESS: (NEW, RECEIVED),
    **{closed: OPEN for closed in CLOSED},
}
REOPEN_DAYS = 14  # a reporter may reopen a closed report once within this many days
Notify = Callable[[AsyncConnection, "Report"], Awaitable[None]]


@dataclass(frozen=True)
class Report:
    id: int
    commune_code: str
    village: str | None
    category: str
    description: str
    photo: str | None
    latitude: float | None
    longitude: float | None
    channel: str
    user_id: str
    display_name: str | None
    state: str
    answer: str | None
    evidence_photo: str | None
    duplicate_of: int | None
    rating: str | None
    reopened: int
    created_at: datetime
    closed_at: datetime | None

    @property
    def ref(self) -> str:
        """The receipt code a villager can quote: PA-26-00012."""
        return ref_of(self.id, self.created_at)

    @property
    def is_open(self) -> bool:
        return self.state in OPEN

    def overdue(self, now: datetime, due_days: dict[str, int]) -> bool:
        """Still open past the days its category is given (settings)."""
        days = due_days.get(self.category, due_days.get("other", 15))
        return self.is_open and now - self.created_at > timedelta(days=days)

    def may_reopen(self, now: datetime) -> bool:
        """Closed, never reopened, and closed at most REOPEN_DAYS ago."""
        return (
            self.state in CLOSED
            and self.reopened == 0
            and self.closed_at is not None
            and now - self.closed_at <= timedelta(days=REOPEN_DAYS)
        )


def ref_of(report_id: int, created_at: datetime) -> str:
    return f"PA-{created_at.year % 100:02d}-{report_id:05d}"


def parse_ref(text: str) -> int | None:
    """PA-26-00012 → 12 (the year part is for people); typed in any case, spaces allowed."""
    parts = [p.strip() for p in text.strip().upper().replace(" ", "").split("-")]
    if len(parts) == 3 and parts[0] == "PA" and parts[2].isdigit() and len(parts[2]) <= 9:
        return int(parts[2])
    return None


@dataclass(frozen=True)
class NewReport:
    commune_code: str
    village: str | None
    category: str
    description: str
    photo: str | None
    latitude: float | None
    longitude: float | None
    channel: str
    user_id: str
    display_name: str | None
    source_key: str  # the draft: a replayed confirmation records nothing twice


@dataclass(frozen=True)
class Figures:
    """A commune's public figures: no names, no texts, only counts."""

    by_category: dict[str, int]
    by_state: dict[str, int]
    total: int
    resolved: int
    median_days: float | None
    overdue: int
    good: int
    rated: int


def _report(row: Any) -> Report:
    return Report(
        row.id,
        row.commune_code,
        row.village,
        row.category,
        row.description,
        row.photo,
        row.latitude,
        row.longitude,
        row.channel,
        row.user_id,
        row.display_name,
        row.state,
        row.answer,
        row.evidence_photo,
        row.duplicate_of,
        row.rating,
        row.reopened,
        as_utc(row.created_at),
        as_utc(row.closed_at) if row.closed_at is not None else None,
    )


class ReportStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, new: NewReport, max_open: int) -> tuple[Report | None, bool]:
        """Record a confirmed report once: (the report, True); a replay gives the first one and
        False; (None, False) when the reporter already has `max_open` open reports."""
        now = self._db.clock.utcnow()
        mine = (reports.c.channel == new.channel) & (reports.c.user_id == new.user_id)
        try:
            async with self._db.write() as conn:
                earlier = (
                    await conn.execute(
                        select(reports).where(mine, reports.c.source_key == new.source_key)
                    )
                ).first()
                if earlier is not None:
                    return _report(earlier), False
                open_now = (
                    await conn.execute(select(func.count()).where(mine, reports.c.state.in_(OPEN)))
                ).scalar_one()
                if open_now >= max_open:
                    return None, False
                row = (
                    await conn.execute(
                        insert(reports)
                        .values(
                            commune_code=new.commune_code,
                            village=new.village,
                            category=new.category,
                            description=new.description,
                            photo=new.photo,
                            latitude=new.latitude,
                            longitude=new.longitude,
                            channel=new.channel,
                            user_id=new.user_id,
                            display_name=new.display_name,
                            state=NEW,
                            reopened=0,
                            created_at=now,
                            updated_at=now,
                            source_key=new.source_key,
                        )
                        .returning(reports)
                    )
                ).one()
                return _report(row), True
        except IntegrityError:  # the same confirmation twice at once: the first one stands
            found = await self.by_source(new.channel, new.user_id, new.source_key)
            if found is None:
                raise
            return found, False

    async def by_source(self, channel: str, user_id: str, key: str) -> Report | None:
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    select(reports).where(
                        reports.c.channel == channel,
                        reports.c.user_id == user_id,
                        reports.c.source_key == key,
                    )
                )
            ).first()
        return _report(row) if row else None

    async def get(self, report_id: int) -> Report | None:
        async with self._db.read() as conn:
            row = (await conn.execute(select(reports).where(reports.c.id == report_id))).first()
        return _report(row) if row else None

    async def open_count(self, channel: str, user_id: str) -> int:
        async with self._db.read() as conn:
            return int(
                (
                    await conn.execute(
                        select(func.count()).where(
                            reports.c.channel == channel,
                            reports.c.user_id == user_id,
                            reports.c.state.in_(OPEN),
                        )
                    )
                ).scalar_one()
            )

    async def of_user(self, channel: str, user_id: str, limit: int = 10) -> list[Report]:
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(reports)
                .where(reports.c.channel == channel, reports.c.user_id == user_id)
                .order_by(reports.c.id.desc())
                .limit(limit)
            )
            return [_report(r) for r in rows]

    async def queue(self, communes: Sequence[str], limit: int = 5) -> tuple[list[Report], int]:
        """The open reports of these communes, new first, then received, then in progress,
        oldest first in each; and how many more there are."""
        r = reports
        where = (r.c.commune_code.in_(list(communes)), r.c.state.in_(OPEN))
        order = case((r.c.state == NEW, 0), (r.c.state == RECEIVED, 1), else_=2)
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(r).where(*where).order_by(order, r.c.created_at, r.c.id).limit(limit)
            )
            items = [_report(row) for row in rows]
            total = (await conn.execute(select(func.count()).where(*where))).scalar_one()
        return items, int(total) - len(items)

    async def move(
        self,
        report_id: int,
        to: str,
        actor: str,
        communes: Sequence[str],
        notify: Notify,
        answer: str | None = None,
        evidence_photo: str | None = None,
        duplicate_of: int | None = None,
    ) -> Report | None:
        """Move a report of these communes to `to` if its state allows it; audited, and the
        reporter's notice recorded in the same transaction. None when not (another official got
        there first, or it is not the actor's commune). Closing needs a written answer."""
        if to in CLOSED and not (answer and answer.strip()):
            raise ValueError("closing a report needs a written answer")
        now = self._db.clock.utcnow()
        values: dict[str, Any] = {"state": to, "updated_at": now}
        if answer is not None:
            values["answer"] = answer
        if to in CLOSED:
            values |= {"closed_at": now, "evidence_photo": evidence_photo, "rating": None}
            values["duplicate_of"] = duplicate_of
        async with self._db.write() as conn:
            prior = (
                await conn.execute(select(reports.c.state).where(reports.c.id == report_id))
            ).scalar()
            row = (
                await conn.execute(
                    update(reports)
                    .where(
                        reports.c.id == report_id,
                        reports.c.state.in_(TRANSITIONS[to]),
                        reports.c.commune_code.in_(list(communes)),
                    )
                    .values(**values)
                    .returning(reports)
                )
            ).first()
            if row is None:
                return None
            changed = _report(row)
            after = {"state": to, "answer": answer, "duplicate_of": duplicate_of}
            if evidence_photo:
                after["evidence_photo"] = evidence_photo
            await audit(
                conn, actor, f"report.{to}", "report", report_id, {"state": prior}, after, now
            )
            await notify(conn, changed)
        return changed

    async def rate(self, report_id: int, channel: str, user_id: str, rating: str) -> Report | None:
        """The reporter's rating of a closed report; None if it is not theirs or not closed."""
        async with self._db.write() as conn:
            row = (
                await conn.execute(
                    update(reports)
                    .where(
                        reports.c.id == report_id,
                        reports.c.channel == channel,
                        reports.c.user_id == user_id,
                        reports.c.state.in_(CLOSED),
                    )
                    .values(rating=rating)
                    .returning(reports)
                )
            ).first()
        return _report(row) if row else None

    async def reopen(self, report: Report, actor: str) -> Report | None:
        """Back to new, once, within REOPEN_DAYS of closing (audited); None when not allowed."""
        now = self._db.clock.utcnow()
        if not report.may_reopen(now):
            return None
        since = now - timedelta(days=REOPEN_DAYS)
        async with self._db.write() as conn:
            row = (
                await conn.execute(
                    update(reports)
                    .where(
                        reports.c.id == report.id,
                        reports.c.channel == report.channel,
                        reports.c.user_id == report.user_id,
                        reports.c.state.in_(CLOSED),
                        reports.c.reopened == 0,
                        reports.c.closed_at >= since,
                    )
                    .values(state=NEW, reopened=1, closed_at=None, rating=None, updated_at=now)
                    .returning(reports)
                )
            ).first()
            if row is None:
                return None
            await audit(
                conn,
                actor,
                "report.reopen",
                "report",
                report.id,
                {"state": report.state},
                {"state": NEW},
                now,
            )
        return _report(row)

    async def figures(self, commune_code: str, due_days: dict[str, int]) -> Figures:
        """The commune's public figures (counts only: nobody can be told apart in them)."""
        now = self._db.clock.utcnow()
        async with self._db.read() as conn:
            rows = (
                await conn.execute(
                    select(
                        reports.c.category,
                        reports.c.state,
                        reports.c.created_at,
                        reports.c.closed_at,
                        reports.c.rating,
                    ).where(reports.c.commune_code == commune_code)
                )
            ).all()
        by_category: dict[str, int] = {}
        by_state: dict[str, int] = {}
        days: list[float] = []
        overdue = good = rated = 0
        for category, state, created, closed, rating in rows:
            created = as_utc(created)
            by_category[category] = by_category.get(category, 0) + 1
            by_state[state] = by_state.get(state, 0) + 1
            if state == RESOLVED and closed is not None:
                days.append((as_utc(closed) - created).total_seconds() / 86400)
            limit = due_days.get(category, due_days.get("other", 15))
            if state in OPEN and now - created > timedelta(days=limit):
                overdue += 1
            if rating is not None:
                rated += 1
                good += rating == "good"
        return Figures(
            by_category,
            by_state,
            len(rows),
            by_state.get(RESOLVED, 0),
            median(days) if days else None,
            overdue,
            good,
            rated,
        )
