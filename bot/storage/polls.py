"""Dân bàn: polls, their questions and options, and ballots — one per person and poll, answered
anew until it closes."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import (
    Boolean,
    Select,
    String,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement

from bot.storage.cache import LruCache, TtlCache
from bot.storage.contributions import audit
from bot.storage.db import Database, as_utc
from bot.storage.schema import (
    areas,
    contributions,
    poll_ballots,
    poll_choices,
    poll_options,
    poll_questions,
    poll_texts,
    polls,
    subscriptions,
)

MIN_GROUP = 5  # a village with fewer voters is shown inside "khác": no vote can be guessed
DEFINITIONS_KEPT = 512  # polls whose question and options one process keeps in memory
TURNOUT_SECONDS = (
    60.0  # a scope's count of subscribers (the turnout's denominator) is this old at most
)
Outcome = Literal["recorded", "changed", "same", "closed"]
Kind = Literal["one", "many", "text"]  # one answer, several ("chọn nhiều"), typed words
Level = Literal["commune", "village", "province"]  # whom a poll asks
MAX_QUESTIONS, MAX_TEXT = 5, 1000
# What a ballot chose: per question, in order, the positions of its options chosen — or, for
# the free-text question, the words typed ("" for none).
Choices = tuple[tuple[int, ...] | str, ...]


@dataclass(frozen=True)
class Question:
    text: str
    kind: Kind
    options: tuple[str, ...]
    option_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Poll:
    id: int
    commune_code: str  # a province poll's: the province's code
    village: str | None  # None: the whole commune (or province)
    question: str  # the first question's text: the poll's title in lists and digests
    questions: tuple[Question, ...]
    results: str  # after_vote | after_close
    closes_at: datetime
    status: str  # open | closed
    level: Level = "commune"
    province_code: str | None = None

    @property
    def whole_province(self) -> bool:
        """Asked of every commune of the province; its results are broken down by commune."""
        return self.level == "province"

    @property
    def single(self) -> bool:
        """One question of one answer: voted with one press (every poll before 0009)."""
        return len(self.questions) == 1 and self.questions[0].kind == "one"

    @property
    def option_ids(self) -> tuple[int, ...]:
        """Every option's id, question after question: the order of Results.counts."""
        return tuple(i for q in self.questions for i in q.option_ids)

    def chosen(self, option_ids: set[int], texts: dict[int, str] | None = None) -> Choices | None:
        """Those options as positions per question (and the words of a text question); None
        when there are none: no ballot."""
        if not option_ids:
            return None
        return tuple(
            (texts or {}).get(n, "")
            if q.kind == "text"
            else tuple(p for p, i in enumerate(q.option_ids) if i in option_ids)
            for n, q in enumerate(self.questions)
        )

    @property
    def asks_text(self) -> bool:
        return any(q.kind == "text" for q in self.questions)

    def fits(self, choices: Choices) -> bool:
        """An answer to every question: one option of a "one", at least one of a "many",
        words (or none) for the text question."""
        if len(choices) != len(self.questions):
            return False
        for question, chosen in zip(self.questions, choices, strict=True):
            if question.kind == "text" or isinstance(chosen, str):
                if question.kind != "text" or not isinstance(chosen, str):
                    return False
                if len(chosen) > MAX_TEXT:
                    return False
                continue
            if len(set(chosen)) != len(chosen) or not chosen:
                return False
            if question.kind == "one" and len(chosen) != 1:
                return False
            if not all(0 <= n < len(question.options) for n in chosen):
                return False
        return True

    def is_open(self, now: datetime) -> bool:
        return self.status == "open" and now < self.closes_at

    def covers(
        self, commune_code: str | None, village: str | None, province_code: str | None = None
    ) -> bool:
        """Whether someone of that commune (and village, if known; of that province) is of the
        poll's scope."""
        if self.whole_province:
            return commune_code is not None and province_code == self.province_code
        if commune_code != self.commune_code:
            return False
        return self.village is None or village == self.village


