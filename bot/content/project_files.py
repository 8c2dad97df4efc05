"""Projects (công trình) from TOML files (content/projects/*.toml), as an office publishes them.

slug = "duong-na-lang-2026"
name = "Đường bê tông thôn Nà Làng"
commune = "02020"
village = "Nà Làng"                          # optional; none = the whole commune
campaigns = ["duong-na-lang-2026"]           # optional: slugs of the campaigns that fund it
starts_on = 2026-09-01                       # optional
ends_on = 2027-01-31                         # optional: the expected end
status = "đang thi công"                     # chuẩn bị | đang thi công | hoàn thành | đã bàn giao
progress = 40                                # percent
[budget]                                     # optional, in đồng, written as people write them
state = "1,2 tỷ"
people = "200 triệu"
enterprises = "50 triệu"
[[updates]]                                  # optional: progress over time, oldest first
on = 2026-10-15
status = "đang thi công"
progress = 20
note = "Đã đổ xong 300 m mặt đường."

`status` and `progress` are taken when the project is first loaded; after that progress moves
by its updates (here, or `/capnhatcongtrinh` in chat), so a reload never undoes a chat update.
Updates from files are recorded once each (keyed by slug and position) and are not announced.
Sample files (content/samples/projects/) may give dates as days from the day they are loaded.
"""

from __future__ import annotations

import tomllib
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from bot.content.project_texts import status_of
from bot.domain.amounts import AmountError, Kind, parse_amount
from bot.domain.clock import TZ
from bot.domain.paths import CONTENT_DIR
from bot.storage.projects import SOURCES, NewUpdate, ProjectStore

PROJECTS_DIR = CONTENT_DIR / "projects"
SAMPLES_DIR = CONTENT_DIR / "samples" / "projects"


class ProjectFileError(ValueError):
    pass


def _day(value: Any, name: str, field: str, today: date | None) -> date | None:
    if isinstance(value, int) and not isinstance(value, bool) and today is not None:
        return today + timedelta(days=value)
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    raise ProjectFileError(f"{name}: {field}: dates are written like 2026-09-01")


def _status(value: Any, name: str) -> str:
    status = status_of(str(value))
    if status is None:
        raise ProjectFileError(
            f"{name}: status {value!r}: chuẩn bị, đang thi công, hoàn thành or đã bàn giao"
        )
    return status


def _progress(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise ProjectFileError(f"{name}: progress {value!r}: a whole percent, 0 to 100")
    return value


def read_project(
    path: Path, communes: set[str], is_sample: bool = False, today: date | None = None
) -> tuple[dict[str, Any], list[NewUpdate]]:
    """The project a file describes and its updates, checked; ProjectFileError names the
    problem. `today` lets a sample give its dates as days from today."""
    name = path.name
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ProjectFileError(f"{name}: {error}") from None
    for key in ("name", "commune"):
        if key not in data:
            raise ProjectFileError(f"{name}: '{key}' is missing")
    commune = str(data["commune"])
    if commune not in communes:
        raise ProjectFileError(f"{name}: unknown commune {commune!r}")
    relative = today if is_sample else None
    budget = {}
    for source, written in dict(data.get("budget", {})).items():
        if source not in SOURCES:
            raise ProjectFileError(f"{name}: budget {source!r}: sources are {', '.join(SOURCES)}")
        try:
            budget[source] = parse_amount(str(written), expect=Kind.MONEY).value
        except AmountError as error:
            raise ProjectFileError(f"{name}: budget {source} = {written!r}: {error.code}") from None
    slug = str(data.get("slug") or path.stem)[:64]
    updates = []
    for index, entry in enumerate(data.get("updates", []), start=1):
        on = _day(entry.get("on"), name, f"updates[{index}].on", relative)
        if on is None or not str(entry.get("note", "")).strip():
            raise ProjectFileError(f"{name}: updates[{index}] needs 'on' and 'note'")
        updates.append(
            NewUpdate(
                status=_status(entry.get("status", data.get("status", "chuẩn bị")), name),
                progress=_progress(entry.get("progress", 0), name),
                note=str(entry["note"]).strip()[:1000],
                photo=None,
                photo_channel=None,
                source_key=f"file:{slug}:{index}",
                created_at=datetime.combine(on, time(12, 0), TZ),
            )
        )
    last = updates[-1] if updates else None
    values = {
        "slug": slug,
        "name": str(data["name"])[:200],
        "description": data.get("description"),
        "commune_code": commune,
        "village": str(data["village"])[:100] if data.get("village") else None,
        "campaigns": [str(c) for c in data.get("campaigns", [])],
        "budget": budget,
        "starts_on": _day(data.get("starts_on"), name, "starts_on", relative),
        "ends_on": _day(data.get("ends_on"), name, "ends_on", relative),
        "status": _status(data["status"], name)
        if "status" in data
        else (last.status if last else "preparing"),
        "progress": _progress(data["progress"], name)
        if "progress" in data
        else (last.progress if last else 0),
        "source": f"{path.parent.name}/{name}",
        "is_sample": is_sample,
    }
    return values, updates


async def load_project_files(
    store: ProjectStore,
    communes: set[str],
    folder: Path = PROJECTS_DIR,
    is_sample: bool = False,
    today: date | None = None,
) -> int:
    """Create or update the projects of every file in the folder, and record their updates;
    returns how many projects or updates changed. Every file is read before any is saved, so a
    wrong one changes nothing."""
    read = [read_project(p, communes, is_sample, today) for p in sorted(folder.glob("*.toml"))]
    changed = 0
    for values, updates in read:
        project, was_changed = await store.save(values, actor=f"file:{values['source']}")
        changed += was_changed
        for update in updates:
            posted = await store.post_update(project.id, update, actor=f"file:{values['source']}")
            changed += posted is not None and posted[1]
    return changed
