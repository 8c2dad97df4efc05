"""Digests: per commune and language, what is new since the last one — announcements, news,
the commune's status changes, campaign tallies, polls opened and closed, projects' progress. A
digest with nothing new is not sent. Pledge reminders go to each villager whose pledge falls due
tomorrow."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, select

from bot.content.news import news_since
from bot.content.project_texts import bar, status_name
from bot.content.reference import Criterion
from bot.core.conversation import Button, Reply
from bot.delivery import broadcasts
from bot.delivery.notify import REMINDER, enqueue
from bot.domain.clock import TZ
from bot.domain.i18n import _, fmt_datetime, fmt_number, use_locale
from bot.domain.quantities import spell
from bot.storage.db import as_utc
from bot.storage.polls import Happened
from bot.storage.projects import Project, ProjectUpdate
from bot.storage.schema import broadcasts as broadcasts_table
from bot.storage.schema import contributions, status_records, subscriptions, users

if TYPE_CHECKING:
    from bot.app.services import Services

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StatusChange:
    number: int
    name: dict[str, str]
    met: bool


async def _audiences(services: Services, cadence: str) -> list[tuple[str, str]]:
    s = subscriptions
    async with services.db.read() as conn:
        rows = await conn.execute(
            select(s.c.commune_code, s.c.locale)
            .where(s.c.active, s.c.digest == cadence, s.c.commune_code.is_not(None))
            .distinct()
        )
        return [(code, locale) for code, locale in rows if code in services.reference.communes]


async def _announcements(services: Services, code: str, since: datetime) -> list[Any]:
    b = broadcasts_table
    province = services.reference.province_code
    async with services.db.read() as conn:
        return list(
            await conn.execute(
                select(b.c.title).where(
                    b.c.kind == "announcement",
                    b.c.status.in_(("sending", "done")),
                    b.c.send_at >= since,
                    ((b.c.scope_level == "commune") & (b.c.scope_code == code))
                    | ((b.c.scope_level == "province") & (b.c.scope_code == province)),
                )
            )
        )


async def _status_changes(
    services: Services, code: str, set_id: str, since: date, criteria: tuple[Criterion, ...]
) -> list[StatusChange]:
    r = status_records
    async with services.db.read() as conn:
        changed = set(
            (
                await conn.execute(
                    select(r.c.criterion_number).where(
                        r.c.commune_code == code,
                        r.c.set_id == set_id,
                        r.c.indicator_code == "",
                        r.c.assessed_on >= since,
                    )
                )
            ).scalars()
        )
    if not changed:
        return []
    status = await services.statuses.commune(set_id, code)
    return [
        StatusChange(c.number, c.name, status.criteria[c.number].met)
        for c in criteria
        if c.number in changed and c.number in status.criteria
    ]


async def build_digests(
    services: Services, cadence: str, since: datetime, now: datetime
) -> list[int]:
    """Create one digest broadcast per (commune, language) that has something new."""
    created = []
    cset = services.reference.set_in_force(services.today())
    for code, locale in await _audiences(services, cadence):
        commune = services.reference.communes[code]
        announcements = await _announcements(services, code, since)
        news = await news_since(services.db, since.date(), code, services.reference.province_code)
        changes = await _status_changes(services, code, cset.id, since.date(), cset.criteria)
        tallies = await _new_tallies(services, code, since)
        happened = await services.polls.happened(code, since)
        built = await services.projects.happened(code, since)
        if not (announcements or news or changes or tallies or happened or built):
            continue
        status = await services.statuses.commune(cset.id, code)
        with use_locale(locale):
            opened, closed = _polls(happened)
            text = services.renderer.render(
                "digest.txt",
                commune=commune,
                since=since,
                until=now,
                announcements=announcements,
                news=news,
                status_changes=changes,
                met=len(status.met),
                total=len(cset.criteria),
                sample=status.is_sample,
                tallies=tallies,
                polls_opened=opened,
                polls_closed=closed,
                projects=_projects(built),
            )
            title = _("Bản tin {commune}").format(commune=commune.name)
        created.append(
            await broadcasts.create(
                services.db,
                "scheduler",
                kind="digest",
                title=title,
                text=text,
                scope_level="commune",
                scope_code=code,
                topic=f"digest:{cadence}",
                locale=locale,
                send_at=now,
            )
        )
    return created


def _projects(built: list[tuple[Project, ProjectUpdate]]) -> list[dict[str, str]]:
    """Each project updated in the period, once, at its latest update, in the current locale."""
    latest = {project.id: (project, update) for project, update in built}
    return [
        {"name": p.name, "status": status_name(u.status), "bar": bar(u.progress), "note": u.note}
        for p, u in latest.values()
    ]


def _polls(happened: list[Happened]) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Polls opened (with their closing time) and closed (with their voters) in the period,
    in the current locale; a village's poll says which village it asks, a province's so."""
    opened, closed = [], []
    for h in happened:
        question = h.poll.question
        if h.poll.village is not None:
            question += " (" + _("thôn {village}").format(village=h.poll.village) + ")"
        if h.poll.whole_province:
            question += " (" + _("toàn tỉnh") + ")"
        if h.closed:
            closed.append({"question": question, "voters": fmt_number(h.voters)})
        else:
            closes = fmt_datetime(h.poll.closes_at.astimezone(TZ))
            opened.append({"question": question, "closes": closes})
    return opened, closed