@dataclass(frozen=True)
class NewPoll:
    commune_code: str
    village: str | None
    questions: tuple[Question, ...]  # their option_ids are given when stored
    results: str
    closes_at: datetime
    source_key: str  # the official's draft: a replayed confirmation creates nothing twice
    province_code: str | None = None
    whole_province: bool = False  # then commune_code is the province's code, village None

    @property
    def level(self) -> Level:
        if self.whole_province:
            return "province"
        return "commune" if self.village is None else "village"


@dataclass(frozen=True)
class Group:
    """Choices of one village (or of "khác", `village` None: small villages and unknown ones);
    of a province poll, `village` is a commune's code."""

    village: str | None
    counts: tuple[int, ...]  # per option, as Results.counts
    voters: int


@dataclass(frozen=True)
class Results:
    counts: tuple[int, ...]  # per option, question after question (Poll.option_ids)
    groups: tuple[Group, ...]  # by village, none when a breakdown would tell too much
    voters: int  # ballots: a share of an option is of them (a "many" question's add up past 100%)
    subscribers: int = 0  # active subscribers of the poll's scope: turnout is voters ÷ this

    def of(self, poll: Poll, counts: tuple[int, ...] | None = None) -> list[tuple[int, ...]]:
        """These counts (the whole poll's unless given: a group's) question by question."""
        counts = self.counts if counts is None else counts
        out, start = [], 0
        for question in poll.questions:
            out.append(counts[start : start + len(question.option_ids)])
            start += len(question.option_ids)
        return out


@dataclass(frozen=True)
class _Ballot:
    """A vote waiting for the next write: what to store, and who waits for its outcome."""

    poll: Poll
    params: dict[str, Any]
    counted: bool
    done: asyncio.Future[tuple[Outcome, Results | None]]


@dataclass(frozen=True)
class Happened:
    """A poll opened or closed in a digest's period, with its count of voters if closed."""

    poll: Poll
    closed: bool
    voters: int


def lives_in(commune_code: str, village: str) -> ColumnElement[bool]:
    """Subscribers (a condition on `subscriptions`) who live in that village, as far as we know:
    the village of their latest pledge in the commune, as `village_of` finds it for a vote."""
    c, s = contributions, subscriptions
    latest = (
        select(c.c.village)
        .where(
            c.c.channel == s.c.channel,
            c.c.user_id == s.c.user_id,
            c.c.commune_code == commune_code,
            c.c.village.is_not(None),
        )
        .order_by(c.c.id.desc())
        .limit(1)
        .correlate(s)
        .scalar_subquery()
    )
    return latest == village


def communes_of(province_code: Any) -> Select[Any]:
    """The codes of a province's communes of today (a value, or a column to correlate)."""
    return select(areas.c.code).where(
        areas.c.era == "2025", areas.c.level == "commune", areas.c.province_code == province_code
    )


def _in_scope(poll: Poll) -> list[ColumnElement[bool]]:
    s = subscriptions
    if poll.whole_province:
        return [s.c.active.is_(True), s.c.commune_code.in_(communes_of(poll.province_code))]
    where = [s.c.active.is_(True), s.c.commune_code == poll.commune_code]
    if poll.village is not None:
        where.append(lives_in(poll.commune_code, poll.village))
    return where


