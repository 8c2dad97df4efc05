"""Dân bàn through the outbox: a new poll announced to the subscribers of its scope who take the
"polls" topic, and, when the scheduler closes it, its result to the same audience — one
broadcast per language, each audited as announcements are."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncConnection

from bot.content.poll_texts import closed_notice, opened_notice, province_scope, scope_text
from bot.delivery import broadcasts
from bot.domain.i18n import LOCALES, use_locale
from bot.storage.polls import Poll, Results

if TYPE_CHECKING:
    from datetime import datetime

    from bot.app.services import Services

TOPIC = "polls"
Rows = Sequence[Sequence[tuple[str, str]]]  # buttons: rows of (id, label)


def _scope(services: Services, poll: Poll) -> str:
    if poll.whole_province:
        return province_scope(services.reference.province_name)
    return scope_text(services.reference.communes[poll.commune_code].name, poll.village)


async def _add(
    conn: AsyncConnection,
    services: Services,
    actor: str,
    poll: Poll,
    kind: str,
    text_of: dict[str, str],
    buttons: Rows | None,
) -> list[int]:
    now = services.db.clock.utcnow()
    return [
        await broadcasts.add(
            conn,
            actor,
            now,
            kind=kind,
            title=poll.question[:80],
            text=text,
            buttons=[[list(b) for b in row] for row in buttons] if buttons else None,
            # A province poll's commune_code is its province's: every commune of it is told.
            scope_level="province" if poll.whole_province else "commune",
            scope_code=poll.commune_code,
            scope_village=poll.village,
            topic=TOPIC,
            locale=locale,
            send_at=now,
        )
        for locale, text in text_of.items()
    ]


async def announce_opened(
    services: Services, poll: Poll, actor: str, buttons: Rows | None = None
) -> list[int]:
    """Broadcast the new poll (its vote buttons where channels have them); the broadcasts."""
    scope = _scope(services, poll)
    text_of = {}
    for locale in LOCALES:
        with use_locale(locale):
            text_of[locale] = opened_notice(poll, scope)
    async with services.db.write() as conn:
        return await _add(conn, services, actor, poll, "poll", text_of, buttons)


async def close_due_polls(services: Services, now: datetime) -> list[int]:
    """Close every poll whose time has come and broadcast each result, in one transaction: a
    poll another scheduler closed first is not closed, nor announced, again. The polls closed."""
    async with services.db.write() as conn:
        closed: list[tuple[Poll, Results]] = await services.polls.close_due(conn, now)
        names = {code: c.name for code, c in services.reference.communes.items()}
        for poll, results in closed:
            scope = _scope(services, poll)
            text_of = {}
            for locale in LOCALES:
                with use_locale(locale):
                    text_of[locale] = closed_notice(poll, scope, results, names)
            await _add(conn, services, "scheduler", poll, "poll_result", text_of, None)
    return [poll.id for poll, _results in closed]
