"""Công trình: an official posts a project's progress — the project, its new status and
percent, a note and optionally a photo, a preview, then confirm; subscribers are told."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from bot.content.project_texts import bar, notice_text, status_name
from bot.core.conversation import Button, Context, Payload, Reply, Router, StalePayload, Step, Unfit
from bot.delivery.project_notices import announcer
from bot.domain.amounts import spelled_number
from bot.domain.i18n import N_, _
from bot.domain.text import fold
from bot.storage.projects import DONE, HANDED_OVER, STATUSES, NewUpdate, Project, ProjectUpdate
from handlers.common import commune_of_official
from handlers.menu import not_allowed, with_menu
from handlers.projects import MAX_LISTED

router = Router("project_updates")
PICK, STATUS, PROGRESS = "projup:pick", "projup:status", "projup:progress"
NOTE, CONFIRM = "projup:note", "projup:ok"
_PERCENT = re.compile(r"^\s*(?:dat|duoc|len|toi)?\s*([0-9]{1,3})\s*(?:%|phan tram|percent)?\s*$")
_PERCENT_WORDS = re.compile(r"^\s*(?:dat|duoc|len|toi)?\s*(.+?)\s*(?:%|phan tram|percent)?\s*$")
_FULL = {"xong", "da xong", "hoan thanh", "xong roi", "het", "full"}
_HALF = {"mot nua", "nua", "half"}


@dataclass(frozen=True)
class PickProject(Payload, prefix="projup:pick"):
    id: int


@dataclass(frozen=True)
class PickStatus(Payload, prefix="projup:st"):
    status: Literal["preparing", "building", "done", "handed_over"]


@router.command(
    "capnhatcongtrinh",
    "projectupdate",
    description=N_("Cán bộ: cập nhật tiến độ công trình"),
    official=True,
)
async def start_update(ctx: Context) -> Reply | list[Reply]:
    """Asks an official which of their commune's projects to update."""
    code = commune_of_official(ctx)
    if code is None:
        return await not_allowed(ctx)
    projects = await ctx.services.projects.of_commune(code)
    if not projects:
        return with_menu(_("Xã chưa có công trình nào. Ghi công trình mới bằng /taocongtrinh."))
    ctx.user.enter(
        PICK,
        commune=code,
        projects=[[p.id, p.name] for p in projects[:MAX_LISTED]],
        draft=uuid.uuid4().hex[:12],
    )
    return await ask(ctx)


async def _project(ctx: Context) -> Project:
    project = await ctx.services.projects.get(int(ctx.user.state_data["project"]))
    if project is None:
        raise StalePayload("project gone")
    return project


async def ask(ctx: Context) -> Reply | list[Reply]:
    """The question of the step the official is at (asked again after an unusable answer)."""
    data, state = ctx.user.state_data, ctx.user.state
    cancel = Button("menu:main", _("Hủy"))
    if state == PICK:
        rows = [[Button(PickProject(i).pack(), name[:60])] for i, name in data["projects"]]
        return Reply(_("Cập nhật công trình nào?"), [*rows, [cancel]])
    project = await _project(ctx)
    if state == STATUS:
        rows = [
            [
                Button(
                    PickStatus(s).pack(),  # type: ignore[arg-type]
                    ("● " if s == project.status else "") + status_name(s),
                )
            ]
            for s in STATUSES
        ]
        return Reply(
            _("{name}: {status}, {progress}%. Nay thế nào?").format(
                name=project.name, status=status_name(project.status), progress=project.progress
            ),
            [*rows, [cancel]],
        )
    if state == PROGRESS:
        return Reply(
            _("Đã làm được bao nhiêu phần trăm? Gõ một số từ 0 đến 100, ví dụ: 60"), [[cancel]]
        )
    if state == NOTE:
        return Reply(
            _("Ghi chú cho bà con (việc đã làm, việc sắp làm); gửi kèm một ảnh nếu có."),
            [[cancel]],
        )
    update = ProjectUpdate(
        id=0,
        project_id=project.id,
        status=data["status"],
        progress=int(data["progress"]),
        note=data["note"],
        photo=data.get("photo"),
        photo_channel=data.get("photo_channel"),
        author="",
        created_at=ctx.services.clock.utcnow(),
    )
    commune = ctx.services.reference.communes[project.commune_code].name
    preview = notice_text(project, update, commune)
    if update.photo:
        preview = _("[kèm 1 ảnh]") + "\n" + preview
    return [
        Reply(_("Xem trước — bà con nhận tin công trình sẽ thấy:")),
        Reply(preview),
        Reply(_("Đăng cập nhật này?"), [[Button("projup:ok", _("Đúng, đăng")), cancel]]),
    ]


OPTIONS: dict[str, Any] = {"ask": ask, "keeps": True, "official": True}