def merge_small(
    groups: dict[str | None, list[int]],
    voters: dict[str | None, int] | None = None,
    minimum: int = MIN_GROUP,
) -> list[Group]:
    """Villages of fewer than `minimum` voters go into "khác" (None) with the unknown ones; if
    "khác" itself is small but not empty, the smallest village joins it too, until it is big
    enough. A breakdown that would be one group alone says nothing and is dropped. Voters per
    village are the counts' sum unless given (a poll of one single-answer question)."""
    width = len(next(iter(groups.values()), []))
    people = voters if voters is not None else {v: sum(c) for v, c in groups.items()}
    other, other_voters = list(groups.get(None, [0] * width)), people.get(None, 0)
    kept: dict[str, list[int]] = {}
    for village, counts in groups.items():
        if village is None:
            continue
        if people.get(village, 0) < minimum:
            other = [a + b for a, b in zip(other, counts, strict=True)]
            other_voters += people.get(village, 0)
        else:
            kept[village] = counts
    while kept and 0 < other_voters < minimum:
        smallest = min(kept, key=lambda v: (people[v], v))
        other = [a + b for a, b in zip(other, kept.pop(smallest), strict=True)]
        other_voters += people[smallest]
    shown = [Group(v, tuple(c), people[v]) for v, c in sorted(kept.items())]
    if other_voters:
        shown.append(Group(None, tuple(other), other_voters))
    return shown if len(shown) > 1 else []


