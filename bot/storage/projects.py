"""Dân hưởng lợi: projects (công trình) the people's gifts build, and their progress over time.

The read API other parts use (the chat, the public pages, open data):

    store.of_commune("02020")      → [Project], the commune's, in progress first
    store.get(7) / by_slug("…")    → Project | None
    store.updates(7, limit=5)      → [ProjectUpdate], newest first
    store.people_gave(project)     → Tally: confirmed totals of its campaigns by kind
    store.in_progress("19")        → [Project] preparing or building in the province
    store.happened("02020", since) → [(Project, ProjectUpdate)] posted since then (digests)
    store.every() / every_update()  → all projects / all updates, oldest first (open data)

Writes are audited (`project.create`, `project.update`, `project.progress`); an update comes
from a confirmed draft or a file entry with its own `source_key`, so a replay records nothing
twice, and its notice (`announce`) is written in the same transaction, once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage.contributions import ContributionStore, Tally, audit
from bot.storage.db import Database, as_utc, insert_or
from bot.storage.schema import areas, project_updates, projects

# preparing → building → done → handed_over (chuẩn bị → đang thi công → hoàn thành → đã bàn giao)
PREPARING, BUILDING, DONE, HANDED_OVER = "preparing", "building", "done", "handed_over"
STATUSES = (PREPARING, BUILDING, DONE, HANDED_OVER)
IN_PROGRESS = (PREPARING, BUILDING)
SOURCES = ("state", "people", "enterprises")  # where the budget comes from
Announce = Callable[[AsyncConnection, "Project", "ProjectUpdate"], Awaitable[None]]


@dataclass(frozen=True)
class Project:
    """A work the commune builds: where, who funds it (campaign slugs, budget by source in
    đồng), when (start, expected end), and how far it is (status, progress in percent)."""

    id: int
    slug: str
    name: str
    description: str | None
    commune_code: str
    village: str | None  # None: the whole commune
    campaigns: tuple[str, ...]  # slugs of the campaigns that fund it
    budget: dict[str, int]  # state | people | enterprises → đồng
    starts_on: date | None
    ends_on: date | None  # expected
    status: str  # one of STATUSES
    progress: int  # 0–100
    is_sample: bool
    source: str  # "chat" or the file it came from
    updated_at: datetime

    @property
    def in_progress(self) -> bool:
        return self.status in IN_PROGRESS

    @property
    def total_budget(self) -> int:
        return sum(self.budget.values())


@dataclass(frozen=True)
class ProjectUpdate:
    """One progress update: the status and percent it moved the project to, a note, and
    optionally a photo (its id on `photo_channel`: only that messenger can show it)."""

    id: int
    project_id: int
    status: str
    progress: int
    note: str
    photo: str | None
    photo_channel: str | None
    author: str
    created_at: datetime


@dataclass(frozen=True)
class NewUpdate:
    status: str
    progress: int
    note: str
    photo: str | None
    photo_channel: str | None
    source_key: str  # the draft or the file entry: a replay records nothing twice
    created_at: datetime | None = None  # a file's dated entry; else now


def _project(row: Any) -> Project:
    return Project(
        row.id,
        row.slug,
        row.name,
        row.description,
        row.commune_code,
        row.village,
        tuple(row.campaigns or ()),
        {k: int(v) for k, v in (row.budget or {}).items()},
        row.starts_on,
        row.ends_on,
        row.status,
        int(row.progress),
        bool(row.is_sample),
        row.source,
        as_utc(row.updated_at),
    )


def _update(row: Any) -> ProjectUpdate:
    return ProjectUpdate(
        row.id,
        row.project_id,
        row.status,
        int(row.progress),
        row.note,
        row.photo,
        row.photo_channel,
        row.author,
        as_utc(row.created_at),
    )


def _order() -> list[Any]:
    # In progress first (building before preparing), then done, handed over; newest change first.
    rank = case(
        (projects.c.status == BUILDING, 0),
        (projects.c.status == PREPARING, 1),
        (projects.c.status == DONE, 2),
        else_=3,
    )
    return [rank, projects.c.updated_at.desc(), projects.c.id]


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in values.items()}


def check_values(values: dict[str, Any]) -> None:
    """A project's values as the store takes them; ValueError naming what is wrong."""
    if values["status"] not in STATUSES:
        raise ValueError(f"status must be among {', '.join(STATUSES)}")
    if not 0 <= int(values["progress"]) <= 100:
        raise ValueError("progress is a percent, 0 to 100")
    if set(values["budget"]) - set(SOURCES) or any(int(v) < 0 for v in values["budget"].values()):
        raise ValueError(f"budget sources are {', '.join(SOURCES)}, in đồng")


