"""Officials send the status spreadsheet in chat: checked whole, problems by row and column in
their language, imported only after "Nhập", audited; refused to others and on channels that
carry no files. End to end on Telegram through the offline Bot API (getFile, the download)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select
from telegram import Update
from telegram.ext import Application

from bot.app.services import Services
from bot.app.settings import Settings
from bot.channels.telegram import build_application
from bot.core.conversation import Document, Incoming
from bot.core.dispatch import Dispatcher
from tests.conftest import Chat, make_settings
from tests.offline_telegram import TOKEN, OfflineRequest, document_update, text_update
from tests.test_import import CHO_DON, HEADER, good_rows

REFUSAL = "Việc này chỉ cán bộ xã phụ trách mới làm được."
NA_RI = "02155"
NOT_TEXT = "Mình chỉ hiểu tin nhắn chữ và các nút bấm."


def csv_bytes(rows: Sequence[Sequence[object]], header: Sequence[str] = HEADER) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def xlsx_bytes(rows: Sequence[Sequence[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(list(HEADER))
    for row in rows:
        sheet.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


class FakeFiles:
    """The channel's side of a download, faked: the files it holds, and what was fetched."""

    def __init__(self) -> None:
        self.held: dict[str, bytes] = {}
        self.fetched: list[str] = []

    async def fetch(self, file_id: str, max_bytes: int) -> bytes:
        self.fetched.append(file_id)
        return self.held[file_id]


@pytest.fixture
def files(services: Services) -> FakeFiles:
    fake = FakeFiles()
    services.files.register("telegram", fake.fetch)
    return fake


async def imports(services: Services) -> int:
    from bot.storage.schema import status_imports

    async with services.db.read() as conn:
        return int(
            (await conn.execute(select(func.count()).select_from(status_imports))).scalar_one()
        )


async def onboard(chat: Chat, commune: str = "cho don", language: str = "lang:vi") -> None:
    await chat.say("/start")
    await chat.press(language)
    await chat.say(commune)


async def official_of(
    services: Services, dispatcher: Dispatcher, commune: str = CHO_DON, channel: str = "telegram"
) -> Chat:
    await services.officials.grant(f"{channel}:cb", "commune_official", commune, "test")
    chat = Chat(dispatcher, channel, "cb")
    await onboard(chat)
    return chat


async def send_file(chat: Chat, files: FakeFiles, name: str, data: bytes) -> str:
    file_id = f"f{len(files.held)}"
    files.held[file_id] = data
    document = Document(file_id, name, len(data))
    return await chat.send(
        Incoming(chat.channel, chat.user_id, unsupported="document", document=document)
    )


# --- the official's way ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
async def test_a_good_file_is_checked_then_imported_after_nhap(
    services: Services, dispatcher: Dispatcher, files: FakeFiles, kind: str
) -> None:
    official = await official_of(services, dispatcher)
    data = csv_bytes(good_rows()) if kind == "csv" else xlsx_bytes(good_rows())
    before = await imports(services)
    checked = await send_file(official, files, f"tien-do.{kind}", data)
    assert f"tien-do.{kind}: 11 dòng hợp lệ, 1 xã (Xã Chợ Đồn)." in checked
    assert "Nhập số liệu này?" in checked and official.buttons == ["upload:ok", "menu:main"]
    assert await imports(services) == before  # nothing before "Nhập"
    done = await official.say("nhap")  # the button's label, typed without its mark
    assert f"Đã nhập 11 dòng số liệu từ tien-do.{kind}." in done
    assert await imports(services) == before + 1
    status = await services.statuses.commune("2026-2030", CHO_DON)
    assert status.criteria[1].met and not status.criteria[9].met
    from bot.storage.schema import audit_log

    async with services.db.read() as conn:
        [row] = (
            await conn.execute(select(audit_log).where(audit_log.c.action == "status.import"))
        ).all()
    assert row.actor == "telegram:cb" and row.after["communes"] == [CHO_DON]
    assert row.after["rows"] == 11
    # The confirmation replayed: nothing imported twice.
    await official.press_unoffered("upload:ok")
    assert await imports(services) == before + 1


async def test_yes_words_import_and_no_words_leave_it(
    services: Services, dispatcher: Dispatcher, files: FakeFiles
) -> None:
    official = await official_of(services, dispatcher)
    before = await imports(services)
    await send_file(official, files, "a.csv", csv_bytes(good_rows()))
    assert "Đã nhập 11 dòng" in await official.say("ok")
    await send_file(official, files, "b.csv", csv_bytes(good_rows(on="31/07/2026")))
    await official.press("menu:main")
    assert await imports(services) == before + 1


async def test_problems_are_listed_by_row_and_column_and_nothing_changes(
    services: Services, dispatcher: Dispatcher, files: FakeFiles
) -> None:
    official = await official_of(services, dispatcher)
    rows = good_rows()
    rows[2][4] = "có lẽ"  # row 4: "dat" is no yes or no
    rows[5][0] = "99999"  # row 7: an unknown commune
    before = await imports(services)
    answer = await send_file(official, files, "loi.csv", csv_bytes(rows))
    assert answer.startswith("loi.csv chưa được nhập, không có gì thay đổi:")
    assert "• dòng 4: “dat”" in answer and "• dòng 7: " in answer
    assert "Sửa rồi gửi lại tệp." in answer
    assert await imports(services) == before
    assert "upload:ok" not in official.buttons


