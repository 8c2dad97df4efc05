"""The `chungsuc` command: admin grants, db, seed, run telegram, and a scripted terminal chat."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from bot.app.services import Services
from bot.interfaces.cli.main import app
from tests.live_server import unused_port

PRINCIPAL = "telegram:123456789"
CHUNGSUC = Path(sys.executable).parent / "chungsuc"


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The database file the in-process command uses."""
    path = tmp_path / "cli.sqlite3"
    for name in list(os.environ):
        if name.startswith("CHUNGSUC_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CHUNGSUC_DB_URL", f"sqlite+aiosqlite:///{path}")
    return path


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def grants(db: Path) -> list[tuple[str, str, str, str]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT principal, role, area_code, granted_by FROM officials ORDER BY id"
        ).fetchall()
    conn.close()
    return rows


def table_counts(db: Path, *tables: str) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        found = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
    conn.close()
    return found


# --- admin -------------------------------------------------------------------------------------


def test_grant_list_revoke(db: Path) -> None:
    assert "No officials yet." in invoke("admin", "list").stdout

    result = invoke("admin", "grant", PRINCIPAL, "commune_official", "02020", "--by", "tester")
    assert result.exit_code == 0, result.output
    assert f"Granted commune_official for 02020 to {PRINCIPAL}." in result.stdout
    assert grants(db) == [(PRINCIPAL, "commune_official", "02020", "tester")]

    again = invoke("admin", "grant", "Telegram:123456789", "commune_official", "02020")
    assert again.exit_code == 0, again.output
    assert "Already granted." in again.stdout
    assert len(grants(db)) == 1

    long_one = "zalo:1234567890123456789012"
    assert invoke("admin", "grant", long_one, "province_official", "19").exit_code == 0

    listed = invoke("admin", "list")
    assert listed.exit_code == 0, listed.output
    assert "No officials yet." not in listed.stdout
    rows = [line for line in listed.stdout.splitlines() if "_official" in line]
    assert len(rows) == 2
    # whole, even where the terminal is narrow (CliRunner's is 80 columns)
    assert PRINCIPAL in rows[0] and "commune_official" in rows[0] and "02020" in rows[0]
    assert long_one in rows[1] and "province_official" in rows[1] and " 19 " in rows[1]
    folded = "".join(c for c in listed.stdout if c in "0123456789-T:+")
    assert "+07:00" in folded  # when, in Vietnam time (the column may be folded)
    assert invoke("admin", "revoke", long_one, "province_official", "19").exit_code == 0

    revoked = invoke("admin", "revoke", PRINCIPAL, "commune_official", "02020")
    assert revoked.exit_code == 0, revoked.output
    assert f"Revoked commune_official for 02020 from {PRINCIPAL}." in revoked.stdout
    assert grants(db) == []
    assert "No officials yet." in invoke("admin", "list").stdout

    missing = invoke("admin", "revoke", PRINCIPAL, "commune_official", "02020")
    assert missing.exit_code == 1
    assert f"{PRINCIPAL} has no commune_official grant for 02020." in missing.stderr


def test_grant_for_the_province(db: Path) -> None:
    result = invoke("admin", "grant", "zalo:987", "province_official", "19")
    assert result.exit_code == 0, result.output
    assert grants(db) == [("zalo:987", "province_official", "19", "cli")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param([PRINCIPAL, "chairman", "02020"], "role must be one of", id="role"),
        pytest.param([PRINCIPAL, "commune_official", "99999"], "“99999”", id="area"),
        pytest.param(["123456789", "commune_official", "02020"], "kênh:mã", id="no-channel"),
        pytest.param(["telegram:", "commune_official", "02020"], "kênh:mã", id="no-id"),
        pytest.param([":123", "commune_official", "02020"], "kênh:mã", id="empty-channel"),
        pytest.param(["nosuchchannel:1", "commune_official", "02020"], "“nosuchchan", id="chan"),
        pytest.param(["sms:0912345678", "admin", "19"], "telegram, zalo, zalo_oa", id="sms"),
        pytest.param(["telegram: 1", "commune_official", "02020"], "“ 1”", id="space-in-id"),
        pytest.param(["telegram:@nguyenvana", "commune_official", "02020"], "“@ng", id="handle"),
        pytest.param(["telegram:-100123", "commune_official", "02020"], "“-100123”", id="group"),
        pytest.param(["zalo_oa:abc", "commune_official", "02020"], "“abc”", id="oa-not-digits"),
        pytest.param(["terminal:a b", "commune_official", "02020"], "“a b”", id="terminal"),
        pytest.param([PRINCIPAL, "commune_official", "19"], "“19”", id="commune-role-province"),
        pytest.param([PRINCIPAL, "province_official", "02020"], "“02020”", id="province-commune"),
        pytest.param([PRINCIPAL, "province_official", "01"], "“01”", id="other-province"),
        pytest.param([PRINCIPAL, "admin", "02020"], "“02020”", id="admin-on-a-commune"),
    ],
)
def test_bad_grants_are_refused(db: Path, args: list[str], message: str) -> None:
    invoke("db", "upgrade")

    result = invoke("admin", "grant", *args)

    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert grants(db) == []


