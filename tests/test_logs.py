"""Logging: secrets redacted in every record whoever logs it, and where the log goes.

The records come from the libraries themselves (python-telegram-bot's own DEBUG line, its
InvalidToken) and from real `chungsuc` processes.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from telegram import Bot

from bot.app.logs import FORMAT, Redactor, setup_logging
from bot.app.settings import load_settings
from tests.conftest import make_settings
from tests.fake_bot_api import FakeBotApi
from tests.fake_zalo import BOT_TOKEN
from tests.live_server import serve, unused_port
from tests.offline_telegram import TOKEN

CHUNGSUC = Path(sys.executable).parent / "chungsuc"
SECRETS = {
    "telegram_token": TOKEN,
    "telegram_webhook_secret": "tg-webhook-secret_42",
    "zalo_bot_token": BOT_TOKEN,
    "zalo_bot_webhook_secret": "zalo-webhook-secret-42",
    "zalo_oa_secret_key": "oa-signing-key-42",
    "zalo_oa_app_secret": "oa-app-secret-42",
    "zalo_oa_refresh_token": "oa-refresh-token-42",
}


@pytest.fixture
def operator_log() -> Iterator[io.StringIO]:
    """A handler on the root logger, as an operator's own set-up would put there."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    yield buffer
    root.removeHandler(handler)
    for other in root.handlers:
        for redactor in [f for f in other.filters if isinstance(f, Redactor)]:
            other.removeFilter(redactor)


def test_the_token_in_ptbs_own_debug_line_is_redacted(
    tmp_path: Path, operator_log: io.StringIO, caplog: pytest.LogCaptureFixture
) -> None:
    setup_logging(make_settings(tmp_path, telegram_token=TOKEN), "DEBUG")
    with caplog.at_level(logging.DEBUG, logger="telegram"):
        Bot(TOKEN, base_url="http://127.0.0.1:9/bot")  # PTB logs its API URL, token and all

    printed = operator_log.getvalue()
    assert "Set Bot API URL: http://127.0.0.1:9/bot<CHUNGSUC_TELEGRAM_TOKEN>" in printed
    assert TOKEN not in printed
    assert TOKEN not in caplog.text  # every handler gets the record clean, not only ours
    assert TOKEN.split(":")[1] not in printed


def test_every_secret_is_redacted_in_messages_arguments_and_tracebacks(
    tmp_path: Path, operator_log: io.StringIO
) -> None:
    settings = load_settings(
        db_url="postgresql+asyncpg://chungsuc:db-pass-42@db/chungsuc", **SECRETS
    )
    setup_logging(settings, "INFO")
    foreign = logging.getLogger("aiohttp.client")  # not ours: nothing there knows the secrets
    values = [*SECRETS.values(), "db-pass-42"]
    foreign.warning("values: %s; as a URL: %s", values, "bot3141592653%3Azalo-bot-token-DO-NOT-LOG")
    try:
        raise ValueError(f"The token `{TOKEN}` was rejected by the server.")
    except ValueError:
        foreign.exception("getMe failed")

    printed = operator_log.getvalue()
    for value in values:
        assert value not in printed, value
    for name in SECRETS:
        assert f"<CHUNGSUC_{name.upper()}>" in printed
    assert "<CHUNGSUC_DB_URL password>" in printed
    assert "as a URL: bot<CHUNGSUC_ZALO_BOT_TOKEN>" in printed
    assert "ValueError: The token `<CHUNGSUC_TELEGRAM_TOKEN>` was rejected" in printed


def test_a_short_secret_does_not_garble_every_line(
    tmp_path: Path, operator_log: io.StringIO
) -> None:
    setup_logging(make_settings(tmp_path, zalo_oa_secret_key="s"), "INFO")
    logging.getLogger("bot.test").warning("status: sent")
    assert "status: sent" in operator_log.getvalue()


def test_a_broken_log_call_passes_the_filter_for_the_handler_to_report() -> None:
    record = logging.LogRecord("bot.t", logging.WARNING, __file__, 1, "%d notices", ("3",), None)
    assert Redactor({"<X>": "secret-value"}).filter(record)  # no TypeError raised at the caller
    assert (record.msg, record.args) == ("%d notices", ("3",))


# --- real processes ----------------------------------------------------------------------------


def environment(tmp_path: Path, **settings: str) -> dict[str, str]:
    """This process's environment without CHUNGSUC_* settings, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHUNGSUC_")}
    env |= {"CHUNGSUC_DB_URL": f"sqlite+aiosqlite:///{tmp_path / 'proc.sqlite3'}"}
    return env | {"PYTHONIOENCODING": "utf-8"} | settings


@pytest.mark.slow
async def test_serve_with_a_refused_token_never_prints_it(tmp_path: Path) -> None:
    refused = "123456:" + "B" * 35  # the fake Bot API knows only TOKEN: 401, InvalidToken
    fake, port = FakeBotApi(), unused_port()
    async with serve(fake.app) as url:
        env = environment(
            tmp_path,
            CHUNGSUC_LOG_LEVEL="DEBUG",
            CHUNGSUC_TELEGRAM_TOKEN=refused,
            CHUNGSUC_TELEGRAM_WEBHOOK_SECRET=SECRETS["telegram_webhook_secret"],
            CHUNGSUC_TELEGRAM_API_URL=f"{url}/bot",
        )
        stderr = tmp_path / "stderr.txt"  # a file: DEBUG lines would fill a pipe and block
        with stderr.open("wb") as sink:
            process = await asyncio.create_subprocess_exec(
                str(CHUNGSUC),
                *("serve", "--port", str(port)),
                env=env,
                cwd=tmp_path,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=sink,
            )
            try:
                await until_healthy(f"http://127.0.0.1:{port}/healthz")
            finally:
                process.send_signal(signal.SIGINT)
                await asyncio.wait_for(process.wait(), 30)
    printed = stderr.read_text(encoding="utf-8")
    assert refused not in printed and "B" * 35 not in printed
    assert f"Set Bot API URL: {url}/bot<CHUNGSUC_TELEGRAM_TOKEN>" in printed
    assert "Telegram not started, its webhook answers 503: CHUNGSUC_TELEGRAM_TOKEN refused" in (
        printed
    )


async def until_healthy(url: str, within: float = 30.0) -> None:
    async with httpx.AsyncClient() as http, asyncio.timeout(within):
        while True:
            try:
                if (await http.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)


@pytest.mark.slow
async def test_the_terminal_chat_logs_to_a_file_not_into_the_conversation(
    tmp_path: Path,
) -> None:
    process = await asyncio.create_subprocess_exec(
        str(CHUNGSUC),
        "chat",
        env=environment(tmp_path, CHUNGSUC_LOG_LEVEL="INFO"),  # info lines, to be seen
        cwd=tmp_path,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(b"/start\n"), 60)

    assert process.returncode == 0, err.decode()
    assert "Tiếng Việt" in out.decode()  # the conversation
    assert " INFO " not in out.decode() and err.decode() == ""
    log = (tmp_path / "var" / "chungsuc.log").read_text(encoding="utf-8")
    assert " INFO bot.content.reference: loaded reference file" in log