async def test_problems_in_english_for_an_english_official(
    services: Services, dispatcher: Dispatcher, files: FakeFiles
) -> None:
    await services.officials.grant("telegram:en", "commune_official", CHO_DON, "test")
    official = Chat(dispatcher, "telegram", "en")
    await onboard(official, language="lang:en")
    rows = good_rows()
    rows[2][4] = "maybe"
    answer = await send_file(official, files, "bad.csv", csv_bytes(rows))
    assert answer.startswith("bad.csv was not imported; nothing was changed:")
    assert "• row 4: “dat”: write “có” or “không” (yes/no), not “maybe”" in answer


async def test_a_file_over_the_cap_is_refused_before_it_is_fetched(
    services: Services, dispatcher: Dispatcher, files: FakeFiles
) -> None:
    official = await official_of(services, dispatcher)
    big = Document("big", "lon.xlsx", int(services.settings.import_max_mb * 1024 * 1024) + 1)
    answer = await official.send(Incoming("telegram", "cb", unsupported="document", document=big))
    assert "Tệp quá lớn: tối đa 10 MB." in answer
    assert files.fetched == []


async def test_other_kinds_of_file_are_refused_kindly(
    services: Services, dispatcher: Dispatcher, files: FakeFiles
) -> None:
    official = await official_of(services, dispatcher)
    answer = await send_file(official, files, "bao-cao.pdf", b"%PDF-1.4")
    assert "bao-cao.pdf: chỉ nhập được tệp .csv và .xlsx" in answer
    assert files.fetched == []


# --- who may --------------------------------------------------------------------------------


async def test_a_villager_sending_a_file_gets_the_usual_answer(
    services: Services, dispatcher: Dispatcher, files: FakeFiles
) -> None:
    villager = Chat(dispatcher, "telegram", "v1")
    await onboard(villager)
    before = await imports(services)
    assert NOT_TEXT in await send_file(villager, files, "x.csv", csv_bytes(good_rows()))
    assert files.fetched == [] and await imports(services) == before
    assert await villager.say("/nhapsolieu") == REFUSAL
    assert await villager.press_unoffered("upload:ok") == REFUSAL


async def test_an_official_of_another_commune_cannot_import_it(
    services: Services, dispatcher: Dispatcher, files: FakeFiles
) -> None:
    official = await official_of(services, dispatcher, NA_RI)
    before = await imports(services)
    answer = await send_file(official, files, "cho-don.csv", csv_bytes(good_rows()))
    assert "cho-don.csv chưa được nhập" in answer
    assert f"xã {CHO_DON} không thuộc quyền của bạn" in answer
    assert await imports(services) == before


async def test_a_grant_revoked_before_nhap_imports_nothing(
    services: Services, dispatcher: Dispatcher, files: FakeFiles
) -> None:
    official = await official_of(services, dispatcher)
    await send_file(official, files, "a.csv", csv_bytes(good_rows()))
    await services.officials.revoke("telegram:cb", "commune_official", CHO_DON)
    before = await imports(services)
    assert REFUSAL in await official.say("Nhập")
    assert await imports(services) == before


async def test_a_file_in_the_middle_of_a_pledge_keeps_the_pledge(
    services: Services, dispatcher: Dispatcher, files: FakeFiles
) -> None:
    official = await official_of(services, dispatcher)
    await official.say("/dongop")
    await official.press("contrib:vil:0")
    await official.press("contrib:kind:money")
    answer = await send_file(official, files, "a.csv", csv_bytes(good_rows()))
    assert "Bạn góp bao nhiêu?" in answer and files.fetched == []


@pytest.mark.parametrize("channel", ["terminal", "zalo"])
async def test_channels_without_files_say_where_to_send_it(
    services: Services, dispatcher: Dispatcher, channel: str
) -> None:
    official = await official_of(services, dispatcher, channel=channel)
    answer = await official.say("/nhapsolieu")
    assert "Kênh này không nhận được tệp." in answer
    assert "qua Telegram, hoặc dùng dòng lệnh: chungsuc import status <tệp>." in answer


# --- end to end on Telegram ------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return make_settings(tmp_path, db_url, telegram_token=TOKEN)


@pytest.fixture
async def telegram(
    dispatcher: Dispatcher, settings: Settings
) -> AsyncIterator[tuple[Application[Any, Any, Any, Any, Any, Any], OfflineRequest]]:
    offline = OfflineRequest()
    application = build_application(settings, dispatcher, request=offline)
    async with application:
        yield application, offline
    assert offline.unexpected == []


async def test_on_telegram_the_file_is_fetched_checked_and_imported(
    services: Services,
    telegram: tuple[Application[Any, Any, Any, Any, Any, Any], OfflineRequest],
) -> None:
    application, offline = telegram
    await services.officials.grant("telegram:42", "commune_official", CHO_DON, "test")

    async def send(update: dict[str, Any]) -> str:
        seen = len(offline.calls)
        await application.process_update(Update.de_json(update, application.bot))
        return "\n".join(c.params["text"] for c in offline.calls[seen:] if "text" in c.params)

    await send(text_update(42, "/start"))
    await send(text_update(42, "Tiếng Việt"))
    await send(text_update(42, "cho don"))
    assert "Gửi tệp bảng số liệu (.xlsx hoặc .csv" in await send(text_update(42, "/nhapsolieu"))
    data = csv_bytes(good_rows())
    offline.files["BQACAgI"] = data
    before = await imports(services)
    checked = await send(document_update(42, "BQACAgI", "tien-do.csv", len(data)))
    assert "tien-do.csv: 11 dòng hợp lệ" in checked
    assert [c.method for c in offline.calls if c.method in ("getFile", "download")] == [
        "getFile",
        "download",
    ]
    assert "Đã nhập 11 dòng" in await send(text_update(42, "Nhập"))
    assert await imports(services) == before + 1
