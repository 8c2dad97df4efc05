"""Finding a commune the way villagers name it: any case, with or without accents, with typos,
by today's name or by the name of the old commune or district it came from.

Names that differ only by their marks ("Văn Lang", "Văn Lăng") are told apart by the marks
typed; a name one letter off is taken when it is the only one and the text is no words as
typed; several names one letter off are offered to choose from."""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from bot.content.reference import Commune, LegacyUnit
from bot.domain.text import clean, fold, is_syllable, squash, syllables

# Unit types people put in front of a name; the name alone is what they mean.
_PREFIXES = tuple(
    fold(p) + " "
    for p in (
        "đặc khu",
        "thị trấn",
        "thành phố",
        "thị xã",
        "tỉnh",
        "huyện",
        "phường",
        "xã",
        "tp",
        "quận",
    )
)
ACCEPT = 88  # a fuzzy score at least this good is a match
SUGGEST = 60  # below this a name is not worth suggesting
MAX_CHOICES = 10
# A name is recognised despite one wrong, missing, extra or swapped letter only from this many
# letters on: below it one edit turns too many everyday words into a name ("na" → "Na Rì").
TYPO_MIN = 5
# What people answer in a chat, folded. Typed in the commune step, such a word is a reply, not
# a misspelt place: "đồng ý" is one letter from "Đồng Hỷ". A commune of that very name is still
# found, because exact names are looked up first.
CHAT_WORDS = frozenset(
    fold(w)
    for w in (
        "ok",
        "oke",
        "okay",
        "ừ",
        "ừm",
        "vâng",
        "dạ",
        "có",
        "không",
        "ko",
        "đúng",
        "đúng rồi",
        "sai",
        "rồi",
        "được",
        "đồng ý",
        "hủy",
        "hủy bỏ",
        "dừng",
        "dừng lại",
        "thôi",
        "thoát",
        "alo",
        "chào",
        "xin chào",
        "chào bạn",
        "hi",
        "hello",
        "cảm ơn",
        "cám ơn",
        "thanks",
        "thank you",
        "giúp",
        "trợ giúp",
        "help",
        "menu",
    )
)


def _reads_as_words(folded: str) -> bool:
    """Whether a folded text is Vietnamese words as typed: one syllable a word, or syllables
    run together when typed as a single word ("chodon")."""
    words = folded.split()
    if len(words) == 1:
        return syllables(words[0])
    return bool(words) and all(is_syllable(word) for word in words)


def bare(name: str) -> str:
    """Folded name without its unit type: "Xã Chợ Đồn" → "cho don"."""
    folded = fold(name)
    for prefix in _PREFIXES:
        if folded.startswith(prefix):
            return folded[len(prefix) :]
    return folded


Marks = tuple[str, ...]
Spelling = tuple[tuple[str, str], ...]  # each word: its folded letters, its marks


def _spelling(text: str) -> Spelling:
    """Each word's folded letters and its marks, order-free so that old and new tone placement
    agree ("Thuỷ" and "Thủy"): "Văn Lăng" → (("van", "\u0306"), ("lang", "\u0306"))."""
    words: list[tuple[str, str]] = []
    letters: list[str] = []
    marks: list[str] = []
    for ch in unicodedata.normalize("NFKD", clean(text).casefold()) + " ":
        if unicodedata.combining(ch):
            if letters:
                marks.append(ch)
        elif ch == "đ" or "a" <= ch <= "z" or "0" <= ch <= "9":
            letters.append("d" if ch == "đ" else ch)
            if ch == "đ":
                marks.append(ch)
        elif letters:
            words.append(("".join(letters), "".join(sorted(marks))))
            letters, marks = [], []
    return tuple(words)


def _name_spelling(name: str) -> Spelling:
    """The spelling of a name without its unit type."""
    words = _spelling(name)
    folded = " ".join(letters for letters, _ in words)
    for prefix in _PREFIXES:
        if folded.startswith(prefix):
            return words[len(prefix.split()) :]
    return words


def _lined_up(typed: Spelling, name: Spelling) -> tuple[Marks, Marks]:
    """The marks typed and the name's, word by word where the words line up, else as one word.
    Words typed in front of the name ("xã", "phường") are left out."""
    size = sum(len(letters) for letters, _ in name)
    while len(typed) > 1 and sum(len(letters) for letters, _ in typed[1:]) >= size - 1:
        typed = typed[1:]
    mine, theirs = tuple(m for _, m in typed), tuple(m for _, m in name)
    if len(mine) != len(theirs):  # "vănlăng" typed as one word
        return ("".join(sorted("".join(mine))),), ("".join(sorted("".join(theirs))),)
    return mine, theirs