class PollStore:
    """Polls and votes. A poll's question and options never change once stored, so each process
    keeps them (bounded, by id); whether a poll is open is decided in the vote's own statement,
    never from memory. A scope's count of subscribers is kept `turnout_seconds` at most."""

    def __init__(
        self,
        db: Database,
        *,
        definitions: int = DEFINITIONS_KEPT,
        turnout_seconds: float = TURNOUT_SECONDS,
    ) -> None:
        self._db = db
        self._definitions = LruCache(definitions)
        self._subscribers = TtlCache(turnout_seconds)
        self._ballots: list[_Ballot] = []
        self._writer: asyncio.Task[None] | None = None

    async def create(self, new: NewPoll, actor: str) -> tuple[Poll, bool]:
        """Store the poll and its options (audited); a replay returns the first one and False."""
        now = self._db.clock.utcnow()
        try:
            async with self._db.write() as conn:
                poll_id = (
                    await conn.execute(
                        insert(polls)
                        .values(
                            commune_code=new.commune_code,
                            village=new.village,
                            scope_level=new.level,
                            province_code=new.province_code,
                            question=new.questions[0].text,
                            results=new.results,
                            closes_at=new.closes_at.astimezone(UTC),
                            status="open",
                            created_by=actor,
                            created_at=now,
                            source_key=new.source_key,
                        )
                        .returning(polls.c.id)
                    )
                ).scalar_one()
                await conn.execute(
                    insert(poll_questions),
                    [
                        {"poll_id": poll_id, "position": n, "text": q.text, "kind": q.kind}
                        for n, q in enumerate(new.questions)
                    ],
                )
                options = [(n, text) for n, q in enumerate(new.questions) for text in q.options]
                await conn.execute(
                    insert(poll_options),
                    [
                        {"poll_id": poll_id, "position": i, "question": n, "text": text}
                        for i, (n, text) in enumerate(options)
                    ],
                )
                after = {
                    "commune": new.commune_code,
                    "village": new.village,
                    "level": new.level,
                    "questions": [
                        {"text": q.text, "kind": q.kind, "options": list(q.options)}
                        for q in new.questions
                    ],
                    "results": new.results,
                    "closes_at": new.closes_at.isoformat(),
                }
                await audit(conn, actor, "poll.create", "poll", poll_id, None, after, now)
        except IntegrityError:
            async with self._db.read() as conn:
                earlier = (
                    await conn.execute(
                        select(polls.c.id).where(polls.c.source_key == new.source_key)
                    )
                ).scalar()
            if earlier is None:
                raise
            found = await self.get(int(earlier))
            assert found is not None
            return found, False
        created = await self.get(int(poll_id))
        assert created is not None
        return created, True

    async def get(self, poll_id: int) -> Poll | None:
        """The poll as stored; its `status` may be as old as its first read in this process,
        which is_open() does not mind: a poll closes only once its closing time has passed."""
        kept: Poll | None = self._definitions.get(poll_id)
        if kept is not None:
            return kept
        async with self._db.read() as conn:
            found = await _get(conn, poll_id)
        if found is not None:
            self._definitions.put(poll_id, found)
        return found

    async def for_person(
        self,
        commune_code: str,
        channel: str | None = None,
        user_id: str | None = None,
        province_code: str | None = None,
    ) -> list[tuple[Poll, Choices | None]]:
        """The polls of the commune someone may see (the commune's, their village's — as
        village_of finds it — and their province's), the newest first, each with what they
        chose (if they voted): one statement. Without a person, the commune's own."""
        params = {
            "commune": commune_code,
            "province": province_code,
            "v_channel": channel,
            "v_user": user_id,
        }
        async with self._db.read() as conn:
            rows = (await conn.execute(_FOR_PERSON, params)).all()
        chosen: dict[int, set[int]] = {}
        for poll_id, option_id in rows:
            chosen.setdefault(poll_id, set()).update([option_id] if option_id else [])
        found = []
        for poll_id, option_ids in chosen.items():
            poll = await self.get(poll_id)
            if poll is not None:
                found.append((poll, poll.chosen(option_ids)))
        return found

    async def of_commune(self, commune_code: str, limit: int = 10) -> list[Poll]:
        """The commune's polls, its villages' too, the newest first: what its officials see (a
        province's code: the province polls)."""
        query = (
            select(polls.c.id)
            .where(polls.c.commune_code == commune_code)
            .order_by(polls.c.id.desc())
            .limit(limit)
        )
        async with self._db.read() as conn:
            ids = list((await conn.execute(query)).scalars())
        found = [await self.get(i) for i in ids]
        return [p for p in found if p is not None]

    async def village_of(self, channel: str, user_id: str, commune_code: str) -> str | None:
        """The village someone said they live in: that of their latest pledge in the commune."""
        async with self._db.read() as conn:
            params = {"channel": channel, "user_id": user_id, "commune": commune_code}
            return (await conn.execute(_VILLAGE_OF, params)).scalar()

    async def vote(
        self,
        poll: Poll,
        choices: Choices,
        channel: str,
        user_id: str,
        *,
        counted: bool = False,
        commune: str | None = None,
    ) -> tuple[Outcome, Results | None]:
        """One ballot per person and poll, every question answered (Poll.fits): recorded,
        changed, the same again (a replay: nothing changes) — or refused once the poll has
        closed; with the results after it when `counted` (or when closed), in the same
        transaction.

        The voter's village (of their latest pledge, see village_of) is stored with the ballot
        by the same statement; of a province poll, their `commune` instead. Whether the poll
        is open is read by the write itself (INSERT …
        SELECT … WHERE open; on PostgreSQL FOR SHARE, so a close waits for the vote, and a vote
        after a close sees it), never taken from memory. Votes that arrive while a write is
        under way share the next transaction (group commit, as UserStore's saves), and a poll
        voted in several times in it is counted once."""
        if not poll.fits(choices):
            raise ValueError(f"choices {choices} do not answer poll {poll.id}")
        params = {
            "v_poll": poll.id,
            "v_channel": channel,
            "v_user": user_id,
            "v_commune": commune,
            "v_options": frozenset(
                q.option_ids[n]
                for q, chosen in zip(poll.questions, choices, strict=True)
                if not isinstance(chosen, str)
                for n in chosen
            ),
            "v_texts": {
                n: chosen.strip()
                for n, chosen in enumerate(choices)
                if isinstance(chosen, str) and chosen.strip()
            },
            "v_asks_text": poll.asks_text,
            "v_now": self._db.clock.utcnow().astimezone(UTC),
        }
        done: asyncio.Future[tuple[Outcome, Results | None]]
        done = asyncio.get_running_loop().create_future()
        self._ballots.append(_Ballot(poll, params, counted, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_ballots())
        return await done

    async def _write_ballots(self) -> None:
        while self._ballots:
            batch, self._ballots = self._ballots, []
            try:
                async with self._db.write() as conn:
                    outcomes = await conn.run_sync(_cast_all, [ballot.params for ballot in batch])
                    counts: dict[int, Results] = {}
                    for ballot, outcome in zip(batch, outcomes, strict=True):
                        if (ballot.counted or outcome == "closed") and ballot.poll.id not in counts:
                            counts[ballot.poll.id] = await self._results(conn, ballot.poll)
            except Exception as error:  # each waiting vote fails with it, and says so
                for ballot in batch:
                    if not ballot.done.done():
                        ballot.done.set_exception(error)
            else:
                for ballot, outcome in zip(batch, outcomes, strict=True):
                    if not ballot.done.done():
                        shown = ballot.counted or outcome == "closed"
                        ballot.done.set_result((outcome, counts[ballot.poll.id] if shown else None))

    async def close(self) -> None:
        """Let a write of votes under way finish."""
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)

    async def choice_of(self, poll: Poll, channel: str, user_id: str) -> Choices | None:
        """What someone chose, if they voted."""
        voter = {"v_poll": poll.id, "v_channel": channel, "v_user": user_id}
        async with self._db.read() as conn:
            options = set((await conn.execute(_MY_CHOICES, voter)).scalars())
            texts = dict((await conn.execute(_MY_TEXTS, voter)).all()) if poll.asks_text else {}
        return poll.chosen(options, texts)

    async def texts(self, poll: Poll, offset: int, limit: int) -> tuple[list[str], int]:
        """A page of the poll's free-text answers, oldest first, with no name; and how many
        there are. For the officials of the poll's scope only (handlers check)."""
        t = poll_texts
        async with self._db.read() as conn:
            page = (
                await conn.execute(
                    select(t.c.text)
                    .where(t.c.poll_id == poll.id)
                    .order_by(t.c.id)
                    .offset(offset)
                    .limit(limit)
                )
            ).scalars()
            words = list(page)
            total = (
                await conn.execute(select(func.count()).where(t.c.poll_id == poll.id))
            ).scalar_one()
        return words, int(total)

    async def results(self, poll: Poll) -> Results:
        """Counts per option, by village with small groups merged (see merge_small), and the
        scope's subscribers for the turnout (counted at most `turnout_seconds` ago)."""
        async with self._db.read() as conn:
            return await self._results(conn, poll)

    async def _results(self, conn: AsyncConnection, poll: Poll, *, fresh: bool = False) -> Results:
        key = (poll.commune_code, poll.village)
        subscribers: int | None = None if fresh else self._subscribers.get(key)
        if subscribers is None:
            subscribers = await conn.run_sync(_subscribers, poll)
            self._subscribers.put(key, subscribers)
        return await conn.run_sync(_counts, poll, subscribers)

    async def close_due(self, conn: AsyncConnection, now: datetime) -> list[tuple[Poll, Results]]:
        """Close the polls whose time has come, in the caller's transaction; the ones closed
        here, with their results. The UPDATE is the claim (WHERE closed_at IS NULL): of two
        schedulers at once, only one closes a poll, and only it announces the result."""
        ids = list(
            (
                await conn.execute(
                    update(polls)
                    .where(polls.c.closed_at.is_(None), polls.c.closes_at <= now.astimezone(UTC))
                    .values(status="closed", closed_at=now.astimezone(UTC))
                    .returning(polls.c.id)
                )
            ).scalars()
        )
        closed = []
        for poll_id in sorted(ids):
            poll = await _get(conn, poll_id)
            assert poll is not None
            self._definitions.put(poll_id, poll)
            closed.append((poll, await self._results(conn, poll, fresh=True)))
        return closed

    async def happened(self, commune_code: str, since: datetime) -> list[Happened]:
        """The commune's polls (its own, its villages', its province's) opened or closed since
        then (as a digest's other sections, up to now)."""
        p = polls
        since = since.astimezone(UTC)
        opened = p.c.created_at >= since
        closed = p.c.closed_at.is_not(None) & (p.c.closed_at >= since)
        async with self._db.read() as conn:
            rows = (
                await conn.execute(
                    select(p.c.id, closed.label("closed"))
                    .where(
                        or_(
                            p.c.commune_code == commune_code,
                            p.c.id.in_(_of_province(commune_code)),
                        ),
                        or_(opened, closed),
                    )
                    .order_by(p.c.id)
                )
            ).all()
            out = []
            for row in rows:
                poll = await _get(conn, row.id)
                assert poll is not None
                voters = 0
                if row.closed:
                    voters = int(
                        (
                            await conn.execute(
                                select(func.count()).where(poll_ballots.c.poll_id == poll.id)
                            )
                        ).scalar_one()
                    )
                out.append(Happened(poll, bool(row.closed), voters))
        return out

    async def export(self, commune_codes: Sequence[str] | None) -> list[tuple[Poll, Results]]:
        """Every poll (of these communes), oldest first, with its results: counts, never who."""
        query = select(polls.c.id).order_by(polls.c.id)
        if commune_codes is not None:
            query = query.where(polls.c.commune_code.in_(list(commune_codes)))
        async with self._db.read() as conn:
            out = []
            for poll_id in list((await conn.execute(query)).scalars()):
                poll = await _get(conn, poll_id)
                assert poll is not None
                out.append((poll, await self._results(conn, poll, fresh=True)))
        return out