def test_a_commune_code_written_as_a_number_is_zero_padded(db: Path) -> None:
    """2020 is how Excel keeps 02020; imports pad it, and so does a grant (and a revoke)."""
    result = invoke("admin", "grant", PRINCIPAL, "commune_official", "2020")
    assert result.exit_code == 0, result.output
    assert f"Granted commune_official for 02020 to {PRINCIPAL}." in result.stdout
    assert invoke("admin", "grant", "zalo_oa:8842156427713412345", "admin", "19").exit_code == 0
    assert grants(db) == [
        (PRINCIPAL, "commune_official", "02020", "cli"),
        ("zalo_oa:8842156427713412345", "admin", "19", "cli"),
    ]

    assert invoke("admin", "revoke", PRINCIPAL, "commune_official", "2020").exit_code == 0
    assert grants(db) == [("zalo_oa:8842156427713412345", "admin", "19", "cli")]


def test_every_channel_a_grant_accepts_is_one_the_bot_runs_on() -> None:
    from bot.channels import telegram, terminal, zalo_bot, zalo_oa
    from bot.storage.officials import USER_ID_EXAMPLES, USER_IDS

    adapters = {m.CHANNEL for m in (telegram, terminal, zalo_bot, zalo_oa)}
    assert set(USER_IDS) == adapters == set(USER_ID_EXAMPLES)
    for channel, example in USER_ID_EXAMPLES.items():
        assert USER_IDS[channel].fullmatch(example), channel


async def test_who_may_act_where(empty_services: Services) -> None:
    officials = empty_services.officials
    province = empty_services.reference.province_code
    assert province == "19"
    await officials.grant("telegram:1", "commune_official", "02020", "t")
    await officials.grant("telegram:2", "province_official", "19", "t")
    await officials.grant("telegram:3", "admin", "19", "t")

    assert await officials.may("telegram:1", "commune_official", "02020", province)
    assert not await officials.may("telegram:1", "commune_official", "01840", province)
    assert not await officials.may("telegram:1", "province_official", "19", province)
    assert not await officials.may("zalo:1", "commune_official", "02020", province)
    for commune in ("02020", "01840"):
        assert await officials.may("telegram:2", "commune_official", commune, province)
        assert await officials.may("telegram:3", "commune_official", commune, province)
    assert await officials.may("telegram:3", "admin", "19", province)
    assert not await officials.may("telegram:2", "admin", "19", province)
    assert not await officials.may("telegram:9", "commune_official", "02020", province)

    await officials.revoke("telegram:1", "commune_official", "02020")
    assert not await officials.may("telegram:1", "commune_official", "02020", province)


async def test_grant_rejects_an_unknown_role(empty_services: Services) -> None:
    with pytest.raises(ValueError, match="unknown role"):
        await empty_services.officials.grant("telegram:1", "mayor", "02020", "t")
    assert await empty_services.officials.grants() == []


# --- db and seed -------------------------------------------------------------------------------


def test_db_upgrade_is_idempotent(db: Path) -> None:
    first = invoke("db", "upgrade")
    assert first.exit_code == 0, first.output
    assert "Database is up to date." in first.stdout
    tables = ("areas", "area_successions", "criteria", "content_versions", "alembic_version")
    after_first = table_counts(db, *tables)
    assert after_first["areas"] > 0
    assert after_first["alembic_version"] == 1

    second = invoke("db", "upgrade")
    assert second.exit_code == 0, second.output
    assert "Database is up to date." in second.stdout
    assert table_counts(db, *tables) == after_first


