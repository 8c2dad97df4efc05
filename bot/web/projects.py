"""Projects (công trình) on the site: what the pages and the open data show of them, read
through the projects store (bot/storage/projects.py). A project's photos are ids on the
messenger they were sent to: a Telegram one is fetched once and served by the site
(bot/web/photos.py); another's is said to be in the chat.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.app.services import Services
from bot.content.project_texts import SOURCE_NAMES, period, status_name
from bot.domain.i18n import _
from bot.domain.quantities import spell
from bot.storage.projects import SOURCES, Project, ProjectUpdate
from bot.web.photos import ProjectPhotos


@dataclass(frozen=True)
class ProjectView:
    """What a page shows of one project."""

    project: Project
    status: str
    period: str | None
    budget: list[tuple[str, str]]  # (source, amount), the sources with money only
    total: str | None
    given: list[str]  # what the people gave through its campaigns, confirmed only
    households: int
    latest: ProjectUpdate | None
    photo_url: str | None  # the latest update's photo on the site; None: none, or in chat only


async def _view(services: Services, photos: ProjectPhotos, project: Project) -> ProjectView:
    tally = await services.projects.people_gave(project)
    given = [spell(k, n, compact=True) for k, n in tally.totals.items() if k != "materials"]
    given += [spell("materials", n, u, w) for (u, w), n in sorted(tally.materials.items())]
    latest = await services.projects.updates(project.id, limit=1)
    return ProjectView(
        project,
        status_name(project.status),
        period(project),
        [
            (_(SOURCE_NAMES[s]), spell("money", project.budget[s], compact=True))
            for s in SOURCES
            if project.budget.get(s)
        ],
        spell("money", project.total_budget) if project.total_budget else None,
        given,
        tally.households,
        latest[0] if latest else None,
        await photos.url(latest[0]) if latest else None,
    )


async def commune_projects(
    services: Services, photos: ProjectPhotos, commune_code: str
) -> list[ProjectView]:
    """The commune's projects, in progress first."""
    found = await services.projects.of_commune(commune_code)
    return [await _view(services, photos, p) for p in found]


async def projects_in_progress(services: Services, photos: ProjectPhotos) -> list[ProjectView]:
    """The province's projects under way (the province page)."""
    found = await services.projects.in_progress(services.reference.province_code)
    return [await _view(services, photos, p) for p in found]


async def project_rows(
    services: Services, photos: ProjectPhotos
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every project of the province and every update, as open data rows."""
    rows, updates = [], []
    for code in services.reference.communes:
        for p in await services.projects.of_commune(code):
            rows.append(
                {
                    "project_id": p.id,
                    "slug": p.slug,
                    "name": p.name,
                    "commune_code": p.commune_code,
                    "village": p.village or "",
                    "campaigns": " ".join(p.campaigns),
                    **{f"budget_{s}": p.budget.get(s) for s in SOURCES},
                    "starts_on": p.starts_on,
                    "ends_on": p.ends_on,
                    "status": p.status,
                    "progress": p.progress,
                    "source": p.source,
                    "is_sample": p.is_sample,
                }
            )
            for u in reversed(await services.projects.updates(p.id, limit=1000)):
                updates.append(
                    {
                        "project_id": p.id,
                        "at": u.created_at,
                        "status": u.status,
                        "progress": u.progress,
                        "note": u.note,
                        "has_photo": u.photo is not None,
                        "photo_url": await photos.url(u) or "",
                    }
                )
    return sorted(rows, key=lambda r: r["project_id"]), updates
