"""Short answers to common questions, from content/faq.toml, matched on folded keywords."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from bot.domain.paths import CONTENT_DIR
from bot.domain.text import fold


@dataclass(frozen=True)
class FaqEntry:
    id: str
    keywords: tuple[str, ...]
    question: dict[str, str]
    answer: dict[str, str]


class Faq:
    def __init__(self, entries: list[FaqEntry]) -> None:
        self.entries = entries
        self._by_id = {e.id: e for e in entries}
        # Longest phrase first, so "nong thon moi nang cao la gi" beats "nong thon moi la gi".
        self._phrases = sorted(
            ((fold(k), e) for e in entries for k in e.keywords), key=lambda p: -len(p[0])
        )

    @classmethod
    def load(cls, path: Path = CONTENT_DIR / "faq.toml") -> Faq:
        """The entries of a file; read once per process for the same text (as Understanding)."""
        return _parsed(path.read_text(encoding="utf-8"))

    def get(self, entry_id: str) -> FaqEntry | None:
        return self._by_id.get(entry_id)

    def match(self, folded: str) -> FaqEntry | None:
        padded = f" {folded} "
        for phrase, entry in self._phrases:
            if f" {phrase} " in padded:
                return entry
        return None


@lru_cache(maxsize=4)
def _parsed(text: str) -> Faq:
    data = tomllib.loads(text)
    return Faq(
        [FaqEntry(x["id"], tuple(x["keywords"]), x["question"], x["answer"]) for x in data["faq"]]
    )