def _contains(typed: str, marks: str) -> bool:
    return not Counter(typed) - Counter(marks)


def _by_marks(typed: Spelling, spellings: Iterable[Spelling]) -> list[Spelling]:
    """The spellings the typed marks choose: the one typed exactly, else those that carry every
    mark typed; all of them when the marks choose none, or when none were typed."""
    spellings = list(spellings)
    if not any(marks for _, marks in typed):
        return spellings
    exact, containing = [], []
    for spelling in spellings:
        mine, theirs = _lined_up(typed, spelling)
        if mine == theirs:
            exact.append(spelling)
        elif all(map(_contains, mine, theirs)):
            containing.append(spelling)
    return exact or containing or spellings


def _rank(item: Commune | LegacyUnit) -> int:
    # Today's commune first, then old communes, then old districts of the same name.
    return 0 if isinstance(item, Commune) else (1 if item.level == "commune" else 2)


@dataclass(frozen=True)
class Found:
    """What a query matched: today's communes, and the old unit when an old name was typed."""

    communes: tuple[Commune, ...]
    via: LegacyUnit | None = None
    exact: bool = True  # False when the name was recognised despite a typo


@dataclass
class SearchResult:
    found: list[Found] = field(default_factory=list)
    suggestions: list[Commune] = field(default_factory=list)
    ambiguous: bool = False  # several names are one typo away: the user has to choose

    @property
    def communes(self) -> list[Commune]:
        """Every commune found, today's name first, without repeats."""
        return list(dict.fromkeys(c for f in self.found for c in f.communes))

    @property
    def meant(self) -> Commune | None:
        """The commune the user meant, when no other commune of today competes with it:
        one match, or today's commune of that name ahead of old units of the same name."""
        first = self.found[0] if self.found else None
        if first is None or len(first.communes) != 1 or self.ambiguous:
            return None
        rivals = [f for f in self.found[1:] if f.via is None]
        if first.via is not None and len(self.found) > 1:
            return None
        return None if rivals else first.communes[0]


