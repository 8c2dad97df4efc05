"""Dân kiểm tra: citizen reports, their states, the officials' queue and the public figures."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median
from typing import Any

from sqlalchemy import and_, bindparam, case, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from bot.storage.cache import TtlCache
from bot.storage.contributions import audit
from bot.storage.db import Database, as_utc, insert_or
from bot.storage.schema import officials, report_followers, reports

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
SPAM = "spam"  # closed by an official as spam: hidden from figures, counted against the sender
OPEN = (NEW, RECEIVED, IN_PROGRESS)
CLOSED = (RESOLVED, OUT_OF_SCOPE, DUPLICATE, DECLINED)
STATES = (*OPEN, *CLOSED, SPAM)
TRANSITIONS: dict[str, tuple[str, ...]] = {
    RECEIVED: (NEW,),
    IN_PROGRESS: (NEW, RECEIVED),
    **{closed: OPEN for closed in (*CLOSED, SPAM)},
}
REOPEN_DAYS = 14  # a reporter may reopen a closed report once within this many days
SPAM_DAYS = 30  # spam marks count against a sender for this many days
OFFICIALS_TTL = 10.0  # seconds a commune's officials are kept (grants change rarely)
# Seconds a commune's open reports of a category are kept for the near-duplicate check. Ten
# villagers reporting one flooded road at once read them once; this process's own changes
# show at once (a new report goes in, a move clears them), another worker's within this.
SIMILAR_TTL = 5.0
SIMILAR_KEPT = 50  # the newest open reports the check compares
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
    criteria_set: str | None = None  # the criterion a dispute is about (set and number)
    criterion: int | None = None

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
    criteria_set: str | None = None  # a disputed criterion ("tiêu chí này chưa đạt")
    criterion: int | None = None


@dataclass(frozen=True)
class Standing:
    """What a sender has going: open reports, and reports marked spam in the last SPAM_DAYS."""

    open: int
    spam: int


@dataclass(frozen=True)
class Candidate:
    """An open report as the near-duplicate check compares it: no time to parse and no answer
    to carry for each of the fifty (the one found is read whole, by its id)."""

    id: int
    village: str | None
    criterion: int | None
    description: str


@dataclass(frozen=True)
class QueuePage:
    """A page of an officials' queue and how many come after it."""

    items: list[Report]
    more: int


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
        row.criteria_set,
        row.criterion,
    )


# Built once: a report step runs these for every villager (SQLAlchemy's cache keys cost more
# than the statements when they are built anew each time).
_MINE = (reports.c.channel == bindparam("channel")) & (reports.c.user_id == bindparam("user_id"))
_SPAM_SINCE = (reports.c.state == SPAM) & (reports.c.closed_at >= bindparam("since"))
_STANDING = select(
    func.coalesce(func.sum(case((reports.c.state.in_(OPEN), 1), else_=0)), 0),
    func.coalesce(func.sum(case((_SPAM_SINCE, 1), else_=0)), 0),
).where(_MINE)
# Before recording: the same draft recorded already, and what counts against the cap (at
# most max_open + max_spam rows).
_BEFORE_ADD = select(reports).where(
    _MINE, or_(reports.c.source_key == bindparam("key"), reports.c.state.in_(OPEN), _SPAM_SINCE)
)
_ADD = insert(reports).returning(reports)
_BY_SOURCE = select(reports).where(_MINE, reports.c.source_key == bindparam("key"))
_GET = select(reports).where(reports.c.id == bindparam("report_id"))
_SIMILAR = (
    select(
        reports.c.id,
        reports.c.village,
        reports.c.criterion,
        reports.c.description,
    )
    .where(
        reports.c.commune_code == bindparam("commune"),
        reports.c.category == bindparam("category"),
        reports.c.state.in_(OPEN),
    )
    .order_by(reports.c.id.desc())
    .limit(SIMILAR_KEPT)
)
_OFFICIALS_OF = select(officials.c.principal).where(
    officials.c.role == "commune_official", officials.c.area_code == bindparam("commune")
)
_FOLLOWERS = select(report_followers.c.channel, report_followers.c.user_id).where(
    report_followers.c.report_id == bindparam("report_id")
)


async def _change(
    conn: AsyncConnection,
    report_id: int,
    column: Any,
    where: tuple[ColumnElement[bool], ...],
    values: dict[str, Any],
    audited: tuple[str, str, dict[str, Any], datetime],
    notify: Notify,
) -> Report | None:
    """One official's change of a report, if `where` still holds: the update, the audit row
    (the changed column before, `audited`'s after) and the notices, in the caller's
    transaction; None when it no longer holds."""
    prior = (await conn.execute(select(column).where(reports.c.id == report_id))).scalar()
    row = (
        await conn.execute(
            update(reports)
            .where(reports.c.id == report_id, *where)
            .values(**values)
            .returning(reports)
        )
    ).first()
    if row is None:
        return None
    changed = _report(row)
    actor, action, after, now = audited
    await audit(conn, actor, action, "report", report_id, {column.key: prior}, after, now)
    await notify(conn, changed)
    return changed


class ReportStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._officials = TtlCache(OFFICIALS_TTL)
        self._similar = TtlCache(SIMILAR_TTL)

    async def add(
        self, new: NewReport, max_open: int, max_spam: int, notify: Notify | None = None
    ) -> tuple[Report | None, bool]:
        """Record a confirmed report once: (the report, True); a replay gives the first one and
        False; (None, False) when the reporter already has `max_open` open reports or
        `max_spam` spam marks in SPAM_DAYS. `notify` records the officials' notices in the same
        transaction, for a new report only: a replay never notifies twice."""
        now = self._db.clock.utcnow()
        since = now - timedelta(days=SPAM_DAYS)
        params = {"channel": new.channel, "user_id": new.user_id, "key": new.source_key}
        try:
            async with self._db.write() as conn:
                rows = (await conn.execute(_BEFORE_ADD, params | {"since": since})).all()
                earlier = next((r for r in rows if r.source_key == new.source_key), None)
                if earlier is not None:
                    return _report(earlier), False
                spam = sum(r.state == SPAM for r in rows)
                if len(rows) - spam >= max_open or spam >= max_spam:
                    return None, False
                values = {
                    "commune_code": new.commune_code,
                    "village": new.village,
                    "category": new.category,
                    "description": new.description,
                    "photo": new.photo,
                    "latitude": new.latitude,
                    "longitude": new.longitude,
                    "channel": new.channel,
                    "user_id": new.user_id,
                    "display_name": new.display_name,
                    "state": NEW,
                    "reopened": 0,
                    "created_at": now,
                    "updated_at": now,
                    "source_key": new.source_key,
                    "criteria_set": new.criteria_set,
                    "criterion": new.criterion,
                }
                report = _report((await conn.execute(_ADD, values)).one())
                if notify is not None:
                    await notify(conn, report)
        except IntegrityError:  # the same confirmation twice at once: the first one stands
            found = await self.by_source(new.channel, new.user_id, new.source_key)
            if found is None:
                raise
            return found, False
        self._similar.clear()  # the next check reads it in
        return report, True

    @asynccontextmanager
    async def _changing(self) -> AsyncIterator[AsyncConnection]:
        """A write that moves, closes or reopens a report: the near-duplicate check reads
        the open reports again once it has committed."""
        try:
            async with self._db.write() as conn:
                yield conn
        finally:
            self._similar.clear()

    async def by_source(self, channel: str, user_id: str, key: str) -> Report | None:
        async with self._db.read() as conn:
            params = {"channel": channel, "user_id": user_id, "key": key}
            row = (await conn.execute(_BY_SOURCE, params)).first()
        return _report(row) if row else None

    async def get(self, report_id: int) -> Report | None:
        async with self._db.read() as conn:
            row = (await conn.execute(_GET, {"report_id": report_id})).first()
        return _report(row) if row else None

    async def standing(self, channel: str, user_id: str) -> Standing:
        """The sender's open reports and recent spam marks, in one statement."""
        since = self._db.clock.utcnow() - timedelta(days=SPAM_DAYS)
        async with self._db.read() as conn:
            params = {"channel": channel, "user_id": user_id, "since": since}
            opened, spam = (await conn.execute(_STANDING, params)).one()
        return Standing(int(opened), int(spam))

    async def open_like(self, commune_code: str, category: str) -> list[Candidate]:
        """The newest open reports of a commune and category, as little as a near-duplicate
        check reads (no times to parse: this runs before every confirmation); kept
        SIMILAR_TTL seconds."""
        key = (commune_code, category)
        kept: list[Candidate] | None = self._similar.get(key)
        if kept is None:
            async with self._db.read() as conn:
                params = {"commune": commune_code, "category": category}
                kept = [Candidate(*r) for r in await conn.execute(_SIMILAR, params)]
            self._similar.put(key, kept)
        return kept

    async def follow(self, report_id: int, channel: str, user_id: str) -> bool:
        """The villager follows the report (told of its changes); False if they did already."""
        async with self._db.write() as conn:
            added = await conn.execute(
                insert_or(conn, report_followers)
                .values(
                    report_id=report_id,
                    channel=channel,
                    user_id=user_id,
                    created_at=self._db.clock.utcnow(),
                )
                .on_conflict_do_nothing()
            )
        return bool(added.rowcount)

    async def officials_of(self, conn: AsyncConnection, commune_code: str) -> list[str]:
        """The principals of the commune's officials ("telegram:123"), who hear of each new
        report; kept OFFICIALS_TTL seconds, as OfficialStore keeps grants."""
        cached: list[str] | None = self._officials.get(commune_code)
        if cached is None:
            rows = await conn.execute(_OFFICIALS_OF, {"commune": commune_code})
            cached = sorted({r.principal for r in rows})
            self._officials.put(commune_code, cached)
        return cached

    @staticmethod
    async def followers(conn: AsyncConnection, report_id: int) -> list[tuple[str, str]]:
        """(channel, user id) of those following a report, inside the caller's transaction."""
        rows = await conn.execute(_FOLLOWERS, {"report_id": report_id})
        return [(r.channel, r.user_id) for r in rows]

    async def of_user(self, channel: str, user_id: str, limit: int = 10) -> list[Report]:
        """The reporter's reports and those they follow, newest first."""
        followed = select(report_followers.c.report_id).where(
            report_followers.c.channel == channel, report_followers.c.user_id == user_id
        )
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(reports)
                .where(
                    or_(
                        and_(reports.c.channel == channel, reports.c.user_id == user_id),
                        reports.c.id.in_(followed),
                    )
                )
                .order_by(reports.c.id.desc())
                .limit(limit)
            )
            return [_report(r) for r in rows]

    async def queue(
        self, communes: Sequence[str], limit: int = 5, after: tuple[str, int] | None = None
    ) -> QueuePage:
        """The open reports of these communes: new first, then received, then in progress,
        oldest first in each. `after` is the (state, id) of the last one shown: a page starts
        where the last one ended, so reports handled in the meantime make no page skip any."""
        r = reports
        rank = case((r.c.state == NEW, 0), (r.c.state == RECEIVED, 1), else_=2)
        where: list[ColumnElement[bool]] = [
            r.c.commune_code.in_(list(communes)),
            r.c.state.in_(OPEN),
        ]
        if after is not None:
            last = OPEN.index(after[0]) if after[0] in OPEN else len(OPEN)
            where.append(or_(rank > last, and_(rank == last, r.c.id > after[1])))
        async with self._db.read() as conn:
            rows = await conn.execute(select(r).where(*where).order_by(rank, r.c.id).limit(limit))
            items = [_report(row) for row in rows]
            total = (await conn.execute(select(func.count()).where(*where))).scalar_one()
        return QueuePage(items, int(total) - len(items))

    async def reassign(
        self, report_id: int, commune_code: str, actor: str, communes: Sequence[str], notify: Notify
    ) -> Report | None:
        """Move an open report of these communes to another commune (a province official's
        correction); audited, the reporter's notice in the same transaction. None when not."""
        now = self._db.clock.utcnow()
        async with self._changing() as conn:
            return await _change(
                conn,
                report_id,
                reports.c.commune_code,
                (
                    reports.c.state.in_(OPEN),
                    reports.c.commune_code.in_(list(communes)),
                    reports.c.commune_code != commune_code,
                ),
                {"commune_code": commune_code, "updated_at": now},
                (actor, "report.reassign", {"commune_code": commune_code}, now),
                notify,
            )

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
        if to in CLOSED and not (answer and answer.strip()):  # spam needs no answer
            raise ValueError("closing a report needs a written answer")
        now = self._db.clock.utcnow()
        values: dict[str, Any] = {"state": to, "updated_at": now}
        if answer is not None:
            values["answer"] = answer
        if to in (*CLOSED, SPAM):
            values |= {"closed_at": now, "evidence_photo": evidence_photo, "rating": None}
            values["duplicate_of"] = duplicate_of
        after = {"state": to, "answer": answer, "duplicate_of": duplicate_of}
        if evidence_photo:
            after["evidence_photo"] = evidence_photo
        async with self._changing() as conn:
            changed = await _change(
                conn,
                report_id,
                reports.c.state,
                (reports.c.state.in_(TRANSITIONS[to]), reports.c.commune_code.in_(list(communes))),
                values,
                (actor, f"report.{to}", after, now),
                notify,
            )
            if changed is not None and duplicate_of is not None:
                # Its reporter follows the report it duplicates: told when that one is solved.
                await conn.execute(
                    insert_or(conn, report_followers)
                    .values(
                        report_id=duplicate_of,
                        channel=changed.channel,
                        user_id=changed.user_id,
                        created_at=now,
                    )
                    .on_conflict_do_nothing()
                )
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
        async with self._changing() as conn:
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
                    ).where(reports.c.commune_code == commune_code, reports.c.state != SPAM)
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