async def _get(conn: AsyncConnection, poll_id: int) -> Poll | None:
    row = (await conn.execute(_GET, {"poll_id": poll_id})).first()
    if row is None:
        return None
    asked = (await conn.execute(_GET_QUESTIONS, {"poll_id": poll_id})).all()
    options = (await conn.execute(_GET_OPTIONS, {"poll_id": poll_id})).all()
    questions = tuple(
        Question(
            q.text,
            q.kind,
            tuple(o.text for o in options if o.question == q.position),
            tuple(o.id for o in options if o.question == q.position),
        )
        for q in asked
    )
    return Poll(
        row.id,
        row.commune_code,
        row.village,
        row.question,
        questions,
        row.results,
        as_utc(row.closes_at),
        row.status,
        row.scope_level,
        row.province_code,
    )


def _cast_all(conn: Connection, ballots: list[dict[str, Any]]) -> list[Outcome]:
    """The ballots of one write, in order: run as one call of synchronous code (run_sync), so
    SQLAlchemy's asyncio layer switches once for the batch rather than at each statement."""
    return [_cast(conn, params) for params in ballots]


def _cast(conn: Connection, params: dict[str, Any]) -> Outcome:
    """One ballot's statements: the voter's earlier choices, then the upsert that says whether
    the poll was open (a row back) or not (none), then the choices anew if they changed."""
    earlier = set(conn.execute(_MY_CHOICES, params).scalars())
    said = dict(conn.execute(_MY_TEXTS, params).all()) if params["v_asks_text"] else {}
    same = earlier == params["v_options"] and said == params["v_texts"]
    ballot = conn.execute(_VOTE[conn.dialect.name], params | {"v_changed": not same}).first()
    if ballot is None:
        return "closed"
    if same:
        return "same"
    if len(earlier) == 1 and len(params["v_options"]) == 1 and not said and not params["v_texts"]:
        # One choice for another (a one-question poll): moved in place, one statement.
        [option] = params["v_options"]
        moved = {"ballot": ballot.id, "option": option, "village": ballot.village}
        conn.execute(_MOVE_CHOICE, moved)
        return "changed"
    if earlier:
        conn.execute(_FORGET_CHOICES, {"ballot": ballot.id})
        if said:
            conn.execute(_FORGET_TEXTS, {"ballot": ballot.id})
    if params["v_texts"]:
        conn.execute(
            insert(poll_texts),
            [
                {"ballot_id": ballot.id, "poll_id": params["v_poll"], "question": n, "text": words}
                for n, words in params["v_texts"].items()
            ],
        )
    conn.execute(
        insert(poll_choices),
        [
            {
                "ballot_id": ballot.id,
                "poll_id": params["v_poll"],
                "option_id": i,
                "village": ballot.village,
            }
            for i in sorted(params["v_options"])
        ],
    )
    return "changed" if earlier else "recorded"