class ProjectStore:
    def __init__(self, db: Database, contributions: ContributionStore) -> None:
        self._db = db
        self._contributions = contributions  # its tallies (cached) give what the people gave

    async def save(self, values: dict[str, Any], actor: str) -> tuple[Project, bool]:
        """Create a project, or update the one with the same slug (from its file); audited.
        (Project, changed). Status and progress are taken at creation only; then updates
        (`post_update`) move them. One statement makes a new one (ON CONFLICT DO NOTHING), so two
        saves of one slug at once make one project."""
        check_values(values)
        now = self._db.clock.utcnow()
        async with self._db.write() as conn:
            new = insert_or(conn, projects).values(
                **values, created_by=actor, created_at=now, updated_at=now
            )
            new = new.on_conflict_do_nothing(index_elements=[projects.c.slug])
            made = (await conn.execute(new.returning(projects.c.id))).scalar()
            if made is not None:
                project_id = int(made)
                await audit(
                    conn, actor, "project.create", "project", made, None, _jsonable(values), now
                )
            else:
                mine = select(projects).where(projects.c.slug == values["slug"])
                old = (await conn.execute(mine.with_for_update())).one()
                project_id = old.id
                # Progress moves by updates only: a reloaded file never undoes one.
                values = {k: v for k, v in values.items() if k not in ("status", "progress")}
                before = {k: getattr(old, k) for k in values}
                if before == values:
                    return _project(old), False
                await conn.execute(
                    update(projects)
                    .where(projects.c.id == project_id)
                    .values(**values, updated_at=now)
                )
                await audit(
                    conn,
                    actor,
                    "project.update",
                    "project",
                    project_id,
                    _jsonable(before),
                    _jsonable(values),
                    now,
                )
            row = (await conn.execute(select(projects).where(projects.c.id == project_id))).one()
        return _project(row), True

    async def post_update(
        self, project_id: int, new: NewUpdate, actor: str, announce: Announce | None = None
    ) -> tuple[ProjectUpdate, bool] | None:
        """Record a progress update and move the project to its status and percent, audited,
        with its notice (`announce`) in the same transaction. (the update, True); a replay
        gives the first one and False; None if there is no such project."""
        if new.status not in STATUSES or not 0 <= new.progress <= 100:
            raise ValueError(f"update {new.status!r} {new.progress}%")
        now = self._db.clock.utcnow()
        at = as_utc(new.created_at) if new.created_at is not None else now
        try:
            async with self._db.write() as conn:
                earlier = (
                    await conn.execute(
                        select(project_updates).where(
                            project_updates.c.source_key == new.source_key
                        )
                    )
                ).first()
                if earlier is not None:
                    return _update(earlier), False
                old = (
                    await conn.execute(select(projects).where(projects.c.id == project_id))
                ).first()
                if old is None:
                    return None
                row = (
                    await conn.execute(
                        project_updates.insert()
                        .values(
                            project_id=project_id,
                            status=new.status,
                            progress=new.progress,
                            note=new.note,
                            photo=new.photo,
                            photo_channel=new.photo_channel,
                            author=actor,
                            created_at=at,
                            source_key=new.source_key,
                        )
                        .returning(project_updates)
                    )
                ).one()
                latest = (
                    await conn.execute(
                        select(func.max(project_updates.c.created_at)).where(
                            project_updates.c.project_id == project_id
                        )
                    )
                ).scalar_one()
                if as_utc(latest) <= at:  # an older file entry does not move the project back
                    await conn.execute(
                        update(projects)
                        .where(projects.c.id == project_id)
                        .values(status=new.status, progress=new.progress, updated_at=now)
                    )
                posted = _update(row)
                await audit(
                    conn,
                    actor,
                    "project.progress",
                    "project",
                    project_id,
                    {"status": old.status, "progress": old.progress},
                    {"status": new.status, "progress": new.progress, "note": new.note[:500]}
                    | ({"photo": new.photo} if new.photo else {}),
                    now,
                )
                if announce is not None:
                    moved = (
                        await conn.execute(select(projects).where(projects.c.id == project_id))
                    ).one()
                    await announce(conn, _project(moved), posted)
                return posted, True
        except IntegrityError:  # the same confirmation twice at once: the first one stands
            async with self._db.read() as conn:
                found = (
                    await conn.execute(
                        select(project_updates).where(
                            project_updates.c.source_key == new.source_key
                        )
                    )
                ).first()
            if found is None:
                raise
            return _update(found), False

    async def get(self, project_id: int) -> Project | None:
        async with self._db.read() as conn:
            row = (await conn.execute(select(projects).where(projects.c.id == project_id))).first()
        return _project(row) if row else None

    async def by_slug(self, slug: str) -> Project | None:
        async with self._db.read() as conn:
            row = (await conn.execute(select(projects).where(projects.c.slug == slug))).first()
        return _project(row) if row else None

    async def of_commune(self, commune_code: str) -> list[Project]:
        """The commune's projects: building, then preparing, done and handed over."""
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(projects).where(projects.c.commune_code == commune_code).order_by(*_order())
            )
            return [_project(r) for r in rows]

    async def in_progress(self, province_code: str) -> list[Project]:
        """Projects preparing or building in the province's communes."""
        communes = select(areas.c.code).where(
            areas.c.era == "2025",
            areas.c.level == "commune",
            areas.c.province_code == province_code,
        )
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(projects)
                .where(projects.c.status.in_(IN_PROGRESS), projects.c.commune_code.in_(communes))
                .order_by(*_order())
            )
            return [_project(r) for r in rows]

    async def every(self) -> list[Project]:
        """Every project of every commune, by id (open data)."""
        async with self._db.read() as conn:
            rows = await conn.execute(select(projects).order_by(projects.c.id))
            return [_project(r) for r in rows]

    async def every_update(self) -> list[ProjectUpdate]:
        """Every update of every project, oldest first (open data)."""
        u = project_updates
        async with self._db.read() as conn:
            rows = await conn.execute(select(u).order_by(u.c.created_at, u.c.id))
            return [_update(r) for r in rows]

    async def update(self, update_id: int) -> ProjectUpdate | None:
        """One progress update by its id (the site's photo of it)."""
        u = project_updates
        async with self._db.read() as conn:
            row = (await conn.execute(select(u).where(u.c.id == update_id))).first()
        return _update(row) if row else None

    async def updates(self, project_id: int, limit: int = 10) -> list[ProjectUpdate]:
        """The project's updates, newest first."""
        u = project_updates
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(u)
                .where(u.c.project_id == project_id)
                .order_by(u.c.created_at.desc(), u.c.id.desc())
                .limit(limit)
            )
            return [_update(r) for r in rows]

    async def happened(
        self, commune_code: str, since: datetime
    ) -> list[tuple[Project, ProjectUpdate]]:
        """Updates of the commune's projects posted since then, oldest first (for digests)."""
        u = project_updates
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(u)
                .join(projects, projects.c.id == u.c.project_id)
                .where(projects.c.commune_code == commune_code, u.c.created_at >= as_utc(since))
                .order_by(u.c.created_at, u.c.id)
            )
            posted = [_update(r) for r in rows]
            ids = sorted({p.project_id for p in posted})
            found = await conn.execute(select(projects).where(projects.c.id.in_(ids)))
            by_id = {r.id: _project(r) for r in found}
        return [(by_id[p.project_id], p) for p in posted]

    async def people_gave(self, project: Project) -> Tally:
        """What the people gave to it: confirmed (and done) totals of its campaigns by kind,
        the households who gave, and what is pledged but not yet confirmed apart."""
        if not project.campaigns:
            return Tally()
        return await self._contributions.tally(campaign_slugs=project.campaigns)
