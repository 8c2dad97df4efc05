"""Dân biết: the commune's status card against the criteria set in force, and each criterion."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.content.reference import Commune, CriteriaSet, Criterion, localized
from bot.core.conversation import Button, Context, Payload, Reply, Router, StalePayload
from bot.domain.amounts import spelled_number
from bot.domain.i18n import N_, _, current_locale
from bot.domain.quantities import spell
from bot.domain.text import fold
from handlers.common import ask_commune
from handlers.menu import main_menu

router = Router("status")

CRITERION_WORDS = ("tieu chi", "tieuchi", "chi tieu", "criterion", "criteria")
_NUMBER = re.compile(
    r"\b(?:tieu chi|tieuchi|tc|criterion|criteria)\s*(?:so\s*|number\s*|no\s*)?(\d{1,2})(?!\d)"
)
# "tieu chi so hai", "tieu chi thu hai", "tieu chi hai": the number in words (amounts' reader).
_IN_WORDS = re.compile(r"\b(?:tieu chi|tieuchi|tc)\s+(?:(so)\s+|(thu)\s+)?(?=[a-z])")
_NOT_A_NUMBER_AFTER = ("nay", "day", "qua", "truoc", "toi")  # "tiêu chí năm nay", "… sau đây"


def _number_in(folded: str, in_words: bool) -> int | None:
    """The criterion's number, in digits ("tieu chi 2", "tc so 2") or, `in_words`, in words
    ("tieu chi so hai", "tieu chi thu tu", "tieu chi hai ko dat")."""
    number = _NUMBER.search(folded)
    if number or not in_words:
        return int(number.group(1)) if number else None
    for said in _IN_WORDS.finditer(folded):
        rest = folded[said.end() :]
        value = spelled_number(rest, ordinal=said.group(2) is not None)
        words = rest.split()
        plain = said.group(1) is None and said.group(2) is None
        if value is None or (plain and len(words) > 1 and words[1] in _NOT_A_NUMBER_AFTER):
            continue
        return value
    return None


def current_set(ctx: Context) -> CriteriaSet:
    return ctx.services.reference.set_in_force(ctx.services.today())


def find_criterion(folded: str, cset: CriteriaSet, in_words: bool = True) -> Criterion | None:
    """ "tieu chi 2", "tieu chi so hai", "tieu chi giao thong", or a criterion's keyword on
    its own. Numbers in words only as typed (`in_words`): the matcher's reading drops "nay"
    from "tieu chi nam nay", leaving a fifth criterion."""
    number = _number_in(folded, in_words)
    if number is not None:
        return cset.criterion(number)
    mentions = any(word in folded for word in CRITERION_WORDS)
    padded = f" {folded} "
    hits = sorted(
        (
            (len(k), c)
            for c in cset.criteria
            for k in c.keywords
            if (mentions and f" {k} " in padded) or k == folded
        ),
        key=lambda hit: -hit[0],
    )
    return hits[0][1] if hits else None


@dataclass(frozen=True)
class PickCriterion(Payload, prefix="status:crit"):
    number: int


@dataclass(frozen=True)
class OtherCriterion(Payload, prefix="status:ocrit"):
    """A criterion under the card of a commune the question named, not the user's own."""

    number: int
    commune: str


@dataclass(frozen=True)
class Dispute(Payload, prefix="report:dispute"):
    """ "Tôi thấy tiêu chí này chưa đạt" under a criterion shown as met (handlers/reports.py)."""

    number: int


def pressed_criterion(ctx: Context, cset: CriteriaSet) -> Criterion:
    """The criterion a button names (its payload's number); stale if the set has none."""
    criterion = cset.criterion(ctx.payload.number)
    if criterion is None:
        raise StalePayload(f"no criterion {ctx.payload.number} in {cset.id}")
    return criterion


def _as_read(ctx: Context) -> str:
    """The text as the matcher reads it: folded, teencode expanded ("tc 3", "tieu chj")."""
    return " ".join(ctx.services.understanding.words(ctx.text))


def _names_a_criterion(ctx: Context) -> float | None:
    """ "tiêu chí 2", "tc 3", "tiêu chí giao thông", "criterion 5": one criterion, by code."""
    cset = current_set(ctx)
    folded = fold(ctx.text)
    criterion = find_criterion(folded, cset)
    if criterion is None:  # "tieu chj moi truong": as the matcher reads it
        folded = _as_read(ctx)
        criterion = find_criterion(folded, cset, in_words=False)
    if criterion is None:
        return None
    return 97.0 if _NUMBER.search(folded) or any(w in folded for w in CRITERION_WORDS) else 88.0


def _criterion_buttons(criteria: list[Criterion], other: str | None = None) -> list[list[Button]]:
    """A button per criterion; under another commune's card (`other`), that commune's."""
    return [
        [
            Button(
                OtherCriterion(c.number, other).pack() if other else PickCriterion(c.number).pack(),
                _("Tiêu chí {number}: {name}").format(number=c.number, name=localized(c.name)),
            )
        ]
        for c in criteria
    ]


def _named_commune(ctx: Context) -> Commune | None:
    """A commune named in the question ("xã Na Rì đạt bao nhiêu tiêu chí"), exactly."""
    if ctx.event.button is not None or ctx.text.startswith("/"):
        return None
    return ctx.services.areas.named_in(ctx.text)