def test_seed_sample_if_empty_loads_once(db: Path) -> None:
    first = invoke("seed", "--sample", "--if-empty")
    assert first.exit_code == 0, first.output
    assert "sample status rows" in first.stdout
    loaded = table_counts(db, "status_records", "status_imports")
    assert loaded["status_imports"] == 1
    assert loaded["status_records"] > 0

    second = invoke("seed", "--sample", "--if-empty")
    assert second.exit_code == 0, second.output
    assert "sample data not added" in second.stdout
    assert table_counts(db, "status_records", "status_imports") == loaded


# --- real processes ----------------------------------------------------------------------------


def run(
    tmp_path: Path, *args: str, stdin: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    """`chungsuc ARGS` as a process, with no CHUNGSUC_* setting inherited from this one."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CHUNGSUC_")}
    environment |= {
        "CHUNGSUC_DB_URL": f"sqlite+aiosqlite:///{tmp_path / 'proc.sqlite3'}",
        "COLUMNS": "60",  # narrower than any message: a wrapped message would show
        "PYTHONIOENCODING": "utf-8",
        **env,
    }
    assert CHUNGSUC.exists(), CHUNGSUC
    return subprocess.run(
        [str(CHUNGSUC), *args],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=environment,
        cwd=tmp_path,
        timeout=60,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("token", "problem"),
    [
        pytest.param(None, "CHUNGSUC_TELEGRAM_TOKEN is not set", id="missing"),
        pytest.param("", "CHUNGSUC_TELEGRAM_TOKEN is not set", id="empty"),
        pytest.param(
            "123456:short",
            "CHUNGSUC_TELEGRAM_TOKEN does not look like a bot token (digits:secret)",
            id="malformed",
        ),
    ],
)
def test_run_telegram_without_a_usable_token(
    tmp_path: Path, token: str | None, problem: str
) -> None:
    env = {} if token is None else {"CHUNGSUC_TELEGRAM_TOKEN": token}

    done = run(tmp_path, "run", "telegram", **env)

    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"Cannot start the Telegram bot: {problem}."]
    assert done.stdout == ""
    assert "short" not in done.stderr


@pytest.mark.slow
def test_run_telegram_when_the_bot_api_cannot_be_reached(tmp_path: Path) -> None:
    port = unused_port()
    token = "123456:" + "A" * 35

    done = run(
        tmp_path,
        "run",
        "telegram",
        CHUNGSUC_TELEGRAM_TOKEN=token,
        CHUNGSUC_TELEGRAM_API_URL=f"http://127.0.0.1:{port}/bot",
    )

    assert done.returncode == 3
    problems = [line for line in done.stderr.splitlines() if " INFO " not in line]
    assert len(problems) == 1, done.stderr  # one line: no traceback, no unclosed session
    assert problems[0].startswith(f"Cannot reach the Telegram Bot API at http://127.0.0.1:{port}")
    assert token not in done.stderr


@pytest.mark.slow
def test_scripted_chat_without_and_with_sample_data(tmp_path: Path) -> None:
    script = "/start\n1\nBằng Lãng\n/tiendo\n"

    done = run(tmp_path, "chat", stdin=script)

    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "Xã Bằng Lãng cũ nay thuộc Xã Chợ Đồn" in done.stdout
    assert "Chưa có số liệu" in done.stdout
    assert "Dữ liệu mẫu" not in done.stdout
    assert "/10 tiêu chí" not in done.stdout

    # A returning user is not onboarded again, so the seeded run gets a database of its own.
    seeded_dir = tmp_path / "seeded"
    seeded_dir.mkdir()
    seeded = run(seeded_dir, "seed", "--sample")
    assert seeded.returncode == 0, seeded.stderr
    assert "sample status rows" in seeded.stdout

    done = run(seeded_dir, "chat", stdin=script)

    assert done.returncode == 0, done.stderr
    assert "Xã Bằng Lãng cũ nay thuộc Xã Chợ Đồn" in done.stdout
    assert "Dữ liệu mẫu" in done.stdout
    assert "/10 tiêu chí" in done.stdout
    assert "Chưa có số liệu về xã này" not in done.stdout
