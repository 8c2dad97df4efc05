"""Campaigns from TOML files (content/campaigns/*.toml): the way an office publishes one.

slug = "duong-na-lang-2026"
name = "Bê tông hóa đường thôn Nà Làng"
commune = "02020"
villages = ["Nà Làng"]                         # optional; empty = the whole commune
kinds = ["workdays", "money", "materials"]
starts_on = 2026-09-01
ends_on = 2026-12-31                            # optional
[targets]                                       # optional, written as people write them
money = "200 triệu"
workdays = "500 ngày công"

Sample files (content/samples/campaigns/) may give dates as whole days from the day they are
loaded (`starts_on = -90`, `ends_on = 60`), so the demo always has a campaign open.
"""

from __future__ import annotations

import tomllib
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from bot.domain.amounts import AmountError, Kind, parse_amount
from bot.domain.paths import CONTENT_DIR
from bot.storage.contributions import KINDS, CampaignStore

CAMPAIGNS_DIR = CONTENT_DIR / "campaigns"
SAMPLES_DIR = CONTENT_DIR / "samples" / "campaigns"


class CampaignFileError(ValueError):
    pass


def read_campaign(
    path: Path, communes: set[str], is_sample: bool = False, today: date | None = None
) -> dict[str, Any]:
    """The campaign a file describes, checked; raises CampaignFileError naming the problem.

    `today` lets a sample file give its dates as days from today."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise CampaignFileError(f"{path.name}: {error}") from None

    def need(key: str) -> Any:
        if key not in data:
            raise CampaignFileError(f"{path.name}: '{key}' is missing")
        return data[key]

    commune = str(need("commune"))
    if commune not in communes:
        raise CampaignFileError(f"{path.name}: unknown commune {commune!r}")
    kinds = list(need("kinds"))
    if not kinds or any(k not in KINDS for k in kinds):
        raise CampaignFileError(f"{path.name}: kinds must be among {', '.join(KINDS)}")
    starts_on = need("starts_on")
    ends_on = data.get("ends_on")
    if is_sample and today is not None:
        starts_on, ends_on = (
            today + timedelta(days=d) if isinstance(d, int) and not isinstance(d, bool) else d
            for d in (starts_on, ends_on)
        )
    if not isinstance(starts_on, date) or (ends_on is not None and not isinstance(ends_on, date)):
        raise CampaignFileError(f"{path.name}: dates are written like 2026-09-01")
    targets = {}
    for kind, written in dict(data.get("targets", {})).items():
        if kind not in kinds:
            raise CampaignFileError(f"{path.name}: a target for {kind!r}, which is not accepted")
        try:
            targets[kind] = parse_amount(str(written), expect=Kind(kind)).value
        except AmountError as error:
            raise CampaignFileError(
                f"{path.name}: target {kind} = {written!r}: {error.code}"
            ) from None
    return {
        "slug": str(data.get("slug") or path.stem)[:64],
        "name": str(need("name"))[:200],
        "description": data.get("description"),
        "commune_code": commune,
        "villages": [str(v) for v in data.get("villages", [])],
        "kinds": kinds,
        "targets": targets,
        "starts_on": starts_on,
        "ends_on": ends_on,
        "status": "closed" if data.get("closed") else "open",
        "source": f"{path.parent.name}/{path.name}",
        "is_sample": is_sample,
    }


async def load_campaign_files(
    store: CampaignStore,
    communes: set[str],
    folder: Path = CAMPAIGNS_DIR,
    is_sample: bool = False,
    today: date | None = None,
) -> int:
    """Create or update the campaigns of every file in the folder; returns how many changed."""
    changed = 0
    for path in sorted(folder.glob("*.toml")):
        values = read_campaign(path, communes, is_sample, today)
        _, was_changed = await store.save(values, actor=f"file:{values['source']}")
        changed += was_changed
    return changed