@router.command("tiendo", "status", description=N_("Xem xã đạt bao nhiêu tiêu chí"))
@router.button("status:card")
@router.intent("status")
async def status_card(ctx: Context) -> Reply:
    """The commune's status: criteria met, title, what is missing, how it compares. A commune
    named in the question is shown instead of the user's own (which stays as it is)."""
    services = ctx.services
    reference = services.reference
    commune = _named_commune(ctx) or services.areas.get(ctx.user.commune_code or "")
    if commune is None:
        return ask_commune(ctx, then="status:card")
    cset = current_set(ctx)
    if commune.kind != "xa":
        # Wards and special zones are not in the NTM programme: no title is ever shown.
        return Reply(
            services.renderer.render("status_ward.txt", commune=commune, cset=cset), main_menu()
        )
    status = await services.statuses.commune(cset.id, commune.code)
    if not status.criteria:
        return Reply(
            services.renderer.render("status_empty.txt", commune=commune, cset=cset),
            main_menu(),
        )
    rural = [code for code, c in reference.communes.items() if c.kind == "xa"]
    counts = await services.statuses.met_counts(cset.id, rural)
    tally = await services.contributions.tally(commune_code=commune.code)
    given = ", ".join(
        [
            spell(kind, tally.totals[kind], compact=True)
            for kind in ("workdays", "money", "land")
            if tally.totals.get(kind)
        ]
        + [spell("materials", n, unit, what) for (unit, what), n in sorted(tally.materials.items())]
    )

    def card() -> Reply:
        met = len(status.met)
        not_met = [
            c
            for c in cset.criteria
            if c.number in status.criteria and not status.criteria[c.number].met
        ]
        text = services.renderer.render(
            "status_card.txt",
            commune=commune,
            province=reference.province_name,
            cset=cset,
            met=met,
            total=len(cset.criteria),
            title=cset.title_name(status.title.title if status.title else "chua_dat"),
            title_entry=status.title,
            not_met=not_met,
            no_data=[c for c in cset.criteria if c.number not in status.criteria],
            latest=status.latest,
            sample=status.is_sample,
            average=sum(counts.values()) / len(counts),
            rank=1 + sum(1 for n in counts.values() if n > met),
            ranked=len(counts),
            given=given,
            households=tally.households,
        )
        other = commune.code if commune.code != ctx.user.commune_code else None
        buttons = _criterion_buttons(not_met[:6], other)
        buttons.append(
            [Button("status:list", _("Tất cả tiêu chí")), Button("menu:main", _("Menu"))]
        )
        return Reply(text, buttons)

    # Every villager of a commune gets the same card: render it once per language.
    mine = commune.code == ctx.user.commune_code
    key = ("card", cset.id, commune.code, str(mine), current_locale(), given, str(tally.households))
    cached = services.statuses.memo(key, card)
    return Reply(cached.text, [list(row) for row in cached.buttons])


@router.button("status:list")
@router.intent("criteria_list")
async def criteria_list(ctx: Context) -> Reply:
    """Every criterion of the set in force, marked for the user's commune where known."""
    services = ctx.services
    cset = current_set(ctx)
    commune = services.areas.get(ctx.user.commune_code or "")
    status = await services.statuses.commune(cset.id, commune.code) if commune else None
    text = services.renderer.render("criteria_list.txt", cset=cset, commune=commune, status=status)
    return Reply(text, _criterion_buttons(list(cset.criteria)))


@router.command("tieuchi", "criterion", description=N_("Xem một tiêu chí, ví dụ /tieuchi 2"))
@router.button(PickCriterion)
@router.button(OtherCriterion)
@router.intent("criterion", recognize=_names_a_criterion)
async def criterion_card(ctx: Context) -> Reply:
    """One criterion: met or not for the commune, its indicators and figures where known."""
    services = ctx.services
    cset = current_set(ctx)
    criterion: Criterion | None
    if ctx.payload is not None:
        criterion = pressed_criterion(ctx, cset)
    else:
        # "/tieuchi 2" and "/tieuchi giao thong" read as "tieu chi …"; free text as typed.
        query = "tieu chi " + fold(" ".join(ctx.args)) if ctx.args else fold(ctx.text)
        criterion = find_criterion(query, cset) or find_criterion(_as_read(ctx), cset)
        if criterion is None:
            return await criteria_list(ctx)
    shown = ctx.payload.commune if isinstance(ctx.payload, OtherCriterion) else None
    commune = services.areas.get(shown or ctx.user.commune_code or "")
    if shown and commune is None:
        raise StalePayload(f"criterion of {shown!r}")
    status = await services.statuses.commune(cset.id, commune.code) if commune else None
    text = services.renderer.render(
        "criterion.txt",
        cset=cset,
        criterion=criterion,
        commune=commune,
        entry=status.criteria.get(criterion.number) if status else None,
        indicators=status.indicators if status else {},
    )
    rows = [
        [Button("status:card", _("Tiến độ của xã")), Button("status:list", _("Tất cả tiêu chí"))]
    ]
    entry = status.criteria.get(criterion.number) if status else None
    if entry is not None and entry.met and not shown:  # dân kiểm tra: of their own commune
        rows.insert(
            0, [Button(Dispute(criterion.number).pack(), _("Tôi thấy tiêu chí này chưa đạt"))]
        )
    return Reply(text, rows)
