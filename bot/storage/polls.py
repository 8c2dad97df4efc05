"""Dân bàn: polls, their options and votes — one per person and poll, changeable until it closes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement

from bot.storage.contributions import audit
from bot.storage.db import Database, as_utc
from bot.storage.schema import contributions, poll_options, poll_votes, polls, subscriptions

MIN_GROUP = 5  # a village with fewer voters is shown inside "khác": no vote can be guessed
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
    def __init__(self, db: Database) -> None:
        self._db = db

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
        async with self._db.read() as conn:
            return await _get(conn, poll_id)

    async def for_person(
        self, commune_code: str, village: str | None, limit: int = 10
    ) -> list[Poll]:
        """The polls of the commune someone may see (the commune's, and their village's), the
        newest first."""
        scope: ColumnElement[bool] = polls.c.village.is_(None)
        if village is not None:
            scope = or_(scope, polls.c.village == village)
        async with self._db.read() as conn:
            ids = (
                await conn.execute(
                    select(polls.c.id)
                    .where(polls.c.commune_code == commune_code, scope)
                    .order_by(polls.c.id.desc())
                    .limit(limit)
                )
            ).scalars()
            wanted = list(ids)
        found = [await self.get(i) for i in wanted]
        return [p for p in found if p is not None]

    async def village_of(self, channel: str, user_id: str, commune_code: str) -> str | None:
        """The village someone said they live in: that of their latest pledge in the commune."""
        async with self._db.read() as conn:
            params = {"channel": channel, "user_id": user_id, "commune": commune_code}
            return (await conn.execute(_VILLAGE_OF, params)).scalar()

    async def vote(
        self, poll: Poll, position: int, channel: str, user_id: str, village: str | None
    ) -> Outcome:
        """One vote per person and poll: recorded, changed to another option, the same again
        (a replay: nothing changes) — or refused once the poll has closed."""
        now = self._db.clock.utcnow()
        option_id = poll.option_ids[position]
        voter = {"v_poll": poll.id, "v_channel": channel, "v_user": user_id}
        try:
            async with self._db.write() as conn:
                # Read in the vote's transaction: a poll closed meanwhile takes no vote. FOR SHARE
                # makes a close wait for this vote on PostgreSQL (SQLite has one writer anyway).
                row = (await conn.execute(_STATUS, {"poll_id": poll.id})).one()
                if row.status != "open" or as_utc(row.closes_at) <= now:
                    return "closed"
                earlier = (await conn.execute(_MY_VOTE, voter)).scalar()
                if earlier == option_id:
                    return "same"
                change = voter | {"v_option": option_id, "v_village": village, "v_now": now}
                if earlier is not None:
                    await conn.execute(_CHANGE_VOTE, change)
                    return "changed"
                await conn.execute(_ADD_VOTE, change)
                return "recorded"
        except IntegrityError:  # the same vote arrived twice at once: the first one stands
            return "same"

    async def choice_of(self, poll: Poll, channel: str, user_id: str) -> int | None:
        """The position of the option someone voted for, if they did."""
        async with self._db.read() as conn:
            option_id = (
                await conn.execute(
                    select(poll_votes.c.option_id).where(
                        poll_votes.c.poll_id == poll.id,
                        poll_votes.c.channel == channel,
                        poll_votes.c.user_id == user_id,
                    )
                )
            ).scalar()
        return poll.option_ids.index(option_id) if option_id in poll.option_ids else None

    async def results(self, poll: Poll) -> Results:
        """Counts per option, by village with small groups merged (see merge_small), and the
        scope's subscribers for the turnout."""
        async with self._db.read() as conn:
            return await _results(conn, poll)

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
            closed.append((poll, await _results(conn, poll)))
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
                out.append((poll, await _results(conn, poll)))
        return out


async def _get(conn: AsyncConnection, poll_id: int) -> Poll | None:
    row = (await conn.execute(_GET, {"poll_id": poll_id})).first()
    if row is None:
        return None
    options = (await conn.execute(_GET_OPTIONS, {"poll_id": poll_id})).all()
    return _poll(row, options)


async def _results(conn: AsyncConnection, poll: Poll) -> Results:
    rows = (await conn.execute(_COUNTS, {"poll_id": poll.id})).all()
    if poll.village is None:
        counted = await conn.execute(_SUBSCRIBERS, {"commune": poll.commune_code})
    else:
        counted = await conn.execute(select(func.count()).where(*_in_scope(poll)))
    subscribers = int(counted.scalar_one())
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


# Built once: each vote reads the poll, the voter's village, their earlier vote and the counts.
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
_STATUS = (
    select(polls.c.status, polls.c.closes_at)
    .where(polls.c.id == bindparam("poll_id"))
    .with_for_update(read=True)
)
_VOTER = (
    (poll_votes.c.poll_id == bindparam("v_poll"))
    & (poll_votes.c.channel == bindparam("v_channel"))
    & (poll_votes.c.user_id == bindparam("v_user"))
)
_MY_VOTE = select(poll_votes.c.option_id).where(_VOTER)
_CHANGE_VOTE = (
    update(poll_votes)
    .where(_VOTER)
    .values(
        option_id=bindparam("v_option"),
        village=bindparam("v_village"),
        updated_at=bindparam("v_now"),
    )
)
_ADD_VOTE = insert(poll_votes).values(
    poll_id=bindparam("v_poll"),
    option_id=bindparam("v_option"),
    channel=bindparam("v_channel"),
    user_id=bindparam("v_user"),
    village=bindparam("v_village"),
    created_at=bindparam("v_now"),
    updated_at=bindparam("v_now"),
)
_COUNTS = (
    select(poll_votes.c.village, poll_votes.c.option_id, func.count())
    .where(poll_votes.c.poll_id == bindparam("poll_id"))
    .group_by(poll_votes.c.village, poll_votes.c.option_id)
)
_SUBSCRIBERS = select(func.count()).where(
    subscriptions.c.active.is_(True), subscriptions.c.commune_code == bindparam("commune")
)
