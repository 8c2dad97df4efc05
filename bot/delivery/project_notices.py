"""Công trình through the outbox: each progress update posted in chat goes to the commune's
subscribers of the "projects" topic — one broadcast per language, written in the update's own
transaction, so a replayed confirmation (which records no update) announces nothing twice."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncConnection

from bot.content.project_texts import notice_text, status_name
from bot.delivery import broadcasts
from bot.domain.i18n import LOCALES, use_locale
from bot.storage.projects import Announce, Project, ProjectUpdate

if TYPE_CHECKING:
    from bot.app.services import Services

TOPIC = "projects"
PHOTO_CHANNEL = "telegram"  # a photo id means something only to the messenger it came from


def announcer(services: Services, actor: str) -> Announce:
    """The `announce` of ProjectStore.post_update: the update's broadcasts, audited."""

    async def announce(conn: AsyncConnection, project: Project, update: ProjectUpdate) -> None:
        commune = services.reference.communes[project.commune_code].name
        now = services.db.clock.utcnow()
        photo = update.photo if update.photo_channel == PHOTO_CHANNEL else None
        for locale in LOCALES:
            with use_locale(locale):
                text = notice_text(project, update, commune)
                title = f"{project.name[:60]} — {status_name(update.status)}"
            await broadcasts.add(
                conn,
                actor,
                now,
                kind="project",
                title=title,
                text=text,
                photo=photo,
                scope_level="commune",
                scope_code=project.commune_code,
                topic=TOPIC,
                locale=locale,
                send_at=now,
            )

    return announce
