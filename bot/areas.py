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
MAX_CHOICES = 8


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
    def single(self) -> Commune | None:
        """The one commune meant, when there is no doubt."""
        if len(self.found) == 1 and len(self.found[0].communes) == 1:
            return self.found[0].communes[0]
        return None


class AreaIndex:
    """Search within one province: current communes first, then old communes and districts."""

    def __init__(self, communes: dict[str, Commune], legacy: tuple[LegacyUnit, ...]) -> None:
        self._communes = communes
        self._entries: list[tuple[str, Commune | LegacyUnit]] = []
        for commune in communes.values():
            self._entries.append((squash(bare(commune.name)), commune))
        for unit in legacy:
            self._entries.append((squash(bare(unit.name)), unit))
        self._keys = [key for key, _ in self._entries]

    def get(self, code: str) -> Commune | None:
        return self._communes.get(code)

    def _found(self, item: Commune | LegacyUnit, exact: bool) -> Found:
        if isinstance(item, Commune):
            return Found((item,), None, exact)
        communes = tuple(self._communes[c] for c in item.successors if c in self._communes)
        return Found(communes, item, exact)

    def search(self, query: str) -> SearchResult:
        key = squash(bare(query))
        result = SearchResult()
        if not key:
            return result
        exact = [item for k, item in self._entries if k == key]
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
            # A clear winner is taken as meant, but confirmed; close runners-up become choices.
            close = [item for item, score in good if best - score < 4]
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
