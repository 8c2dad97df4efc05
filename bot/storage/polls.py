"""Dân bàn: polls, their options and votes — one per person and poll, changeable until it closes."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import bindparam, case, func, insert, literal, or_, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement

from bot.storage.cache import LruCache, TtlCache
from bot.storage.contributions import audit
from bot.storage.db import Database, as_utc
from bot.storage.schema import contributions, poll_options, poll_votes, polls, subscriptions

MIN_GROUP = 5  # a village with fewer voters is shown inside "khác": no vote can be guessed
DEFINITIONS_KEPT = 512  # polls whose question and options one process keeps in memory
TURNOUT_SECONDS = (
    60.0  # a scope's count of subscribers (the turnout's denominator) is this old at most
)
Outcome = Literal["recorded", "changed", "same", "closed"]


@dataclass(frozen=True)
class Poll:
    id: int
    commune_code: str
    village: str | None  # None: the whole commune
    question: str
    options: tuple[str, ...]
    option_ids: tuple[int, ...]
    results: str  # after_vote | after_close
    closes_at: datetime
    status: str  # open | closed

    def is_open(self, now: datetime) -> bool:
        return self.status == "open" and now < self.closes_at

    def covers(self, commune_code: str | None, village: str | None) -> bool:
        """Whether someone of that commune (and village, if known) is of the poll's scope."""
        if commune_code != self.commune_code:
            return False
        return self.village is None or village == self.village


@dataclass(frozen=True)
class NewPoll:
    commune_code: str
    village: str | None
    question: str
    options: tuple[str, ...]
    results: str
    closes_at: datetime
    source_key: str  # the official's draft: a replayed confirmation creates nothing twice


@dataclass(frozen=True)
class Group:
    """Votes of one village (or of "khác", `village` None: small villages and unknown ones)."""

    village: str | None
    counts: tuple[int, ...]

    @property
    def total(self) -> int:
        return sum(self.counts)


@dataclass(frozen=True)
class Results:
    counts: tuple[int, ...]  # per option, in the poll's order
    groups: tuple[Group, ...]  # by village, none when a breakdown would tell too much
    subscribers: int = 0  # active subscribers of the poll's scope: turnout is total ÷ this

    @property
    def total(self) -> int:
        return sum(self.counts)


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


def _in_scope(poll: Poll) -> list[ColumnElement[bool]]:
    s = subscriptions
    where = [s.c.active.is_(True), s.c.commune_code == poll.commune_code]
    if poll.village is not None:
        where.append(lives_in(poll.commune_code, poll.village))
    return where


