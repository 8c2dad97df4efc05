"""Vietnamese text as villagers type it: normalise for storage, fold for matching."""

from __future__ import annotations

import re
import unicodedata

# Zero-width and direction marks that phones and copy-paste leave inside words.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u200e\u200f\u2060\ufeff\u00ad"), None)
_SPACES = re.compile(r"\s+")
_NON_WORD = re.compile(r"[^0-9a-z]+")


def clean(text: str) -> str:
    """NFC, invisible characters removed, runs of white space collapsed: the form we store."""
    text = unicodedata.normalize("NFC", text.translate(_INVISIBLE))
    return _SPACES.sub(" ", text).strip()


def fold(text: str) -> str:
    """The matching key: case-folded, marks dropped, đ→d, punctuation to single spaces.

    "Chợ Đồn", "CHỢ ĐỒN", its NFD form and "cho don" all fold to "cho don".
    """
    text = unicodedata.normalize("NFKD", text.translate(_INVISIBLE).casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.replace("đ", "d")
    return _NON_WORD.sub(" ", text).strip()


def squash(text: str) -> str:
    """The folded key without spaces, so that "chodon" meets "cho don"."""
    return fold(text).replace(" ", "")


def split_message(text: str, limit: int) -> list[str]:
    """Split a long text into parts of at most `limit` characters, at paragraph boundaries
    where possible, then at line ends, then at spaces, and only as a last resort mid-word."""
    parts: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[: limit + 1]
        cut = -1
        for separator in ("\n\n", "\n", " "):
            cut = window.rfind(separator)
            if cut > limit // 3:
                break
        if cut <= 0:
            cut = limit
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        parts.append(rest)
    return parts
