import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.text import clean, fold, split_message, squash


@pytest.mark.parametrize(
    "typed",
    ["Chợ Đồn", "CHỢ ĐỒN", unicodedata.normalize("NFD", "Chợ Đồn"), "cho don", "  cho   DON "],
)
def test_every_way_of_typing_a_name_folds_alike(typed: str) -> None:
    assert fold(typed) == "cho don"


def test_old_and_new_tone_placement_fold_alike() -> None:
    assert fold("Thuỷ") == fold("Thủy") == "thuy"
    assert fold("Hoá") == fold("Hóa") == "hoa"


def test_zero_width_characters_vanish() -> None:
    assert clean("Chợ\u200b Đồn\ufeff") == "Chợ Đồn"
    assert squash("cho\u200bdon") == "chodon"


def test_clean_stores_nfc() -> None:
    assert clean(unicodedata.normalize("NFD", "Bằng Lãng")) == unicodedata.normalize(
        "NFC", "Bằng Lãng"
    )


def test_split_prefers_paragraphs_then_lines() -> None:
    text = "\n\n".join(["a" * 30, "b" * 30, "c" * 30])
    assert split_message(text, 70) == ["a" * 30 + "\n\n" + "b" * 30, "c" * 30]
    assert split_message("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]


@given(st.text(max_size=3000), st.integers(min_value=20, max_value=500))
def test_split_keeps_every_part_under_the_limit(text: str, limit: int) -> None:
    parts = split_message(text, limit)
    assert all(0 < len(p) <= limit for p in parts)
    assert "".join("".join(p.split()) for p in parts) == "".join(text.split())


@given(st.text())
def test_fold_never_raises_and_is_ascii_words(text: str) -> None:
    folded = fold(text)
    assert folded == folded.strip()
    assert all(ch.isalnum() or ch == " " for ch in folded)
