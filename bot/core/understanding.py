"""What a villager means: typed text → an intent, from example phrases kept as data.

The examples live in `content/intents.toml` (and the FAQ's keywords in `content/faq.toml`), in
Vietnamese and English. Text and examples go through the same normalisation:

1. fold (case, accents, đ → d, punctuation), except that a word whose folded form means several
   things keeps the marks it was typed with: "Đúng" (yes), "dừng" (stop) and "Dũng" (a name)
   all fold to "dung", so typed with marks they stay apart; typed bare, the context decides;
2. teencode and abbreviations expanded ("ko" → "khong", "dc" → "duoc", "bn" → "bao nhieu");
3. politeness dropped ("dạ", "ạ", "ơi", "nhé", "bot ơi");
4. a word one typo away from a word of the examples is read as that word ("tieu chj").

An example matches the whole text when they are alike (`similar`, rapidfuzz's ratio), or, if it
has two words or more, when it stands in the text as it is (`contains`); an intent's `keywords`
match wherever they stand. The best score wins; a longer example beats a shorter one. A question
("ai …", "bao nhiêu", "… không?") never starts an action: it goes to an answer or nowhere.
`explain(text)` says why a phrase went where it went.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from bot.domain.paths import CONTENT_DIR
from bot.domain.text import fold, is_syllable

INTENTS_FILE = CONTENT_DIR / "intents.toml"
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
SIMILAR = 84  # ratio from which a whole text is taken for an example
YES_EMOJI = {"👍", "👌", "✅", "🆗"}
TYPO_MIN = 5  # words shorter than this are never corrected, nor Vietnamese syllables


def marks(word: str) -> str:
    """The marks a word was typed with ("đúng" → "đ\u0301"), order-free; "" for none."""
    decomposed = unicodedata.normalize("NFD", word.casefold())
    found = sorted(ch for ch in decomposed if unicodedata.combining(ch))
    return ("đ" if "đ" in decomposed else "") + "".join(found)


@dataclass(frozen=True)
class Example:
    intent: str
    text: str  # as written in the data
    words: tuple[str, ...]  # normalised
    keyword: bool = False  # matches wherever it stands
    plain: tuple[str, ...] = ()  # normalised with politeness kept, to check destructive ones
    bases: frozenset[str] = frozenset()  # its words without marks: a cheap first check

    @property
    def key(self) -> str:
        return " ".join(self.words)


@dataclass(frozen=True)
class Match:
    """Where a text went, and why."""

    intent: str
    score: float
    example: str
    how: str  # exact | contains | similar | emoji

    def __str__(self) -> str:
        return f"{self.intent} ({self.how} “{self.example}”, {self.score:.0f})"


@dataclass
class Intent:
    name: str
    kind: str  # answer | action | destructive | none
    examples: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)


class Understanding:
    """The intents and the words that carry them, ready to match."""

    def __init__(
        self,
        intents: Iterable[Intent],
        teencode: dict[str, str],
        fillers: Iterable[str],
        ambiguous: Iterable[str],
        questions: Iterable[str],
        question_ends: Iterable[str],
        emoji: dict[str, str],
        answers: dict[str, list[str]] | None = None,
    ) -> None:
        self.intents = {i.name: i for i in intents}
        self._last_match: tuple[str, Match | None] | None = None  # see match
        self.teencode = {k: tuple(v.split()) for k, v in teencode.items()}
        self.fillers = set(fillers)
        self.ambiguous = set(ambiguous)
        self.emoji = emoji
        self.examples: list[Example] = []
        self.problems: list[str] = []  # data that cannot work as written (a test reads it)
        for intent in self.intents.values():
            for text in intent.examples:
                words = self._normalise(text, correct=False)
                plain = self._normalise(text, correct=False, fillers=False)
                self._add(Example(intent.name, text, words, plain=plain))
            for text in intent.keywords:
                # Keywords are written folded: an ambiguous word in them stands for any marks.
                words = tuple(
                    f"{w}~*" if w in self.ambiguous else w
                    for w in self._normalise(text, correct=False)
                )
                self._add(Example(intent.name, text, words, True))
        self.vocabulary = sorted({_base(w) for e in self.examples for w in e.words})
        self._known = set(self.vocabulary)
        self._keys = [" ".join(_base(w) for w in e.words) for e in self.examples]
        self._by_word: dict[str, list[int]] = {}
        for index, example in enumerate(self.examples):
            for word in {_base(w) for w in example.words}:
                self._by_word.setdefault(word, []).append(index)
        # Question phrases keep their small words: "thế nào", "sao vậy" are not "nào", "sao".
        self.questions = [self._normalise(q, correct=False, fillers=False) for q in questions]
        self.question_ends = {
            w for q in question_ends for w in self._normalise(q, correct=False, fillers=False)
        }
        self.answers = {
            word: answer
            for answer, phrases in (answers or {}).items()
            for phrase in phrases
            for word in {self._plain(phrase), " ".join(self._normalise(phrase, correct=False))}
            if word
        }

    def _add(self, example: Example) -> None:
        example = replace(example, bases=frozenset(_base(w) for w in example.words))
        written = len(fold(example.text).split())
        if example.keyword and written > 1 and len(example.words) < 2:
            # "muốn góp" would be the bare word "góp" once politeness is dropped.
            self.problems.append(f"{example.intent}: keyword {example.text!r} is one word")
            return
        if example.words:
            self.examples.append(example)

    @classmethod
    def load(
        cls,
        path: Path = INTENTS_FILE,
        faq: Iterable[tuple[str, Iterable[str]]] = (),
        translators: Iterable[Callable[[str], str]] = (),
    ) -> Understanding:
        """The intents of a file, the FAQ's keywords, and each button label in every language.

        Compiled once per process for the same data (about 20 ms): services built again — a
        worker's restart, each test — share it. Nothing changes it once built (the last answer
        it keeps is that of the same text)."""
        faq = tuple((entry, tuple(words)) for entry, words in faq)
        return _compiled(path.read_text(encoding="utf-8"), faq, tuple(translators))

    # --- normalising -----------------------------------------------------------------------

    def _plain(self, text: str) -> str:
        """Folded words, ambiguous ones with their marks, fillers kept: for short answers."""
        return " ".join(self._normalise(text, correct=False, fillers=False))

    def _normalise(self, text: str, correct: bool = True, fillers: bool = True) -> tuple[str, ...]:
        folded = fold(text).split()
        if self.ambiguous.isdisjoint(folded) and _BROKEN not in folded:
            words: list[str] = []
            for part in folded:
                words.extend(self.teencode.get(part, (part,)))
        else:
            words = self._with_marks(text)
        if fillers:
            words = [w for w in words if w not in self.fillers]
        if correct:
            words = [self._correct(w) for w in words]
        return tuple(words)

    def _with_marks(self, text: str) -> list[str]:
        """Word by word, keeping the marks of the ambiguous ones ("đúng" → "dung~…")."""
        words: list[str] = []
        raws = _WORD.findall(text)
        parts = [(raw, part) for raw in raws for part in fold(raw).split()]
        for i, (raw, part) in enumerate(parts):
            if part in self.ambiguous:
                typed = marks(raw)
                words.append(f"{part}~{typed}" if typed else part)
            elif part == _BROKEN and _broken(parts, i):
                words.append(part)  # "hỏng", "bi hong": broken, not "hông" (không)
            else:
                words.extend(self.teencode.get(part, (part,)))
        return words

    def _correct(self, word: str) -> str:
        if word in self._known or len(word) < TYPO_MIN or "~" in word or not word.isalpha():
            return word
        if is_syllable(word):
            return word  # "trieu", "hoan": a real word, never another one
        found = process.extractOne(
            word, self.vocabulary, scorer=OSA.distance, score_cutoff=1, processor=None
        )
        return found[0] if found is not None else word

    def words(self, text: str) -> tuple[str, ...]:
        """The normalised words of a text, as the matcher sees them."""
        return self._normalise(text)

    def is_question(self, text: str) -> bool:
        """Asks something: a question mark, a question word, or "… không/chưa" at the end.

        "… được không" asks for something to be done, not for information: not a question."""
        words = self._normalise(text, fillers=False)
        while words and words[-1] in self.fillers:
            words = words[:-1]  # "… không ạ?", "… chưa nhỉ"
        if words[-2:] == ("duoc", "khong"):
            return False
        if "?" in text:
            return True
        if words and words[-1] in self.question_ends and len(words) > 1:
            return True
        present = set(words)
        return any(q and set(q) <= present and _contains(words, q) for q in self.questions)

    # --- matching --------------------------------------------------------------------------

    def candidates(self, text: str) -> list[Match]:
        """Every intent the text could mean, best first (one match per intent)."""
        stripped = text.strip()
        if stripped in self.emoji:
            return [Match(self.emoji[stripped], 100.0, stripped, "emoji")]
        words = self._normalise(text)
        if not words:
            # Only politeness ("dạ", "ad ơi", "bot ơi"): someone calling for attention.
            called = _WORD.search(text) is not None
            return (
                [Match("greeting", 90.0, text, "filler")]
                if called and "greeting" in self.intents
                else []
            )
        key = " ".join(_base(w) for w in words)
        best: dict[str, tuple[float, int, Match]] = {}

        def offer(example: Example, score: float, how: str) -> None:
            rank = (score, len(example.words))
            held = best.get(example.intent)
            if held is None or rank > held[:2]:
                match = Match(example.intent, score, example.text, how)
                best[example.intent] = (score, len(example.words), match)

        seen: set[int] = set()
        bases = {_base(w) for w in words}
        for word in bases:
            for index in self._by_word.get(word, ()):
                if index in seen:
                    continue
                seen.add(index)
                example = self.examples[index]
                if not example.bases <= bases:
                    continue
                if len(example.words) == len(words) and _contains(words, example.words):
                    offer(example, 100.0, "exact")
                    continue
                covered = len(example.words) / len(words)
                if (example.keyword or (len(example.words) >= 2 and covered >= 0.5)) and _contains(
                    words, example.words
                ):
                    offer(example, 86.0 + 10.0 * covered, "contains")
        for _found, score, index in process.extract(
            key, self._keys, scorer=fuzz.ratio, score_cutoff=SIMILAR, limit=8
        ):
            example = self.examples[index]
            if score < 100 and _compatible(words, example.words):
                offer(example, float(score), "similar")
        order = [name for name in self.intents if self.intents[name].kind == "none"]
        order += [name for name in self.intents if name not in order]
        return [
            m
            for _s, _n, m in sorted(
                best.values(), key=lambda held: (-held[0], -held[1], order.index(held[2].intent))
            )
        ]

    def match(self, text: str) -> Match | None:
        """The intent a text means, or None. A question never reaches an action, and a
        destructive intent only a clear request that nothing gentler explains as well.

        The last answer is kept: the dispatcher asks of the same text twice in one update
        (whether typed words are a request before taking part of a button's label, then which
        one), and each answer costs about 75 µs."""
        last = self._last_match
        if last is not None and last[0] == text:
            return last[1]
        found = self._match(text)
        self._last_match = (text, found)
        return found

    def _match(self, text: str) -> Match | None:
        question = self.is_question(text)
        found_all = self.candidates(text)
        for found in found_all:
            kind = self.intents[found.intent].kind
            if question and kind in ("action", "destructive"):
                continue
            if kind == "destructive" and not self._clearly(text, found):
                continue
            if kind == "destructive" and any(
                self.kind(other.intent) not in ("destructive", "none")
                and other.score >= found.score - 5
                for other in found_all
                if other is not found
            ):
                continue  # "tắt thông báo tỉnh" is a setting, not "stop everything"
            if kind == "faq" and not question and found.score < 92:
                continue  # an FAQ answers a question, or a text that is mostly its keyword
            return found
        return None

    def _clearly(self, text: str, found: Match) -> bool:
        """A destructive intent needs the words as typed, politeness included, to say it:
        "dung" is stop, "dung roi" (đúng rồi) is not, though "rồi" alone is only politeness."""
        if found.score < 90:
            return False
        typed = self._normalise(text, fillers=False)
        for example in self.examples:
            if example.intent != found.intent or not example.plain:
                continue
            if len(example.plain) == len(typed) and _contains(typed, example.plain):
                return True
            if len(example.plain) >= 2 and _contains(typed, example.plain):
                if len(example.plain) / len(typed) >= 0.5:
                    return True
                continue
            plain_key = " ".join(_base(w) for w in example.plain)
            typed_key = " ".join(_base(w) for w in typed)
            if _compatible(typed, example.plain) and fuzz.ratio(typed_key, plain_key) >= 90:
                return True
        return False

    def explain(self, text: str) -> str:
        """Why a text goes where it goes, for tests and for `chungsuc explain`."""
        words = " ".join(self._normalise(text))
        found = self.match(text)
        others = ", ".join(str(m) for m in self.candidates(text)[:4])
        question = " (a question)" if self.is_question(text) else ""
        return f"{text!r} → [{words}]{question} → {found or 'nothing'}; candidates: {others}"

    def yes_no(self, text: str) -> str | None:
        """ "yes" or "no" when the whole text is one of those answers ("đúng rồi", "ko ạ")."""
        if text.strip() in YES_EMOJI:
            return "yes"
        plain = self._normalise(text, correct=False, fillers=False)
        found = self.answers.get(" ".join(plain)) or self.answers.get(
            " ".join(self._normalise(text, correct=False))
        )
        if found is None and any("~" in w and "đ" not in w for w in plain):
            # "Dúng": a "D" typed for "Đ", the tone still saying which word it is (see _same)
            slipped = [f"{w.replace('~', '~đ', 1)}" if "~" in w else w for w in plain]
            found = self.answers.get(" ".join(slipped))
        return found

    def bare_ambiguous(self, text: str) -> bool:
        """Whether the text holds a word typed without the marks that tell its meanings apart
        ("dung": đúng, dừng or Dũng?)."""
        return any(w in self.ambiguous for w in self._normalise(text, correct=False))

    def same_marks(self, typed: str, label: str) -> bool:
        """Whether no ambiguous word of the typed text has other marks than in the label."""
        if typed.isascii():
            return True  # typed bare, a word may stand for any of its marks
        return _compatible(
            self._normalise(typed, correct=False, fillers=False),
            self._normalise(label, correct=False, fillers=False),
        )

    def leaving(self, text: str) -> bool:
        """Whether the whole text is a request to stop or leave ("hủy", "thoát", "menu",
        "dừng lại"): an example of a destructive intent, word for word."""
        found = self.match(text)
        return (
            found is not None and found.how == "exact" and self.kind(found.intent) == "destructive"
        )

    def kind(self, intent: str) -> str:
        return self.intents[intent].kind if intent in self.intents else "answer"


# "hong" is teencode for "không" ("hông"), and "hỏng" (broken) typed plain: "đèn đường hỏng rồi"
# was a question ("… không?") and reported nothing.
_BROKEN = "hong"
_BROKEN_AFTER = {"bi", "da", "lai", "hu", "deu", "bao"}  # "bị hỏng", "đã hỏng", "báo hỏng"
_BROKEN_BEFORE = {"roi", "het", "mat", "nang", "lau", "hoc", "hoan"}  # "hỏng rồi", "hỏng hết"


def _broken(parts: list[tuple[str, str]], i: int) -> bool:
    """Whether "hong" at `i` is "hỏng": typed with its hook, or plain where broken is meant."""
    raw = parts[i][0]
    if "\u0309" in marks(raw):
        return True
    if not raw.isascii():
        return False  # "hông": không
    before = parts[i - 1][1] if i > 0 else ""
    after = parts[i + 1][1] if i + 1 < len(parts) else ""
    return before in _BROKEN_AFTER or after in _BROKEN_BEFORE


@lru_cache(maxsize=4)
def _compiled(
    text: str,
    faq: tuple[tuple[str, tuple[str, ...]], ...],
    translators: tuple[Callable[[str], str], ...],
) -> Understanding:
    """The understanding of an intents file's `text` (see Understanding.load)."""
    data = tomllib.loads(text)
    intents = [
        Intent(
            name,
            spec.get("kind", "answer"),
            [
                *spec.get("vi", []),
                *spec.get("en", []),
                *spec.get("labels", []),
                *(t(label) for label in spec.get("labels", []) for t in translators),
            ],
            list(spec.get("keywords", [])),
        )
        for name, spec in data["intent"].items()
    ]
    intents += [Intent(f"faq:{entry}", "faq", [], list(words)) for entry, words in faq]
    words = data["words"]
    return Understanding(
        intents,
        teencode=data["teencode"],
        fillers=words["fillers"],
        ambiguous=words["ambiguous"],
        questions=words["questions"],
        question_ends=words["question_ends"],
        emoji=data.get("emoji", {}),
        answers=data.get("answers", {}),
    )


