"""Projects (công trình) on the site: the one place the pages and the open data ask for them.

The projects store is built on its own branch; until it is merged these answer "none yet", and
the pages say so. Wiring it is these three functions and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from bot.app.services import Services


@dataclass(frozen=True)
class ProjectView:
    """What a page shows of one project."""

    id: int
    name: str
    village: str | None
    status: str
    progress: int  # percent
    given: str  # what the people gave to it, spelt out
    latest_note: str | None
    latest_on: date | None


async def commune_projects(services: Services, commune_code: str) -> list[ProjectView]:
    """The commune's projects, in progress first."""
    return []


async def projects_in_progress(services: Services) -> list[ProjectView]:
    """The province's projects under way (the province page)."""
    return []


async def project_rows(
    services: Services,
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """The projects and their updates as open data rows (see open_data.PROJECTS, UPDATES)."""
    return [], []
