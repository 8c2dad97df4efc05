"""The province page, the commune pages and the search: what each shows, and from where."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response

from bot.app.services import Services
from bot.content.reference import Commune, CriteriaSet
from bot.domain.i18n import N_, _, use_locale
from bot.domain.quantities import spell
from bot.storage.contributions import Campaign
from bot.storage.polls import Poll, Results
from bot.storage.public import PublicReport
from bot.web.chart import Chart, chart
from bot.web.projects import commune_projects, projects_in_progress
from bot.web.site import Site, language, link
from handlers.reports import CATEGORY_NAMES, STATE_NAMES

Handler = Callable[[Request], Awaitable[Response]]
REPORTS_SHOWN = 20
POLLS_SHOWN = 10
NEWS_SHOWN = 5


@dataclass(frozen=True)
class Ranked:
    commune: Commune
    met: int
    title: str
    sample: bool


@dataclass(frozen=True)
class Bar:
    """One kind of gift against its target."""

    label: str
    given: str
    target: str | None
    percent: int | None


@dataclass(frozen=True)
class CampaignView:
    campaign: Campaign
    bars: list[Bar]
    households: int
    is_open: bool


@dataclass(frozen=True)
class PollView:
    poll: Poll
    results: Results | None  # None while open: results are public once it has closed
    # Per question with options (never the one answered in words: officials read those):
    # its text and, once closed, each option with its votes and share of the voters.
    questions: list[tuple[str, list[tuple[str, int, int]]]]


def poll_view(poll: Poll, results: Results | None) -> PollView:
    questions = []
    counted = results.of(poll) if results is not None else [()] * len(poll.questions)
    for question, counts in zip(poll.questions, counted, strict=True):
        if question.kind == "text":
            continue
        voters = results.voters if results is not None else 0
        rows = [
            (option, n, round(100 * n / voters) if voters else 0)
            for option, n in zip(question.options, counts, strict=False)
        ]
        questions.append((question.text, rows))
    return PollView(poll, results, questions)


@dataclass(frozen=True)
class ReportView:
    report: PublicReport
    category: str
    state: str
    days_open: int


def _xa(services: Services) -> list[str]:
    return [code for code, c in services.reference.communes.items() if c.kind == "xa"]


async def _ranking(services: Services, cset: CriteriaSet) -> list[Ranked]:
    counts = await services.statuses.met_counts(cset.id, _xa(services))
    ranked = []
    for code, met in counts.items():
        status = await services.statuses.commune(cset.id, code)
        title = cset.title_name(status.title.title if status.title else "chua_dat")
        ranked.append(Ranked(services.reference.communes[code], met, title, status.is_sample))
    return sorted(ranked, key=lambda r: (-r.met, r.commune.name))


async def _campaigns(services: Services, campaigns: list[Campaign]) -> list[CampaignView]:
    views = []
    today = services.today()
    for campaign in campaigns:
        tally = await services.contributions.tally(campaign_id=campaign.id)
        bars = []
        for kind in campaign.kinds:
            if kind == "materials":
                given = ", ".join(
                    spell("materials", n, unit, what) for (unit, what), n in tally.materials.items()
                )
                bars.append(Bar(_("Vật liệu"), given or "0", None, None))
                continue
            got, target = tally.totals.get(kind, 0), campaign.targets.get(kind)
            percent = min(100, round(100 * got / target)) if target else None
            bars.append(
                Bar(
                    {"workdays": _("Ngày công"), "land": _("Đất (m²)"), "money": _("Tiền")}[kind],
                    spell(kind, got, compact=True),
                    spell(kind, target, compact=True) if target else None,
                    percent,
                )
            )
        views.append(CampaignView(campaign, bars, tally.households, campaign.is_open(today)))
    return views


def province(site: Site) -> Handler:
    async def page(request: Request) -> Response:
        """The province: communes ranked by criteria met, the average, campaigns under way."""
        services = site.services(request)

        async def make() -> Response:
            cset = services.reference.set_in_force(services.today())
            ranked = await _ranking(services, cset)
            average = sum(r.met for r in ranked) / len(ranked) if ranked else None
            open_campaigns = [
                c
                for code in services.reference.communes
                for c in await services.campaigns.in_commune(code)
                if c.is_open(services.today())
            ]
            return site.render(
                request,
                "province.html",
                province=services.reference.province_name,
                cset=cset,
                ranked=ranked,
                average=average,
                total=len(cset.criteria),
                sample=any(r.sample for r in ranked),
                campaigns=await _campaigns(services, open_campaigns),
                communes=services.reference.communes,
                projects=await projects_in_progress(services, site.photos(services)),
                now=services.now(),
                query="",
            )

        return await site.cached(request, ("province",), make)

    return page


def search(site: Site) -> Handler:
    async def page(request: Request) -> Response:
        """A commune found as the chat finds it: old names, no diacritics, one typo."""
        services = site.services(request)
        query = request.query_params.get("q", "").strip()[:100]
        result = services.areas.search(query) if query else None
        meant = result.meant if result else None
        if meant is not None and result and result.found and result.found[0].via is None:
            return RedirectResponse(link(f"/xa/{meant.code}", language(request)), 303)
        with use_locale(language(request)):
            return site.render(
                request,
                "search.html",
                province=services.reference.province_name,
                query=query,
                found=result.found if result else [],
                suggestions=result.suggestions if result else [],
            )

    return page


def _days(report: PublicReport, now: datetime) -> int:
    return ((report.closed_at or now) - report.created_at).days


def commune(site: Site) -> Handler:
    async def page(request: Request) -> Response:
        """One commune: status card, criteria over time, campaigns, polls, reports, news."""
        services = site.services(request)
        code = request.path_params["code"]
        found = services.areas.get(code)
        if found is None:
            return site.not_found(request, N_("Không tìm thấy xã này."))
        the_commune: Commune = found

        async def make() -> Response:
            reference = services.reference
            cset = reference.set_in_force(services.today())
            status = await services.statuses.commune(cset.id, code)
            public = site.public(services)
            counts = await services.statuses.met_counts(cset.id, _xa(services))
            met = len(status.met)
            now = services.clock.utcnow()
            polls = []
            asked = await services.polls.of_commune(code, POLLS_SHOWN)
            asked += await services.polls.of_commune(the_commune.province_code, POLLS_SHOWN)
            for poll in sorted(asked, key=lambda p: -p.id)[:POLLS_SHOWN]:  # and the province's
                closed = poll.status == "closed" or not poll.is_open(now)
                results = await services.polls.results(poll) if closed else None
                polls.append(poll_view(poll, results))
            reports = [
                ReportView(
                    r,
                    _(CATEGORY_NAMES.get(r.category, CATEGORY_NAMES["other"])),
                    _(STATE_NAMES.get(r.state, r.state)),
                    _days(r, now),
                )
                for r in await public.reports(code, REPORTS_SHOWN)
            ]
            history = await public.met_over_time(cset.id, code)
            graph: Chart | None = chart(history, len(cset.criteria)) if history else None
            return site.render(
                request,
                "commune.html",
                commune=the_commune,
                province=reference.province_name,
                rural=the_commune.kind == "xa",
                cset=cset,
                status=status,
                met=met,
                total=len(cset.criteria),
                title=cset.title_name(status.title.title if status.title else "chua_dat"),
                missing=[
                    c
                    for c in cset.criteria
                    if c.number in status.criteria and not status.criteria[c.number].met
                ],
                no_data=[c for c in cset.criteria if c.number not in status.criteria],
                sources=sorted(
                    {(e.source, e.published_by, e.assessed_on) for e in status.criteria.values()},
                    key=lambda s: s[2],
                ),
                average=sum(counts.values()) / len(counts) if counts else None,
                rank=1 + sum(1 for n in counts.values() if n > met),
                ranked=len(counts),
                chart=graph,
                campaigns=await _campaigns(services, await services.campaigns.in_commune(code)),
                projects=await commune_projects(services, site.photos(services), code),
                polls=polls,
                figures=await services.reports.figures(code, services.settings.report_due_days),
                reports=reports,
                category_names={k: _(v) for k, v in CATEGORY_NAMES.items()},
                state_names={k: _(v) for k, v in STATE_NAMES.items()},
                news=await public.headlines(code, reference.province_code, NEWS_SHOWN),
                now=services.now(),
            )

        return await site.cached(request, ("commune", code), make)

    return page


PHOTO_HEADERS = {"Cache-Control": "public, max-age=604800"}  # an update's photo never changes


def photo(site: Site) -> Handler:
    """/anh/cong-trinh/{update id}.jpg: a project update's photo, fetched the first time."""

    async def answer(request: Request) -> Response:
        services = site.services(request)
        photos = site.photos(services)
        update_id: int = request.path_params["update_id"]
        if not photos.path(update_id).exists():
            update = await services.projects.update(update_id)
            if update is None or await photos.url(update) is None:
                return site.not_found(request, N_("Không có ảnh này."))
        # Read off the event loop, with its ETag and Last-Modified for a revalidation.
        return FileResponse(photos.path(update_id), media_type="image/jpeg", headers=PHOTO_HEADERS)

    return answer