def _subscribers(conn: Connection, poll: Poll) -> int:
    if poll.level == "commune":
        counted = conn.execute(_SUBSCRIBERS, {"commune": poll.commune_code})
    else:
        counted = conn.execute(select(func.count()).where(*_in_scope(poll)))
    return int(counted.scalar_one())


def _counts(conn: Connection, poll: Poll, subscribers: int) -> Results:
    rows = conn.execute(_COUNTS, {"poll_id": poll.id}).all()
    voters: dict[str | None, int] = {}
    if not poll.single:  # one choice per ballot otherwise: the choices are the voters
        found = conn.execute(_VOTERS, {"poll_id": poll.id}).all()
        voters = {village: int(n) for village, n in found}
    order = {option_id: n for n, option_id in enumerate(poll.option_ids)}
    counts = [0] * len(order)
    groups: dict[str | None, list[int]] = {village: [0] * len(order) for village in voters}
    for village, option_id, n in rows:
        counts[order[option_id]] += int(n)
        groups.setdefault(village, [0] * len(order))[order[option_id]] += int(n)
    if poll.single:
        voters = {village: sum(shares) for village, shares in groups.items()}
    # A village poll has one village: no breakdown to show (a province poll's is by commune).
    breakdown = merge_small(groups, voters) if poll.level != "village" else []
    return Results(tuple(counts), tuple(breakdown), sum(voters.values()), subscribers)