def _progress(text: str, ctx: Context) -> int | None:
    """ "60", "60%", "đạt 60 phần trăm", "năm mươi phần trăm", "xong" (100), "một nửa" (50)."""
    folded = fold(text)
    if folded in _FULL:
        return 100
    if folded in _HALF:
        return 50
    match = _PERCENT.match(folded)
    words = _PERCENT_WORDS.match(folded)  # "năm mươi phần trăm", "đạt tám mươi"
    value = (
        int(match.group(1)) if match else spelled_number(words[1], whole=True) if words else None
    )
    if value is None:
        raise Unfit(
            _("Gõ một số từ 0 đến 100, ví dụ: 60"), weak=not any(ch.isdigit() for ch in text)
        )
    if value > 100:
        raise Unfit(_("Tối đa là 100%."))
    return value


def _note(text: str, ctx: Context) -> str | None:
    note = text.strip()[:1000]
    if not note:
        return None
    if not any(ch.isalnum() for ch in note):
        raise Unfit(_("Ghi chú cần có chữ, ví dụ: Đã đổ xong 300 m mặt đường."))
    return note


router.add_step(Step(PICK, buttons=("projup:pick",), **OPTIONS))


@router.button(PickProject, official=True)
async def project_picked(ctx: Context) -> Reply | list[Reply]:
    """The project, if it is one of the list offered; asks its new status."""
    data = ctx.user.state_data
    if ctx.user.state != PICK or ctx.payload.id not in [i for i, _n in data["projects"]]:
        raise StalePayload(f"project update {ctx.payload}")
    data["project"] = ctx.payload.id
    ctx.user.state = STATUS
    return await ask(ctx)


router.add_step(Step(STATUS, buttons=("projup:st",), **OPTIONS))


@router.button(PickStatus, official=True)
async def status_picked(ctx: Context) -> Reply | list[Reply]:
    """The status; a finished project is at 100%, others are asked their percent."""
    data = ctx.user.state_data
    if ctx.user.state != STATUS:
        raise StalePayload("project status outside the flow")
    data["status"] = ctx.payload.status
    if ctx.payload.status in (DONE, HANDED_OVER):
        data["progress"] = 100
        ctx.user.state = NOTE
    else:
        ctx.user.state = PROGRESS
    return await ask(ctx)


@router.step(PROGRESS, parse=_progress, **OPTIONS)
async def progress_typed(ctx: Context) -> Reply | list[Reply]:
    """The percent done; then the note."""
    ctx.user.state_data["progress"] = ctx.value
    ctx.user.state = NOTE
    return await ask(ctx)


@router.step(NOTE, parse=_note, photos=True, free=True, **OPTIONS)
async def note_typed(ctx: Context) -> Reply | list[Reply]:
    """The note, and a photo with it (a photo with a caption gives both at once)."""
    data = ctx.user.state_data
    if ctx.event.photo:
        data["photo"], data["photo_channel"] = ctx.event.photo, ctx.event.channel
        note = _note(ctx.text, ctx) if ctx.text.strip() else None
        if note is None:
            return Reply(
                _("Đã nhận ảnh. Giờ gõ ghi chú cho bà con."), [[Button("menu:main", _("Hủy"))]]
            )
        ctx.value = note
    data["note"] = ctx.value
    ctx.user.state = CONFIRM
    return await ask(ctx)


router.add_step(Step(CONFIRM, buttons=("projup:ok",), yes="projup:ok", no="menu:main", **OPTIONS))


@router.button("projup:ok", official=True)
async def post_update(ctx: Context) -> Reply:
    """Posts the update (audited) and tells the commune's subscribers of the "projects" topic
    through the outbox, in the same transaction, if the official still acts for the commune."""
    data = ctx.user.state_data
    if ctx.user.state != CONFIRM:
        raise StalePayload("project update confirmation outside the flow")
    project = await _project(ctx)
    if not ctx.official.covers(project.commune_code):
        ctx.user.leave()
        return await not_allowed(ctx)
    actor = ctx.official.principal
    posted = await ctx.services.projects.post_update(
        project.id,
        NewUpdate(
            status=data["status"],
            progress=int(data["progress"]),
            note=data["note"],
            photo=data.get("photo"),
            photo_channel=data.get("photo_channel"),
            source_key=f"chat-{actor}-{data['draft']}",
        ),
        actor=actor,
        announce=announcer(ctx.services, actor),
    )
    ctx.user.leave()
    if posted is None:
        raise StalePayload("project gone")
    update, created = posted
    said = _("Đã đăng cập nhật: {name} — {status}, {bar}.").format(
        name=project.name, status=status_name(update.status), bar=bar(update.progress)
    )
    if created:
        said += "\n" + _("Đã gửi tin tới bà con nhận tin công trình; xem /tiendogui.")
    return with_menu(said)
