"""Vietnamese text as villagers type it: normalise for storage, fold for matching."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Zero-width and direction marks that phones and copy-paste leave inside words.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u200e\u200f\u2060\ufeff\u00ad"), None)
_SPACES = re.compile(r"\s+")
_NON_WORD = re.compile(r"[^0-9a-z]+")


def clean(text: str) -> str:
    """NFC, invisible characters removed, runs of white space collapsed: the form we store."""
    text = unicodedata.normalize("NFC", text.translate(_INVISIBLE))
    return _SPACES.sub(" ", text).strip()


@lru_cache(maxsize=8192)
def fold(text: str) -> str:
    """The matching key: case-folded, marks dropped, đ→d, punctuation to single spaces.

    "Chợ Đồn", "CHỢ ĐỒN", its NFD form and "cho don" all fold to "cho don".
    """
    text = unicodedata.normalize("NFKD", text.translate(_INVISIBLE).casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.replace("đ", "d")
    return _NON_WORD.sub(" ", text).strip()


# One Vietnamese syllable, folded: an initial, a vowel cluster, a final. A typed word that cannot
# be cut into syllables ("mnih", "phcu") is a typo; a phrase of real syllables may be meant as
# it is written: "cho tôi" is one letter from "Chợ Mới", "góp tiền" from "Hợp Tiến".
_GLIDING = "ieu yeu oai oao oay oeo uay uoi uou uya uyu ai ao au ay eo eu ia iu oi ui uu ya"
_VOWELS = "uye oa oe oo ua ue uo uy ie ye a e i o u y"  # these may end in a consonant
_SYLLABLE = re.compile(
    r"(?:ngh|ng|nh|ch|gh|gi|kh|ph|qu|th|tr|[bcdghklmnpqrstvx])?"
    rf"(?:{'|'.join(_GLIDING.split())}|(?:{'|'.join(_VOWELS.split())})(?:ch|ng|nh|[cmnpt])?)"
)


def is_syllable(word: str) -> bool:
    """Whether a folded word is one Vietnamese syllable ("trieu", not "mnih")."""
    return _SYLLABLE.fullmatch(word) is not None


@lru_cache(maxsize=4096)
def syllables(word: str) -> bool:
    """Whether a folded word is made of Vietnamese syllables ("chodon" is "cho" + "don")."""
    ends = {0}
    for end in range(1, len(word) + 1):
        if any(_SYLLABLE.fullmatch(word, start, end) for start in ends if end - start <= 7):
            ends.add(end)
    return len(word) in ends


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