# Built once: SQLAlchemy would otherwise make each one's cache key again at every vote.
_GET = select(polls).where(polls.c.id == bindparam("poll_id"))
_GET_QUESTIONS = (
    select(poll_questions.c.position, poll_questions.c.text, poll_questions.c.kind)
    .where(poll_questions.c.poll_id == bindparam("poll_id"))
    .order_by(poll_questions.c.position)
)
_GET_OPTIONS = (
    select(poll_options.c.id, poll_options.c.question, poll_options.c.text)
    .where(poll_options.c.poll_id == bindparam("poll_id"))
    .order_by(poll_options.c.position)
)
_VILLAGE_OF = (
    select(contributions.c.village)
    .where(
        contributions.c.channel == bindparam("channel"),
        contributions.c.user_id == bindparam("user_id"),
        contributions.c.commune_code == bindparam("commune"),
        contributions.c.village.is_not(None),
    )
    .order_by(contributions.c.id.desc())
    .limit(1)
)
_VOTER_IS = (poll_ballots.c.channel == bindparam("v_channel")) & (
    poll_ballots.c.user_id == bindparam("v_user")
)
_VOTER = (poll_ballots.c.poll_id == bindparam("v_poll")) & _VOTER_IS
_MY_CHOICES = (
    select(poll_choices.c.option_id)
    .select_from(poll_ballots.join(poll_choices, poll_choices.c.ballot_id == poll_ballots.c.id))
    .where(_VOTER)
)
_FORGET_CHOICES = delete(poll_choices).where(poll_choices.c.ballot_id == bindparam("ballot"))
_MOVE_CHOICE = (
    update(poll_choices)
    .where(poll_choices.c.ballot_id == bindparam("ballot"))
    .values(option_id=bindparam("option"), village=bindparam("village"))
)
_MY_TEXTS = (
    select(poll_texts.c.question, poll_texts.c.text)
    .select_from(poll_ballots.join(poll_texts, poll_texts.c.ballot_id == poll_ballots.c.id))
    .where(_VOTER)
)
_FORGET_TEXTS = delete(poll_texts).where(poll_texts.c.ballot_id == bindparam("ballot"))
# The village of the voter's latest pledge in the poll's commune (village_of, as a subquery).
_VOTER_VILLAGE = (
    select(contributions.c.village)
    .where(
        contributions.c.channel == bindparam("v_channel"),
        contributions.c.user_id == bindparam("v_user"),
        contributions.c.commune_code == polls.c.commune_code,
        contributions.c.village.is_not(None),
    )
    .order_by(contributions.c.id.desc())
    .limit(1)
    .correlate(polls)
    .scalar_subquery()
)
_SEEN = (
    select(polls.c.id)
    .where(
        or_(
            (polls.c.commune_code == bindparam("commune"))
            & or_(polls.c.village.is_(None), polls.c.village == _VOTER_VILLAGE),
            (polls.c.scope_level == literal("province"))
            & (polls.c.province_code == bindparam("province")),
        )
    )
    .order_by(polls.c.id.desc())
    .limit(10)
    .subquery()
)
_FOR_PERSON = (
    select(_SEEN.c.id, poll_choices.c.option_id)
    .select_from(
        _SEEN.outerjoin(poll_ballots, (poll_ballots.c.poll_id == _SEEN.c.id) & _VOTER_IS).outerjoin(
            poll_choices, poll_choices.c.ballot_id == poll_ballots.c.id
        )
    )
    .order_by(_SEEN.c.id.desc())
)
_WHEN = polls.c.closes_at.type  # bound times go through the column's type (UTC, SQLite text)
# The vote's one write: a row only while the poll is open, read by this statement.
_BALLOT = (
    select(
        polls.c.id,
        bindparam("v_channel", type_=poll_ballots.c.channel.type),
        bindparam("v_user", type_=poll_ballots.c.user_id.type),
        # The group the ballot is counted in: the voter's village, or commune (province poll).
        case(
            (polls.c.scope_level == literal("province"), bindparam("v_commune", type_=String)),
            else_=_VOTER_VILLAGE,
        ),
        bindparam("v_now", type_=_WHEN),
        bindparam("v_now", type_=_WHEN),
    )
    .where(
        polls.c.id == bindparam("v_poll"),
        polls.c.status == literal("open"),
        polls.c.closes_at > bindparam("v_now", type_=_WHEN),
    )
    .with_for_update(read=True, of=polls)
)
_BALLOT_COLUMNS = ["poll_id", "channel", "user_id", "village", "created_at", "updated_at"]


