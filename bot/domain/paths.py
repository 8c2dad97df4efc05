"""Where shipped data lives: beside the package when installed, at the repo root otherwise."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parents[1]  # the bot package


def _data_dir(name: str) -> Path:
    installed = _HERE / "_data" / name
    if installed.is_dir():
        return installed
    return _HERE.parent / name


CONTENT_DIR = _data_dir("content")
LOCALES_DIR = _data_dir("locales")
TEMPLATES_DIR = CONTENT_DIR / "templates"
MIGRATIONS_DIR = _HERE / "migrations"