def merge_small(groups: dict[str | None, list[int]], minimum: int = MIN_GROUP) -> list[Group]:
    """Villages of fewer than `minimum` voters go into "khác" (None) with the unknown ones; if
    "khác" itself is small but not empty, the smallest village joins it too, until it is big
    enough. A breakdown that would be one group alone says nothing and is dropped."""
    width = len(next(iter(groups.values()), []))
    other = list(groups.get(None, [0] * width))
    kept: dict[str, list[int]] = {}
    for village, counts in groups.items():
        if village is None:
            continue
        if sum(counts) < minimum:
            other = [a + b for a, b in zip(other, counts, strict=True)]
        else:
            kept[village] = counts
    while kept and 0 < sum(other) < minimum:
        smallest = min(kept, key=lambda v: (sum(kept[v]), v))
        other = [a + b for a, b in zip(other, kept.pop(smallest), strict=True)]
    shown = [Group(v, tuple(c)) for v, c in sorted(kept.items())]
    if sum(other):
        shown.append(Group(None, tuple(other)))
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
                            question=new.question,
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
                    insert(poll_options),
                    [
                        {"poll_id": poll_id, "position": i, "text": text}
                        for i, text in enumerate(new.options)
                    ],
                )
                after = {
                    "commune": new.commune_code,
                    "village": new.village,
                    "question": new.question,
                    "options": list(new.options),
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
        self, commune_code: str, channel: str | None = None, user_id: str | None = None
    ) -> list[tuple[Poll, int | None]]:
        """The polls of the commune someone may see (the commune's, and their village's — as
        village_of finds it), the newest first, each with the position of the option they
        voted for (if they did): one statement. Without a person, the commune's own."""
        params = {"commune": commune_code, "v_channel": channel, "v_user": user_id}
        async with self._db.read() as conn:
            rows = (await conn.execute(_FOR_PERSON, params)).all()
        found = []
        for poll_id, option_id in rows:
            poll = await self.get(poll_id)
            if poll is not None:
                found.append((poll, _position(poll, option_id)))
        return found

    async def village_of(self, channel: str, user_id: str, commune_code: str) -> str | None:
        """The village someone said they live in: that of their latest pledge in the commune."""
        async with self._db.read() as conn:
            params = {"channel": channel, "user_id": user_id, "commune": commune_code}
            return (await conn.execute(_VILLAGE_OF, params)).scalar()

    async def vote(
        self, poll: Poll, position: int, channel: str, user_id: str, *, counted: bool = False
    ) -> tuple[Outcome, Results | None]:
        """One vote per person and poll: recorded, changed to another option, the same again
        (a replay: nothing changes) — or refused once the poll has closed; with the results
        after it when `counted` (or when closed), in the same transaction.

        The voter's village (of their latest pledge, see village_of) is stored with the vote by
        the same statement. Whether the poll is open is read by the write itself (INSERT …
        SELECT … WHERE open; on PostgreSQL FOR SHARE, so a close waits for the vote, and a vote
        after a close sees it), never taken from memory. Votes that arrive while a write is
        under way share the next transaction (group commit, as UserStore's saves), and a poll
        voted in several times in it is counted once."""
        params = {
            "v_poll": poll.id,
            "v_channel": channel,
            "v_user": user_id,
            "v_option": poll.option_ids[position],
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
                    outcomes = [await _cast(conn, ballot.params) for ballot in batch]
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

    async def choice_of(self, poll: Poll, channel: str, user_id: str) -> int | None:
        """The position of the option someone voted for, if they did."""
        voter = {"v_poll": poll.id, "v_channel": channel, "v_user": user_id}
        async with self._db.read() as conn:
            return _position(poll, (await conn.execute(_MY_VOTE, voter)).scalar())

    async def results(self, poll: Poll) -> Results:
        """Counts per option, by village with small groups merged (see merge_small), and the
        scope's subscribers for the turnout (counted at most `turnout_seconds` ago)."""
        async with self._db.read() as conn:
            return await self._results(conn, poll)

    async def _results(self, conn: AsyncConnection, poll: Poll, *, fresh: bool = False) -> Results:
        key = (poll.commune_code, poll.village)
        subscribers: int | None = None if fresh else self._subscribers.get(key)
        if subscribers is None:
            subscribers = await _subscribers(conn, poll)
            self._subscribers.put(key, subscribers)
        return await _counts(conn, poll, subscribers)

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
        """The commune's polls (its own and its villages') opened or closed since then (as a
        digest's other sections, up to now)."""
        p = polls
        since = since.astimezone(UTC)
        opened = p.c.created_at >= since
        closed = p.c.closed_at.is_not(None) & (p.c.closed_at >= since)
        async with self._db.read() as conn:
            rows = (
                await conn.execute(
                    select(p.c.id, closed.label("closed"))
                    .where(p.c.commune_code == commune_code, or_(opened, closed))
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
                                select(func.count()).where(poll_votes.c.poll_id == poll.id)
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
    options = (await conn.execute(_GET_OPTIONS, {"poll_id": poll_id})).all()
    return _poll(row, options)


async def _cast(conn: AsyncConnection, params: dict[str, Any]) -> Outcome:
    """One vote's statements: the voter's earlier option, then the upsert that says whether the
    poll was open (a row back) or not (none)."""
    earlier = (await conn.execute(_MY_VOTE, params)).scalar()
    if (await conn.execute(_VOTE[conn.dialect.name], params)).first() is None:
        return "closed"
    if earlier is None:
        return "recorded"
    return "same" if earlier == params["v_option"] else "changed"


def _position(poll: Poll, option_id: int | None) -> int | None:
    return poll.option_ids.index(option_id) if option_id in poll.option_ids else None


async def _subscribers(conn: AsyncConnection, poll: Poll) -> int:
    if poll.village is None:
        counted = await conn.execute(_SUBSCRIBERS, {"commune": poll.commune_code})
    else:
        counted = await conn.execute(select(func.count()).where(*_in_scope(poll)))
    return int(counted.scalar_one())


async def _counts(conn: AsyncConnection, poll: Poll, subscribers: int) -> Results:
    rows = (await conn.execute(_COUNTS, {"poll_id": poll.id})).all()
    width = len(poll.option_ids)
    counts = [0] * width
    groups: dict[str | None, list[int]] = {}
    for village, option_id, n in rows:
        position = poll.option_ids.index(option_id)
        counts[position] += int(n)
        groups.setdefault(village, [0] * width)[position] += int(n)
    # A village poll has one village: no breakdown to show.
    breakdown = merge_small(groups) if poll.village is None else []
    return Results(tuple(counts), tuple(breakdown), subscribers)


def _poll(row: Any, options: Sequence[Any]) -> Poll:
    return Poll(
        row.id,
        row.commune_code,
        row.village,
        row.question,
        tuple(o.text for o in options),
        tuple(o.id for o in options),
        row.results,
        as_utc(row.closes_at),
        row.status,
    )


# Built once: SQLAlchemy would otherwise make each one's cache key again at every vote.
_GET = select(polls).where(polls.c.id == bindparam("poll_id"))
_GET_OPTIONS = (
    select(poll_options.c.id, poll_options.c.text)
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
_VOTER_IS = (poll_votes.c.channel == bindparam("v_channel")) & (
    poll_votes.c.user_id == bindparam("v_user")
)
_VOTER = (poll_votes.c.poll_id == bindparam("v_poll")) & _VOTER_IS
_MY_VOTE = select(poll_votes.c.option_id).where(_VOTER)
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
_FOR_PERSON = (
    select(polls.c.id, poll_votes.c.option_id)
    .select_from(polls.outerjoin(poll_votes, (poll_votes.c.poll_id == polls.c.id) & _VOTER_IS))
    .where(
        polls.c.commune_code == bindparam("commune"),
        or_(polls.c.village.is_(None), polls.c.village == _VOTER_VILLAGE),
    )
    .order_by(polls.c.id.desc())
    .limit(10)
)
_WHEN = polls.c.closes_at.type  # bound times go through the column's type (UTC, SQLite text)
# The vote's one write: a row only while the poll is open, read by this statement.
_BALLOT = (
    select(
        polls.c.id,
        bindparam("v_option", type_=poll_votes.c.option_id.type),
        bindparam("v_channel", type_=poll_votes.c.channel.type),
        bindparam("v_user", type_=poll_votes.c.user_id.type),
        _VOTER_VILLAGE,
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
_BALLOT_COLUMNS = ["poll_id", "option_id", "channel", "user_id", "village"]
_BALLOT_COLUMNS += ["created_at", "updated_at"]


def _upsert(dialect: Any) -> Any:
    """INSERT … SELECT … ON CONFLICT (voter) DO UPDATE: a changed option moves the vote; the
    same option again touches nothing (updated_at kept). RETURNING says the poll was open."""
    statement = dialect.insert(poll_votes).from_select(_BALLOT_COLUMNS, _BALLOT)
    new = statement.excluded
    same = poll_votes.c.option_id == new.option_id
    return statement.on_conflict_do_update(
        index_elements=[poll_votes.c.poll_id, poll_votes.c.channel, poll_votes.c.user_id],
        set_={
            "option_id": new.option_id,
            "village": new.village,
            "updated_at": case((same, poll_votes.c.updated_at), else_=new.updated_at),
        },
    ).returning(poll_votes.c.id)


_VOTE = {"sqlite": _upsert(sqlite_dialect), "postgresql": _upsert(postgresql)}
_COUNTS = (
    select(poll_votes.c.village, poll_votes.c.option_id, func.count())
    .where(poll_votes.c.poll_id == bindparam("poll_id"))
    .group_by(poll_votes.c.village, poll_votes.c.option_id)
)
_SUBSCRIBERS = select(func.count()).where(
    subscriptions.c.active.is_(True), subscriptions.c.commune_code == bindparam("commune")
)
