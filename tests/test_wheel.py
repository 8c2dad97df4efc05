"""The wheel carries everything the bot needs: built, installed in a fresh venv, run offline."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = (
    "bot/_data/content/areas/19-thai-nguyen.json",
    "bot/_data/content/templates/status_card.txt",
    "bot/_data/locales/en/LC_MESSAGES/messages.po",
    "bot/migrations/versions/0001_foundation.py",
)
PRINT_PURELIB = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
PRINT_WHERE = (
    "import bot, bot.domain.paths; print(bot.__file__); print(bot.domain.paths.CONTENT_DIR)"
)


def offline_env(**extra: str) -> dict[str, str]:
    """This environment without our settings or import paths, and with no package index."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CHUNGSUC_", "PYTHON", "PIP_")) and k != "VIRTUAL_ENV"
    }
    env |= {"PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONIOENCODING": "utf-8"}
    return env | extra


def sh(*args: str | Path, cwd: Path, stdin: str = "", env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env or offline_env(),
        timeout=120,
    )
    assert done.returncode == 0, f"{args}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    return done.stdout


@pytest.mark.slow
def test_wheel_installs_and_chats_from_anywhere(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    pip = (sys.executable, "-m", "pip")
    sh(*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", dist, ROOT, cwd=tmp_path)
    (wheel,) = dist.glob("chungsuc-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in SHIPPED:
        assert name in names
    assert not any(n.startswith(("tests/", "var/")) for n in names)

    venv = tmp_path / "venv"
    sh(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    purelib = Path(sh(python, "-c", PRINT_PURELIB, cwd=tmp_path).strip())
    # The project's dependencies, already installed here, without a network; the editable
    # chungsuc in that directory is a .pth of its own, which a .pth line does not process.
    (purelib / "_chungsuc_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    sh(*pip, "--python", python, "install", "--no-deps", "--no-index", "-q", wheel, cwd=tmp_path)

    work = tmp_path / "work"
    work.mkdir()
    where = sh(python, "-c", PRINT_WHERE, cwd=work).splitlines()
    assert [Path(p).is_relative_to(venv) for p in where] == [True, True], where
    assert Path(where[1]) == purelib / "bot" / "_data" / "content"

    out = sh(venv / "bin" / "chungsuc", "chat", cwd=work, stdin="/start\n1\ncho don\n/trogiup\n")

    assert "Xã Chợ Đồn" in out
    assert "Chung Sức giúp bạn theo dõi và cùng xây dựng nông thôn mới ở xã mình" in out
    assert "/tiendo" in out
    assert (work / "var" / "chungsuc.sqlite3").is_file()