def _upsert(dialect: Any) -> Any:
    """INSERT … SELECT … ON CONFLICT (voter) DO UPDATE: changed choices date the ballot anew
    (and take the voter's village now); the same again touches nothing. RETURNING says the poll
    was open."""
    statement = dialect.insert(poll_ballots).from_select(_BALLOT_COLUMNS, _BALLOT)
    new, old = statement.excluded, poll_ballots.c
    changed = bindparam("v_changed", type_=Boolean)
    return statement.on_conflict_do_update(
        index_elements=[old.poll_id, old.channel, old.user_id],
        set_={
            "village": case((changed, new.village), else_=old.village),
            "updated_at": case((changed, new.updated_at), else_=old.updated_at),
        },
    ).returning(old.id, old.village)


_VOTE = {"sqlite": _upsert(sqlite_dialect), "postgresql": _upsert(postgresql)}
_COUNTS = (
    select(poll_choices.c.village, poll_choices.c.option_id, func.count())
    .where(poll_choices.c.poll_id == bindparam("poll_id"))
    .group_by(poll_choices.c.village, poll_choices.c.option_id)
)
_VOTERS = (
    select(poll_ballots.c.village, func.count())
    .where(poll_ballots.c.poll_id == bindparam("poll_id"))
    .group_by(poll_ballots.c.village)
)
_SUBSCRIBERS = select(func.count()).where(
    subscriptions.c.active.is_(True), subscriptions.c.commune_code == bindparam("commune")
)


def _of_province(commune_code: str) -> Select[Any]:
    """The province polls of the commune's province (a digest of the commune shows them)."""
    province = select(areas.c.province_code).where(
        areas.c.era == "2025", areas.c.level == "commune", areas.c.code == commune_code
    )
    return select(polls.c.id).where(
        polls.c.scope_level == "province", polls.c.province_code.in_(province)
    )
