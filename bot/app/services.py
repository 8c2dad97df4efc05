"""The dependencies handlers use, built once at start-up and closed at shutdown."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime

from bot.app.settings import Settings
from bot.content.areas import AreaIndex
from bot.content.campaign_files import load_campaign_files
from bot.content.faq import Faq
from bot.content.news import load_news
from bot.content.project_files import load_project_files
from bot.content.reference import Reference, load_reference, sync_reference
from bot.content.render import Renderer
from bot.core.files import Files
from bot.core.understanding import Understanding
from bot.delivery.notify import Notifier
from bot.domain.clock import TZ, Clock
from bot.domain.i18n import LOCALES, translations
from bot.storage.contributions import CampaignStore, ContributionStore
from bot.storage.db import Database
from bot.storage.officials import OfficialStore
from bot.storage.polls import PollStore
from bot.storage.projects import ProjectStore
from bot.storage.reports import ReportStore
from bot.storage.statuses import StatusStore
from bot.storage.subscriptions import SubscriptionStore
from bot.storage.users import UserStore

log = logging.getLogger(__name__)
__all__ = ["TZ", "Services", "build_services", "prepare_database"]


@dataclass
class Services:
    settings: Settings
    db: Database
    reference: Reference
    areas: AreaIndex
    faq: Faq
    renderer: Renderer
    users: UserStore
    statuses: StatusStore
    officials: OfficialStore
    campaigns: CampaignStore
    contributions: ContributionStore
    polls: PollStore
    reports: ReportStore
    projects: ProjectStore
    notifier: Notifier
    subscriptions: SubscriptionStore
    understanding: Understanding
    files: Files  # files users send, fetched by the channel they came on

    @property
    def clock(self) -> Clock:
        """The one clock: the database's, so handlers and stores agree on the time."""
        return self.db.clock

    @clock.setter
    def clock(self, value: Clock) -> None:
        self.db.clock = value

    def now(self) -> datetime:
        """Now in Vietnam time, from the one clock."""
        return self.clock.now()

    def today(self) -> date:
        """Today in Vietnam, from the one clock."""
        return self.clock.today()

    async def close(self) -> None:
        await self.notifier.settled()
        await self.users.close()
        await self.polls.close()
        await self.db.close()


async def prepare_database(settings: Settings) -> Database:
    """Open the database, migrate it and load changed reference files."""
    db = Database(settings.db_url, pool_size=settings.db_pool_size)
    try:
        await db.migrate()
        await sync_reference(db)
    except BaseException:
        await db.close()
        raise
    return db


async def build_services(settings: Settings, db: Database | None = None) -> Services:
    """Everything handlers need, ready to use."""
    db = db or await prepare_database(settings)
    try:
        reference = await load_reference(db, settings.province)
    except BaseException:
        await db.close()
        raise
    faq = Faq.load()
    contributions = ContributionStore(db)
    services = Services(
        settings=settings,
        db=db,
        reference=reference,
        areas=AreaIndex.of(reference.communes, reference.legacy),
        faq=faq,
        renderer=Renderer(),
        users=UserStore(db),
        statuses=StatusStore(db),
        officials=OfficialStore(db),
        campaigns=CampaignStore(db),
        contributions=contributions,
        polls=PollStore(db),
        reports=ReportStore(db),
        projects=ProjectStore(db, contributions),
        notifier=Notifier(db, in_flight=settings.broadcast_in_flight),
        subscriptions=SubscriptionStore(db),
        understanding=Understanding.load(
            faq=[(entry.id, entry.keywords) for entry in faq.entries],
            translators=[translations(locale).gettext for locale in LOCALES if locale != "vi"],
        ),
        files=Files(),
    )
    try:
        await load_campaign_files(services.campaigns, set(reference.communes))
        await load_project_files(services.projects, set(reference.communes))
        await load_news(db)
    except BaseException:
        await db.close()
        raise
    return services
