"""Sample statuses for the demo: made up, deterministic, and labelled as sample everywhere."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import TYPE_CHECKING

from bot.content.campaign_files import SAMPLES_DIR, load_campaign_files
from bot.content.importer import RawTable, StatusImporter
from bot.content.news import load_news
from bot.content.project_files import SAMPLES_DIR as SAMPLE_PROJECTS_DIR
from bot.content.project_files import load_project_files
from bot.content.reference import Reference
from bot.domain.paths import CONTENT_DIR
from bot.storage.contributions import CONFIRMED, NewContribution
from bot.storage.db import Database
from bot.storage.statuses import StatusStore

if TYPE_CHECKING:
    from bot.app.services import Services

PUBLISHER = "Dữ liệu mẫu (Chung Sức)"
SOURCE = "Dữ liệu mẫu do Chung Sức tạo để minh họa — không phải số liệu chính thức"
HEADER = [
    "ma_xa",
    "bo_tieu_chi",
    "tieu_chi",
    "dat",
    "ngay_danh_gia",
    "don_vi_cong_bo",
    "nguon",
    "danh_hieu",
]


def rounds(on: date) -> tuple[date, date]:
    """Two made-up assessment rounds before `on`: the ends of the months 5 and 1 before it."""
    last = on.replace(day=1) - timedelta(days=1)
    earlier = last
    for _ in range(4):
        earlier = earlier.replace(day=1) - timedelta(days=1)
    return earlier, last


def sample_table(reference: Reference, on: date) -> RawTable:
    """Two assessment rounds for every commune (xã) of the province, against the set in force;
    wards and special zones are not in the NTM programme."""
    cset = reference.set_in_force(on)
    when_rounds = rounds(on)
    numbers = [c.number for c in cset.criteria]
    top = cset.titles[1][0] if len(cset.titles) > 1 else None
    rows: list[tuple[int, list[object]]] = []
    for code in sorted(c for c, commune in reference.communes.items() if commune.kind == "xa"):
        rng = random.Random(f"chungsuc-sample-{code}")
        met_later = set(rng.sample(numbers, rng.randint(2, len(numbers))))
        met_earlier = set(rng.sample(sorted(met_later), max(1, len(met_later) - rng.randint(0, 2))))
        for when, met in zip(when_rounds, (met_earlier, met_later), strict=True):
            title = top if when == when_rounds[-1] and len(met) == len(numbers) else ""
            for number in numbers:
                rows.append(
                    (
                        len(rows) + 2,
                        [
                            code,
                            cset.id,
                            number,
                            "có" if number in met else "không",
                            when.strftime("%d/%m/%Y"),
                            PUBLISHER,
                            SOURCE,
                            title,
                        ],
                    )
                )
    return RawTable(HEADER, rows)


async def load_sample(db: Database, reference: Reference, statuses: StatusStore, on: date) -> int:
    """Load the sample statuses; returns the number of rows."""
    batch = await StatusImporter(db, reference).check(
        sample_table(reference, on),
        file_name="(sample)",
        sha256="-",
        imported_by="chungsuc seed --sample",
        is_sample=True,
        today=on,
    )
    await statuses.record(batch)
    return len(batch.statuses)


# Made-up households giving to the sample campaigns, so the tallies have something to show.
SAMPLE_NEWS_DIR = CONTENT_DIR / "samples" / "news"
SAMPLE_GIFTS = (
    ("mau-duong-thon-na-lang", "Nà Làng", "workdays", 6, None, None),
    ("mau-duong-thon-na-lang", "Nà Làng", "money", 2_000_000, None, None),
    ("mau-duong-thon-na-lang", "Bản Cuôn", "land", 120, None, None),
    ("mau-duong-thon-na-lang", "Bản Cuôn", "materials", 5, "bao", "xi măng"),
    ("mau-duong-thon-na-lang", "Nà Làng", "money", 500_000, None, None),
    ("mau-nha-van-hoa-na-ri", None, "money", 1_000_000, None, None),
)


async def load_sample_campaigns(services: Services) -> int:
    """The sample campaigns, the projects they fund (with their updates) and a few confirmed
    gifts from made-up households."""
    await load_campaign_files(
        services.campaigns,
        set(services.reference.communes),
        SAMPLES_DIR,
        is_sample=True,
        today=services.today(),
    )
    await load_project_files(
        services.projects,
        set(services.reference.communes),
        SAMPLE_PROJECTS_DIR,
        is_sample=True,
        today=services.today(),
    )
    await load_news(services.db, SAMPLE_NEWS_DIR)
    added = 0
    for number, (slug, village, kind, amount, unit, what) in enumerate(SAMPLE_GIFTS, start=1):
        campaign = await services.campaigns.by_slug(slug)
        assert campaign is not None, slug  # loaded just above
        gift, created = await services.contributions.add(
            NewContribution(
                campaign=campaign,
                village=village,
                channel="sample",
                user_id=f"ho-{number}",
                display_name=None,
                show_name=False,
                kind=kind,
                amount=amount,
                unit=unit,
                description=what,
                due_on=None,
                source_key=f"sample:{number}",
            )
        )
        if created:
            await services.contributions.move(gift.id, CONFIRMED, "chungsuc seed --sample")
            added += 1
    return added
