"""Finding a commune the way villagers name it: any case, with or without accents, with typos,
by today's name or by the name of the old commune or district it came from."""

from __future__ import annotations

from dataclasses import dataclass, field

from rapidfuzz import fuzz, process

from bot.reference import Commune, LegacyUnit
from bot.text import fold, squash

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


def bare(name: str) -> str:
    """Folded name without its unit type: "Xã Chợ Đồn" → "cho don"."""
    folded = fold(name)
    for prefix in _PREFIXES:
        if folded.startswith(prefix):
            return folded[len(prefix) :]
    return folded


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

    @property
    def communes(self) -> list[Commune]:
        """Every commune found, today's name first, without repeats."""
        return list(dict.fromkeys(c for f in self.found for c in f.communes))

    @property
    def meant(self) -> Commune | None:
        """The commune the user meant, when no other commune of today competes with it:
        one match, or today's commune of that name ahead of old units of the same name."""
        first = self.found[0] if self.found else None
        if first is None or len(first.communes) != 1:
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
        items: list[Commune | LegacyUnit] = [*communes.values(), *legacy]
        for item in items:
            # "Xã Phương Viên" is found as "phuong vien" and as "xa phuong vien".
            for key in dict.fromkeys((squash(bare(item.name)), squash(item.name))):
                self._entries.append((key, item))
        self._keys = [key for key, _ in self._entries]

    def get(self, code: str) -> Commune | None:
        return self._communes.get(code)

    def _found(self, item: Commune | LegacyUnit, exact: bool) -> Found:
        if isinstance(item, Commune):
            return Found((item,), None, exact)
        communes = tuple(self._communes[c] for c in item.successors if c in self._communes)
        return Found(communes, item, exact)

    def search(self, query: str) -> SearchResult:
        keys = {squash(bare(query)), squash(query)} - {""}
        result = SearchResult()
        if not keys:
            return result
        key = squash(bare(query)) or squash(query)
        exact = list(dict.fromkeys(item for k, item in self._entries if k in keys))
        if exact:
            # Today's commune first, then old communes, then old districts of the same name.
            exact.sort(
                key=lambda i: 0 if isinstance(i, Commune) else (1 if i.level == "commune" else 2)
            )
            result.found = [self._found(item, True) for item in exact]
            return result
        scored = process.extract(key, self._keys, scorer=fuzz.ratio, limit=MAX_CHOICES * 2)
        good = [(self._entries[i][1], score) for _, score, i in scored if score >= ACCEPT]
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
            top = process.extract(key, self._keys, scorer=fuzz.partial_ratio, limit=3)
            for _, score, i in top:
                if score >= SUGGEST:
                    for commune in self._found(self._entries[i][1], False).communes:
                        if commune.code not in seen:
                            seen.add(commune.code)
                            result.suggestions.append(commune)
        result.suggestions = result.suggestions[:3]
        return result
