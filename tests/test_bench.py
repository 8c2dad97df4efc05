"""The benchmarks keep working: each imports, and the pledge, update, poll and pages benchmarks
run a tiny round end to end (their figures are read in BENCHMARKS.md, never asserted here)."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.databases import PG_URL

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "name",
    [
        *("broadcast", "contributions", "pages", "polls"),
        *("scale", "scale_broadcast", "updates", "voices"),
    ],
)
def test_every_benchmark_imports(name: str) -> None:
    importlib.import_module(f"bench.{name}")


@pytest.mark.parametrize(
    "command",
    [
        ["bench/contributions.py", "--users", "3", "--rounds", "1"],
        ["bench/contributions.py", "--users", "3", "--rounds", "1", "--typed"],
        ["bench/updates.py", "--updates", "20", "--rounds", "1"],
        ["bench/voices.py", "--users", "3", "--rounds", "1"],
    ],
)
def test_a_tiny_benchmark_run_completes(command: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, *command], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "÷ echo" in done.stdout


def test_a_tiny_poll_close_benchmark_completes() -> None:
    command = ["bench/polls.py", "--votes", "200", "--subscribers", "300", "--rounds", "1"]
    done = subprocess.run(
        [sys.executable, *command], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "close a poll of 200 votes" in done.stdout and "turnout 200/300" in done.stdout


def test_a_tiny_pages_benchmark_completes() -> None:
    command = [
        *("bench/pages.py", "--contributions", "300", "--reports", "30", "--polls", "4"),
        *("--seconds", "0.5", "--concurrency", "4", "--rounds", "1"),
    ]
    done = subprocess.run(
        [sys.executable, *command], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "commune page ÷ bare" in done.stdout and "300 contributions" in done.stdout


def test_a_tiny_scale_benchmark_completes() -> None:
    """Real `chungsuc serve` processes behind real webhooks: SQLite, and one and two workers on
    PostgreSQL when the suite has a server."""
    command = ["bench/scale.py", "--users", "3", "--workers", ""]
    if os.environ.get(PG_URL):
        command += ["--workers", "1,2", "--no-sqlite", "--pg-url", os.environ[PG_URL]]
    done = subprocess.run(
        [sys.executable, *command], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "users answered out of order or wrongly, all runs: 0" in done.stdout


def test_a_tiny_scaled_broadcast_completes() -> None:
    """Two workers and one killed, then one on SQLite restarted (PostgreSQL when a server is
    named, as for the suite)."""
    command = ["bench/scale_broadcast.py", "--subscribers", "300", "--rate", "200"]
    command += ["--kill-after", "0.5", "--lease", "1"]
    url = os.environ.get(PG_URL)
    command += ["--workers", "2", "--pg-url", url] if url else ["--workers"]
    done = subprocess.run(
        [sys.executable, *command], cwd=ROOT, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("missed 0;") == (2 if url else 1)
