"""Officials send the status spreadsheet in chat (.xlsx or .csv, on Telegram): checked whole as
`chungsuc import status` checks it, the problems listed by row and column, imported only after
"Nhập" is confirmed, audited; only for the communes the official acts for."""

from __future__ import annotations

import hashlib
import logging
from pathlib import PurePath

from bot.content.importer import ImportRejected, StatusImporter, read_upload
from bot.core.conversation import Button, Context, Reply, Router, StalePayload, Step
from bot.core.files import CannotFetch, FileTooBig
from bot.domain.i18n import N_, _, fmt_number
from bot.storage.statuses import ImportBatch
from handlers.menu import with_menu

log = logging.getLogger(__name__)
router = Router("data_upload")
CONFIRM = "upload:ok"
SUFFIXES = (".csv", ".xlsx")
MAX_LISTED = 15  # problems shown in chat; the rest are counted
MB = 1024 * 1024


def _howto(ctx: Context) -> str:
    return _(
        "Gửi bảng số liệu tiêu chí (.xlsx hoặc .csv) qua Telegram, hoặc dùng dòng lệnh: "
        "chungsuc import status <tệp>."
    )


@router.command(
    "nhapsolieu", "upload", description=N_("Cán bộ: gửi bảng số liệu tiêu chí"), official=True
)
async def how_to_send(ctx: Context) -> Reply:
    """Says how to send the spreadsheet: here, on a channel that carries files; else where."""
    if not ctx.services.files.can_fetch(ctx.event.channel):
        return with_menu(_("Kênh này không nhận được tệp.") + " " + _howto(ctx))
    return with_menu(
        _(
            "Gửi tệp bảng số liệu (.xlsx hoặc .csv, tối đa {limit} MB) vào đây. Mình kiểm tra "
            "toàn bộ trước, chỉ nhập khi bạn bấm “Nhập”."
        ).format(limit=fmt_number(ctx.services.settings.import_max_mb, 1))
    )


async def _checked(ctx: Context, data: bytes, name: str) -> ImportBatch:
    """The file read and checked whole; ImportRejected lists every problem, in the official's
    language, with communes the official does not act for among them."""
    services = ctx.services
    table = read_upload(data, name, services.settings.import_max_mb)
    batch = await StatusImporter(services.db, services.reference).check(
        table,
        file_name=PurePath(name).name,
        sha256=hashlib.sha256(data).hexdigest(),
        imported_by=ctx.official.principal,
        today=services.today(),
    )
    others = sorted({s["commune_code"] for s in batch.statuses} - set(ctx.official.communes))
    if others:
        raise ImportRejected(
            [
                _("xã {code} không thuộc quyền của bạn").format(code=code)
                for code in others[:MAX_LISTED]
            ]
        )
    return batch


async def _fetched_and_checked(ctx: Context, file_id: str, name: str) -> ImportBatch | Reply:
    """The file fetched through its channel and checked whole, or what to tell the official."""
    limit = ctx.services.settings.import_max_mb
    try:
        data = await ctx.services.files.fetch(ctx.event.channel, file_id, int(limit * MB))
    except FileTooBig:
        return _too_big(limit)
    except CannotFetch as error:
        log.warning("could not fetch a file from %s:%s: %s", *ctx.event.key, error)
        return with_menu(_("Mình chưa tải được tệp này. Bạn gửi lại giúp mình nhé."))
    try:
        return await _checked(ctx, data, name)
    except ImportRejected as rejected:
        return _rejected(name, rejected)


def _too_big(limit: float) -> Reply:
    return with_menu(
        _("Tệp quá lớn: tối đa {limit} MB. Hãy chia thành nhiều tệp rồi gửi lại.").format(
            limit=fmt_number(limit, 1)
        )
    )


def _rejected(name: str, rejected: ImportRejected) -> Reply:
    shown = rejected.problems[:MAX_LISTED]
    lines = [_("{file} chưa được nhập, không có gì thay đổi:").format(file=name)]
    lines += [f"• {p}" for p in shown]
    if len(rejected.problems) > len(shown):
        lines.append(_("… và {n} lỗi nữa.").format(n=len(rejected.problems) - len(shown)))
    lines.append(_("Sửa rồi gửi lại tệp."))
    return with_menu("\n".join(lines))


def _summary(batch: ImportBatch, ctx: Context) -> str:
    names = ctx.services.reference.communes
    communes = sorted({s["commune_code"] for s in batch.statuses})
    listed = ", ".join(names[c].name for c in communes[:5])
    if len(communes) > 5:
        listed += ", …"
    return _("{file}: {rows} dòng hợp lệ, {n} xã ({communes}).").format(
        file=batch.file_name, rows=fmt_number(len(batch.statuses)), n=len(communes), communes=listed
    )


@router.on_document()
async def received(ctx: Context) -> Reply:
    """A file from an official: checked whole; its problems listed, or "Nhập?" asked."""
    document = ctx.event.document
    assert document is not None  # the dispatcher routes only documents here
    name = PurePath(document.name or "tep").name
    if not name.lower().endswith(SUFFIXES):
        return with_menu(_("{file}: chỉ nhập được tệp .csv và .xlsx").format(file=name))
    limit = ctx.services.settings.import_max_mb
    if document.size > limit * MB:
        return _too_big(limit)
    batch = await _fetched_and_checked(ctx, document.file_id, name)
    if isinstance(batch, Reply):
        return batch
    ctx.user.enter(CONFIRM, file_id=document.file_id, name=name, sha256=batch.sha256)
    return await ask(ctx, _summary(batch, ctx))


async def ask(ctx: Context, summary: str | None = None) -> Reply:
    """Import it? ("Nhập", or a yes-word typed)."""
    head = summary or _("Tệp {file} đã kiểm tra xong.").format(file=ctx.user.state_data["name"])
    return Reply(
        head + "\n" + _("Nhập số liệu này? Số liệu mới được thêm vào lịch sử, không xóa số cũ."),
        [[Button("upload:ok", _("Nhập")), Button("menu:main", _("Hủy"))]],
    )


router.add_step(
    Step(
        CONFIRM,
        ask=ask,
        buttons=("upload:ok",),
        yes="upload:ok",
        no="menu:main",
        keeps=True,
        official=True,
    )
)


@router.button("upload:ok", official=True)
async def import_it(ctx: Context) -> Reply:
    """Imports the file checked (fetched again, the same bytes, checked again), audited."""
    data = ctx.user.state_data
    if ctx.user.state != CONFIRM:
        raise StalePayload("import confirmation outside the flow")
    name = data["name"]
    ctx.user.leave()  # whatever happens next, the confirmation is spent: never imported twice
    batch = await _fetched_and_checked(ctx, data["file_id"], name)
    if isinstance(batch, Reply):
        return batch
    if batch.sha256 != data["sha256"]:
        return with_menu(_("Tệp đã thay đổi sau khi kiểm tra. Bạn gửi lại tệp nhé."))
    await ctx.services.statuses.record(batch, actor=ctx.official.principal)
    return with_menu(
        _("Đã nhập {rows} dòng số liệu từ {file}.").format(
            rows=fmt_number(len(batch.statuses)), file=name
        )
    )
