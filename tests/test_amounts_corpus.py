"""The corpus of amounts, days and times as villagers type them (tests/corpus/amounts.toml).

Each section prints its accuracy and fails on any wrong answer: a misread amount or day is
never acceptable, so the target is 100%.
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.domain.amounts import Amount, AmountError, Kind, find_amount, parse_amount
from bot.domain.dates import parse_moment, parse_when

CORPUS = tomllib.loads((Path(__file__).parent / "corpus" / "amounts.toml").read_text("utf-8"))
TZ = ZoneInfo("Asia/Ho_Chi_Minh")
TODAY: date = CORPUS["today"]
NOW: datetime = CORPUS["now"].astimezone(TZ)


def _expected_amount(case: dict[str, Any]) -> Amount:
    return Amount(Kind(case["kind"]), case["value"], case.get("unit"), case.get("description"))


def _amount(case: dict[str, Any]) -> tuple[object, object]:
    expect = Kind(case["expect"]) if "expect" in case else None
    try:
        got: object = parse_amount(case["text"], expect)
    except AmountError as error:
        got = f"error {error.code}"
    wanted = f"error {case['error']}" if "error" in case else _expected_amount(case)
    return got, wanted


def _find(case: dict[str, Any]) -> tuple[object, object]:
    return find_amount(case["text"]), None if case.get("none") else _expected_amount(case)


def _when(case: dict[str, Any]) -> tuple[object, object]:
    return parse_when(case["text"], case.get("today", TODAY)), case.get("date")


def _moment(case: dict[str, Any]) -> tuple[object, object]:
    got = parse_moment(case["text"], NOW)
    if got is not None and got.utcoffset() != NOW.utcoffset():
        return f"{got} (not in Vietnam's time)", case.get("moment")
    return got, NOW if case.get("now") else case.get("moment")


CHECKS: dict[str, Callable[[dict[str, Any]], tuple[object, object]]] = {
    "amount": _amount,
    "find": _find,
    "when": _when,
    "moment": _moment,
}


@pytest.mark.parametrize("section", list(CHECKS))
def test_corpus_section(section: str, capsys: pytest.CaptureFixture[str]) -> None:
    cases = CORPUS[section]
    wrong = []
    started = time.perf_counter()
    for case in cases:
        got, wanted = CHECKS[section](case)
        if got != wanted:
            wrong.append(f"  {case['text']!r}: got {got}, want {wanted}")
    per_case = (time.perf_counter() - started) / len(cases)
    right = len(cases) - len(wrong)
    with capsys.disabled():
        print(
            f"\n{section}: {right}/{len(cases)} right ({100 * right / len(cases):.1f}%), "
            f"{per_case * 1e6:.0f} µs a case"
        )
    assert not wrong, "\n".join(["wrong answers:", *wrong])
    assert per_case < 1e-3, "a parse should take well under a millisecond"


def test_the_corpus_is_large_and_covers_every_kind_and_refusal() -> None:
    total = sum(len(CORPUS[section]) for section in CHECKS)
    assert total >= 200
    kinds = {case["kind"] for case in CORPUS["amount"] if "kind" in case}
    assert kinds == {str(kind) for kind in Kind}
    errors = {case["error"] for case in CORPUS["amount"] if "error" in case}
    assert {"unparseable", "mixed", "too_precise", "wrong_kind"} <= errors
    assert any(case.get("none") for case in CORPUS["when"])
    assert any(case.get("none") for case in CORPUS["moment"])


def test_every_case_says_what_it_expects() -> None:
    outcome: dict[str, tuple[str, ...]] = {"amount": ("kind", "error"), "find": ("kind", "none")}
    outcome |= {"when": ("date", "none"), "moment": ("moment", "now", "none")}
    for section, keys in outcome.items():
        for case in CORPUS[section]:
            assert sum(key in case for key in keys) == 1, case