def _base(word: str) -> str:
    return word.split("~", 1)[0]


def _same(typed: str, written: str) -> bool:
    """A typed word against an example's: an ambiguous word typed bare matches any marks; typed
    with marks, only the same marks (or an example that stands for any, "~*")."""
    if typed == written:
        return True
    if "~" not in written:
        return False
    base, written_marks = written.split("~", 1)
    if (written_marks == "*" and _base(typed) == base) or typed == base:
        return True
    # A "D" typed for "Đ" is a slip of the keyboard; the tone marks still tell the meanings
    # apart ("Dúng" is "đúng", yes — never "dừng" or "Dũng").
    typed_base, _, typed_marks = typed.partition("~")
    return (
        typed_base == base
        and "đ" not in typed_marks
        and bool(typed_marks)
        and typed_marks == written_marks.replace("đ", "")
    )


def _compatible(typed: tuple[str, ...], written: tuple[str, ...]) -> bool:
    """No ambiguous word is read against other marks ("Đúng" is never the example "dừng")."""
    for word in typed:
        if "~" in word:
            alike = [w for w in written if _base(w) == _base(word)]
            if alike and not any(_same(word, w) for w in alike):
                return False
    return True


def _contains(words: tuple[str, ...], part: tuple[str, ...]) -> bool:
    """Whether `part` stands in `words` as a run of consecutive words."""
    n = len(part)
    if n > len(words):
        return False
    if not any("~" in w for w in part) and not any("~" in w for w in words):
        return any(words[i : i + n] == part for i in range(len(words) - n + 1))
    return any(
        all(_same(words[i + j], part[j]) for j in range(n)) for i in range(len(words) - n + 1)
    )
