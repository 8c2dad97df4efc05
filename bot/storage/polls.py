"""Dân bàn: polls, their options and votes — one per person and poll, changeable until it closes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import ColumnElement

from bot.storage.contributions import audit
from bot.storage.db import Database, as_utc
from bot.storage.schema import contributions, poll_options, poll_votes, polls

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

    @property
    def total(self) -> int:
        return sum(self.counts)


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
            row = (await conn.execute(select(polls).where(polls.c.id == poll_id))).first()
            if row is None:
                return None
            options = (
                await conn.execute(
                    select(poll_options.c.id, poll_options.c.text)
                    .where(poll_options.c.poll_id == poll_id)
                    .order_by(poll_options.c.position)
                )
            ).all()
        return _poll(row, options)

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
        c = contributions
        async with self._db.read() as conn:
            return (
                await conn.execute(
                    select(c.c.village)
                    .where(
                        c.c.channel == channel,
                        c.c.user_id == user_id,
                        c.c.commune_code == commune_code,
                        c.c.village.is_not(None),
                    )
                    .order_by(c.c.id.desc())
                    .limit(1)
                )
            ).scalar()

    async def vote(
        self, poll: Poll, position: int, channel: str, user_id: str, village: str | None
    ) -> Outcome:
        """One vote per person and poll: recorded, changed to another option, the same again
        (a replay: nothing changes) — or refused once the poll has closed."""
        now = self._db.clock.utcnow()
        option_id = poll.option_ids[position]
        mine = (poll_votes.c.poll_id == poll.id) & (poll_votes.c.channel == channel)
        mine = mine & (poll_votes.c.user_id == user_id)
        try:
            async with self._db.write() as conn:
                # Read in the vote's transaction: a poll closed meanwhile takes no vote. FOR SHARE
                # makes a close wait for this vote on PostgreSQL (SQLite has one writer anyway).
                status = select(polls.c.status, polls.c.closes_at).where(polls.c.id == poll.id)
                row = (await conn.execute(status.with_for_update(read=True))).one()
                if row.status != "open" or as_utc(row.closes_at) <= now:
                    return "closed"
                earlier = (await conn.execute(select(poll_votes.c.option_id).where(mine))).scalar()
                if earlier == option_id:
                    return "same"
                if earlier is not None:
                    await conn.execute(
                        update(poll_votes)
                        .where(mine)
                        .values(option_id=option_id, village=village, updated_at=now)
                    )
                    return "changed"
                await conn.execute(
                    insert(poll_votes).values(
                        poll_id=poll.id,
                        option_id=option_id,
                        channel=channel,
                        user_id=user_id,
                        village=village,
                        created_at=now,
                        updated_at=now,
                    )
                )
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
        """Counts per option, and by village with small groups merged (see merge_small)."""
        v = poll_votes
        async with self._db.read() as conn:
            rows = (
                await conn.execute(
                    select(v.c.village, v.c.option_id, func.count())
                    .where(v.c.poll_id == poll.id)
                    .group_by(v.c.village, v.c.option_id)
                )
            ).all()
        width = len(poll.option_ids)
        counts = [0] * width
        groups: dict[str | None, list[int]] = {}
        for village, option_id, n in rows:
            position = poll.option_ids.index(option_id)
            counts[position] += int(n)
            groups.setdefault(village, [0] * width)[position] += int(n)
        # A village poll has one village: no breakdown to show.
        breakdown = merge_small(groups) if poll.village is None else []
        return Results(tuple(counts), tuple(breakdown))

    async def close_due(self, now: datetime) -> list[Poll]:
        """Close the polls whose time has come; the ones closed here, for their notices."""
        async with self._db.write() as conn:
            ids = list(
                (
                    await conn.execute(
                        update(polls)
                        .where(polls.c.status == "open", polls.c.closes_at <= now.astimezone(UTC))
                        .values(status="closed", closed_at=now)
                        .returning(polls.c.id)
                    )
                ).scalars()
            )
        found = [await self.get(i) for i in ids]
        return [p for p in found if p is not None]


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