class AreaIndex:
    """Search within one province: current communes first, then old communes and districts."""

    def __init__(self, communes: dict[str, Commune], legacy: tuple[LegacyUnit, ...]) -> None:
        self._communes = communes
        self._entries: list[tuple[str, Commune | LegacyUnit]] = []
        # Squashed key → the units of that name, by spelling with marks ("Văn Lang", "Văn Lăng").
        self._names: dict[str, dict[Spelling, list[Commune | LegacyUnit]]] = {}
        items: list[Commune | LegacyUnit] = [*communes.values(), *legacy]
        for item in sorted(items, key=_rank):
            # "Xã Phương Viên" is found as "phuong vien" and as "xa phuong vien".
            for key in dict.fromkeys((squash(bare(item.name)), squash(item.name))):
                self._entries.append((key, item))
                spellings = self._names.setdefault(key, {})
                units = spellings.setdefault(_name_spelling(item.name), [])
                if item not in units:
                    units.append(item)
        self._keys = [key for key, _ in self._entries]
        # Names long enough to be recognised despite a typo, by length: one edit changes the
        # length by one at most, so a query of length n is compared with n-1, n and n+1 only.
        long_names = {squash(bare(item.name)) for item in items}
        by_length: dict[int, list[str]] = {}
        for key in long_names:
            if len(key) >= TYPO_MIN:
                by_length.setdefault(len(key), []).append(key)
        self._typo_keys = {
            n: sorted(k for m in (n - 1, n, n + 1) for k in by_length.get(m, ()))
            for n in range(TYPO_MIN, max(by_length, default=0) + 2)
        }

    @classmethod
    def of(cls, communes: dict[str, Commune], legacy: tuple[LegacyUnit, ...]) -> AreaIndex:
        """The index of these units, built once per process for the same units (about 10 ms):
        services built again — a worker's restart, each test — share it; it never changes."""
        return _indexed(tuple(communes.items()), legacy)

    def get(self, code: str) -> Commune | None:
        return self._communes.get(code)

    def _found(self, item: Commune | LegacyUnit, exact: bool) -> Found:
        if isinstance(item, Commune):
            return Found((item,), None, exact)
        communes = tuple(self._communes[c] for c in item.successors if c in self._communes)
        return Found(communes, item, exact)

    def _named(self, keys: Iterable[str], query: str) -> list[Commune | LegacyUnit]:
        """The units bearing one of these names; where names differ only by their marks
        ("Văn Lang", "Văn Lăng"), those of the spelling the query's marks choose."""
        units: dict[Commune | LegacyUnit, None] = {}
        typed: Spelling | None = None
        for key in keys:
            spellings = self._names[key]
            chosen = list(spellings)
            if len(spellings) > 1:
                typed = _spelling(query) if typed is None else typed
                chosen = _by_marks(typed, spellings)
            for spelling in chosen:
                units.update(dict.fromkeys(spellings[spelling]))
        return sorted(units, key=_rank)

    def _one_typo_away(self, key: str) -> list[str]:
        """Names one substituted, missing, extra or swapped letter away from the key."""
        choices = self._typo_keys.get(len(key), ())
        if len(key) < TYPO_MIN or not choices:
            return []
        near = process.extract(key, choices, scorer=OSA.distance, score_cutoff=1, limit=None)
        return [name for name, _, _ in near]

    def exact(self, query: str) -> SearchResult:
        """Only a name as it is (any case and marks, with or without "xã"): no typo, no guess.
        Cheap enough to try on every few words of a sentence."""
        keys = {squash(bare(query)), squash(query)} - {""}
        result = SearchResult()
        named = self._named((k for k in keys if k in self._names), query)
        result.found = [self._found(item, True) for item in named]
        return result

    def named_in(self, text: str, longest: int = 4) -> Commune | None:
        """The one commune a sentence names exactly ("xã Na Rì đạt bao nhiêu tiêu chí"): runs of
        up to `longest` words looked up as keys, the few that hit checked by `exact`."""
        words = fold(text).split()
        for size in range(min(longest, len(words)), 1, -1):
            for start in range(len(words) - size + 1):
                if "".join(words[start : start + size]) in self._names:
                    meant = self.exact(" ".join(text.split()[start : start + size])).meant
                    if meant is None:
                        meant = self.exact(" ".join(words[start : start + size])).meant
                    if meant is not None:
                        return meant
        return None

    def search(self, query: str) -> SearchResult:
        bare_key, whole_key = squash(bare(query)), squash(query)
        keys = {bare_key, whole_key} - {""}
        result = SearchResult()
        if not keys:
            return result
        exact = self._named((k for k in keys if k in self._names), query)
        if exact:
            result.found = [self._found(item, True) for item in exact]
            return result
        if fold(query) in CHAT_WORDS:
            return result
        key = bare_key or whole_key
        # Both keys: "Quan Triều" and "Phương Viên" begin with a word that is also a unit type.
        near = list(dict.fromkeys(n for k in keys for n in self._one_typo_away(k)))
        # Several names one edit away are all offered. One alone is taken only where the text
        # is no words as typed ("cao mnih"); words as typed ("cho tôi", one letter from
        # "Chợ Mới") go on to the gentler fuzzy match below, as they always have.
        if len(near) > 1 or (near and not _reads_as_words(fold(query))):
            result.found = [self._found(item, False) for item in self._named(near, query)]
            result.ambiguous = len(near) > 1 and len(result.communes) > 1
            return result
        scored = process.extract(
            key, self._keys, scorer=fuzz.ratio, limit=MAX_CHOICES * 2, score_cutoff=SUGGEST
        )
        good = [(self._entries[i][1], score) for _, score, i in scored if score >= ACCEPT]
        if len(key) < TYPO_MIN:  # "ngày" is not "Nga My": a short text is only a suggestion
            good = []
        if good:
            best = good[0][1]
            # Near misses as good as the best are all offered; weaker ones are dropped.
            close = dict.fromkeys(item for item, score in good if best - score < 4)
            result.found = [self._found(item, False) for item in close]
            return result
        seen: set[str] = set()
        for _, score, i in scored:
            if score < SUGGEST:
                break
            for commune in self._found(self._entries[i][1], False).communes:
                if commune.code not in seen:
                    seen.add(commune.code)
                    result.suggestions.append(commune)
        if not result.suggestions:
            top = process.extract(
                key, self._keys, scorer=fuzz.partial_ratio, limit=3, score_cutoff=SUGGEST
            )
            for _, score, i in top:
                if score >= SUGGEST:
                    for commune in self._found(self._entries[i][1], False).communes:
                        if commune.code not in seen:
                            seen.add(commune.code)
                            result.suggestions.append(commune)
        result.suggestions = result.suggestions[:3]
        return result


@lru_cache(maxsize=4)
def _indexed(
    communes: tuple[tuple[str, Commune], ...], legacy: tuple[LegacyUnit, ...]
) -> AreaIndex:
    return AreaIndex(dict(communes), legacy)