async def _new_tallies(services: Services, code: str, since: datetime) -> list[dict[str, str]]:
    """Tallies of the commune's campaigns that had a contribution confirmed since then."""
    c = contributions
    async with services.db.read() as conn:
        campaign_ids = set(
            (
                await conn.execute(
                    select(c.c.campaign_id).where(
                        c.c.commune_code == code,
                        c.c.status.in_(("confirmed", "done")),
                        c.c.updated_at >= since,
                    )
                )
            ).scalars()
        )
    out = []
    for campaign_id in sorted(campaign_ids):
        campaign = await services.campaigns.get(campaign_id)
        if campaign is None:
            continue
        tally = await services.contributions.tally(campaign_id=campaign_id)
        given = ", ".join(
            spell(k, n, compact=True) for k, n in tally.totals.items() if k != "materials"
        )
        out.append({"name": campaign.name, "given": given or "—"})
    return out


async def send_pledge_reminders(services: Services, due: date) -> int:
    """A notice to each villager with a pledge due on `due`, if they take reminders."""
    c, s = contributions, subscriptions
    async with services.db.read() as conn:
        rows = (
            await conn.execute(
                select(c, users.c.locale)
                .join(s, and_(s.c.channel == c.c.channel, s.c.user_id == c.c.user_id))
                .join(users, and_(users.c.channel == c.c.channel, users.c.user_id == c.c.user_id))
                .where(
                    c.c.due_on == due,
                    c.c.status.in_(("registered", "confirmed")),
                    s.c.active,
                    s.c.pledge_reminders,
                )
            )
        ).all()
    if not rows:
        return 0
    async with services.db.write() as conn:
        for row in rows:
            with use_locale(row.locale):
                text = _("Nhắc hẹn: ngày mai bạn hẹn góp {amount}. Cảm ơn bạn!").format(
                    amount=spell(row.kind, row.amount, row.unit, row.description)
                )
                await enqueue(
                    conn,
                    row.channel,
                    row.user_id,
                    Reply(text, [[Button("contrib:mine", _("Đóng góp của tôi"))]]),
                    priority=REMINDER,  # after contribution notices, before broadcasts
                )
    services.notifier.kick()  # here; processes running the other channels find them by polling
    return len(rows)


async def digest_window(services: Services, cadence: str, now: datetime) -> datetime:
    """The start of what a digest covers: the last digest of that cadence, or one period."""
    b = broadcasts_table
    async with services.db.read() as conn:
        last = (
            await conn.execute(
                select(func.max(b.c.send_at)).where(b.c.topic == f"digest:{cadence}")
            )
        ).scalar_one_or_none()
    if last is not None:
        return as_utc(last)
    return now - (timedelta(days=1) if cadence == "daily" else timedelta(days=7))
