"""Campaigns and the contribution ledger: pledges, their status, tallies and the audit log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement

from bot.storage.cache import TtlCache, bump
from bot.storage.db import Database, insert_or
from bot.storage.schema import audit_log, campaigns, contributions

KINDS = ("workdays", "land", "money", "materials")
# registered → confirmed → done; or cancelled (by the villager) / rejected (by an official).
REGISTERED, CONFIRMED, DONE, CANCELLED, REJECTED = (
    "registered",
    "confirmed",
    "done",
    "cancelled",
    "rejected",
)
COUNTED = (CONFIRMED, DONE)  # only these reach public totals
TRANSITIONS = {
    CONFIRMED: (REGISTERED,),
    REJECTED: (REGISTERED,),
    DONE: (REGISTERED, CONFIRMED),
    CANCELLED: (REGISTERED,),
}


@dataclass(frozen=True)
class Campaign:
    id: int
    slug: str
    name: str
    description: str | None
    commune_code: str
    villages: tuple[str, ...]
    kinds: tuple[str, ...]
    targets: dict[str, int]
    starts_on: date
    ends_on: date | None
    status: str
    is_sample: bool
    source: str  # "chat" or the file it came from

    def is_open(self, on: date) -> bool:
        """Taking pledges on that day (one that accepts no kind takes none, whatever it says)."""
        return (
            self.status == "open"
            and bool(self.kinds)
            and self.starts_on <= on
            and (self.ends_on is None or on <= self.ends_on)
        )


@dataclass(frozen=True)
class Contribution:
    id: int
    campaign_id: int
    commune_code: str
    village: str | None
    channel: str
    user_id: str
    display_name: str | None
    show_name: bool
    kind: str
    amount: int
    unit: str | None
    description: str | None
    due_on: date | None
    status: str
    reason: str | None
    created_at: datetime

    @property
    def ref(self) -> str:
        """The receipt code a villager can quote: CS-26-00123."""
        return f"CS-{self.created_at.year % 100:02d}-{self.id:05d}"


@dataclass(frozen=True)
class PendingPage:
    """One page of what officials still have to act on, and how many come after it."""

    items: list[Contribution]
    more: int


@dataclass(frozen=True)
class NewContribution:
    """A confirmed draft; `source_key` makes a replayed confirmation a no-op."""

    campaign: Campaign
    village: str | None
    channel: str
    user_id: str
    display_name: str | None
    show_name: bool
    kind: str
    amount: int
    unit: str | None
    description: str | None
    due_on: date | None
    source_key: str


@dataclass
class Tally:
    """Public totals: confirmed (and done) per kind, households, and pending apart."""

    totals: dict[str, int] = field(default_factory=dict)
    materials: dict[tuple[str, str], int] = field(default_factory=dict)  # (unit, what) → n
    households: int = 0
    pending: dict[str, int] = field(default_factory=dict)
    pending_materials: dict[tuple[str, str], int] = field(default_factory=dict)
    pending_count: int = 0


def _campaign(row: Any) -> Campaign:
    return Campaign(
        row.id,
        row.slug,
        row.name,
        row.description,
        row.commune_code,
        tuple(row.villages),
        tuple(row.kinds),
        dict(row.targets),
        row.starts_on,
        row.ends_on,
        row.status,
        row.is_sample,
        row.source,
    )


def _contribution(row: Any) -> Contribution:
    created = row.created_at
    if created.tzinfo is None:  # SQLite hands back naive datetimes
        created = created.replace(tzinfo=UTC)
    return Contribution(
        row.id,
        row.campaign_id,
        row.commune_code,
        row.village,
        row.channel,
        row.user_id,
        row.display_name,
        row.show_name,
        row.kind,
        row.amount,
        row.unit,
        row.description,
        row.due_on,
        row.status,
        row.reason,
        created,
    )


def parse_ref(text: str) -> int | None:
    """CS-26-00123 → 123 (the year part is for people)."""
    parts = text.strip().upper().split("-")
    if len(parts) == 3 and parts[0] == "CS" and parts[2].isdigit():
        return int(parts[2])
    return None


# Statements built once: executing one with new parameters skips SQLAlchemy's per-call
# construction and cache-key work (these run at every pledge and every official action).
_AUDIT = insert(audit_log)
_ADD = insert(contributions).returning(contributions)
_GET = select(contributions).where(contributions.c.id == bindparam("c_id"))
_MOVE = (
    update(contributions)
    .where(
        contributions.c.id == bindparam("c_id"),
        contributions.c.status.in_(bindparam("allowed", expanding=True)),
    )
    .values(status=bindparam("to"), reason=bindparam("why"), updated_at=bindparam("now"))
    .returning(contributions)
)
_MOVE_IN = _MOVE.where(contributions.c.commune_code.in_(bindparam("communes", expanding=True)))
# The status a move starts from, read in the move's transaction: SQLite's BEGIN IMMEDIATE
# already keeps other writers out until the commit, and on PostgreSQL FOR UPDATE does.
_STATUS_NOW = (
    select(contributions.c.status).where(contributions.c.id == bindparam("c_id")).with_for_update()
)


async def audit(
    conn: AsyncConnection,
    actor: str,
    action: str,
    entity: str,
    entity_id: object,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    at: datetime,
) -> None:
    await conn.execute(
        _AUDIT,
        {
            "actor": actor,
            "action": action,
            "entity": entity,
            "entity_id": str(entity_id),
            "before": before,
            "after": after,
            "at": at,
        },
    )


class CampaignStore:
    """Campaigns change rarely and are read at every pledge step: all are kept in memory,
    reloaded after a save here or after `ttl_seconds` (a save by another process)."""

    def __init__(self, db: Database, ttl_seconds: float = 30.0) -> None:
        self._db = db
        self._cache = TtlCache(ttl_seconds, db.versions, "campaigns")

    async def _campaigns(self) -> dict[int, Campaign]:
        await self._cache.fresh()
        loaded: dict[int, Campaign] | None = self._cache.get("all")
        if loaded is None:
            async with self._db.read() as conn:
                rows = await conn.execute(
                    select(campaigns).order_by(campaigns.c.starts_on.desc(), campaigns.c.id)
                )
                loaded = {row.id: _campaign(row) for row in rows}
            self._cache.put("all", loaded)
        return loaded

    async def open_in(self, commune_code: str, on: date) -> list[Campaign]:
        return [c for c in await self.in_commune(commune_code) if c.is_open(on)]

    async def get(self, campaign_id: int) -> Campaign | None:
        return (await self._campaigns()).get(campaign_id)

    async def by_slug(self, slug: str) -> Campaign | None:
        return next((c for c in (await self._campaigns()).values() if c.slug == slug), None)

    async def in_commune(self, commune_code: str) -> list[Campaign]:
        return [c for c in (await self._campaigns()).values() if c.commune_code == commune_code]

    async def save(self, values: dict[str, Any], actor: str) -> tuple[Campaign, bool]:
        """Create a campaign, or update the one with the same slug; audited.

        Made in one statement (ON CONFLICT DO NOTHING): two saves of a new slug at once make
        one campaign, and the second finds it. An existing one is read FOR UPDATE, so two
        updates take turns (SQLite's one writer does this already; PostgreSQL needs the lock).
        """
        async with self._db.write() as conn:
            new = insert_or(conn, campaigns).values(
                **values, created_by=actor, created_at=self._db.clock.utcnow()
            )
            new = new.on_conflict_do_nothing(index_elements=[campaigns.c.slug])
            made = (await conn.execute(new.returning(campaigns.c.id))).scalar()
            old = None
            if made is None:
                mine = select(campaigns).where(campaigns.c.slug == values["slug"])
                old = (await conn.execute(mine.with_for_update())).one()
            if old is None:
                campaign_id = int(made)
                await audit(
                    conn,
                    actor,
                    "campaign.create",
                    "campaign",
                    campaign_id,
                    None,
                    _jsonable(values),
                    self._db.clock.utcnow(),
                )
            else:
                campaign_id = old.id
                before = {k: getattr(old, k) for k in values}
                if before == values:
                    return _campaign(old), False
                await conn.execute(
                    update(campaigns).where(campaigns.c.id == campaign_id).values(**values)
                )
                await audit(
                    conn,
                    actor,
                    "campaign.update",
                    "campaign",
                    campaign_id,
                    _jsonable(before),
                    _jsonable(values),
                    self._db.clock.utcnow(),
                )
            row = (await conn.execute(select(campaigns).where(campaigns.c.id == campaign_id))).one()
            await bump(conn, "campaigns")
        self._cache.clear()  # read again on next use
        return _campaign(row), True


class ContributionStore:
    """The ledger. Tallies are read on every status card, so they are kept for `ttl_seconds`
    and dropped at once when this process records or changes a contribution."""

    def __init__(self, db: Database, ttl_seconds: float = 30.0) -> None:
        self._db = db
        self._tallies = TtlCache(ttl_seconds, db.versions, "tallies")

    async def add(self, new: NewContribution) -> tuple[Contribution, bool]:
        """Record a confirmed pledge once: a replay returns the first one and False."""
        now = self._db.clock.utcnow()
        try:
            async with self._db.write() as conn:
                result = await conn.execute(
                    _ADD,
                    {
                        "campaign_id": new.campaign.id,
                        "commune_code": new.campaign.commune_code,
                        "village": new.village,
                        "channel": new.channel,
                        "user_id": new.user_id,
                        "display_name": new.display_name,
                        "show_name": new.show_name,
                        "kind": new.kind,
                        "amount": new.amount,
                        "unit": new.unit,
                        "description": new.description,
                        "due_on": new.due_on,
                        "status": REGISTERED,
                        "source_key": new.source_key,
                        "created_at": now,
                        "updated_at": now,
                    },
                )
                added = _contribution(result.one())
                await bump(conn, "tallies")
            self._tallies.clear()
            return added, True
        except IntegrityError:
            earlier = await self.by_source(new.channel, new.user_id, new.source_key)
            if earlier is None:
                raise
            return earlier, False

    async def by_source(self, channel: str, user_id: str, key: str) -> Contribution | None:
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    select(contributions).where(
                        contributions.c.channel == channel,
                        contributions.c.user_id == user_id,
                        contributions.c.source_key == key,
                    )
                )
            ).first()
        return _contribution(row) if row else None

    async def get(self, contribution_id: int) -> Contribution | None:
        async with self._db.read() as conn:
            row = (await conn.execute(_GET, {"c_id": contribution_id})).first()
        return _contribution(row) if row else None

    async def of_user(self, channel: str, user_id: str, limit: int = 20) -> list[Contribution]:
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(contributions)
                .where(contributions.c.channel == channel, contributions.c.user_id == user_id)
                .order_by(contributions.c.id.desc())
                .limit(limit)
            )
            return [_contribution(r) for r in rows]

    async def pending_in(
        self,
        commune_codes: Sequence[str],
        limit: int = 5,
        after: tuple[str, int] | None = None,
    ) -> PendingPage:
        """Contributions an official still has to act on: new pledges (registered) first, then
        the confirmed ones waiting to be done, oldest first in each. `after` is the (status,
        id) of the last one shown: a page starts where the last one ended, not at an offset,
        so contributions handled in the meantime do not make the next page skip any."""
        c = contributions
        rest: list[ColumnElement[bool]] = [
            c.c.commune_code.in_(commune_codes),
            c.c.status.in_((REGISTERED, CONFIRMED)),
        ]
        if after is not None:
            status, last_id = after
            if status == REGISTERED:
                rest.append(
                    or_(and_(c.c.status == REGISTERED, c.c.id > last_id), c.c.status == CONFIRMED)
                )
            else:
                rest.append(and_(c.c.status == CONFIRMED, c.c.id > last_id))
        new_first = case((c.c.status == REGISTERED, 0), else_=1)
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(c).where(*rest).order_by(new_first, c.c.id).limit(limit)
            )
            items = [_contribution(r) for r in rows]
            counted = await conn.execute(select(func.count()).select_from(c).where(*rest))
        return PendingPage(items, int(counted.scalar_one()) - len(items))

    async def move(
        self,
        contribution_id: int,
        to: str,
        actor: str,
        reason: str | None = None,
        notify: Any = None,
        communes: Sequence[str] | None = None,
    ) -> Contribution | None:
        """Change the status if it is still in an allowed state (and, given `communes`, the
        contribution is in one of them); None when not — someone else got there first (two
        officials pressing at once end in one confirmation), or it is not the actor's to change.
        `notify`, a coroutine function taking the connection and the contribution, runs in the
        same transaction, so the villager's notice is recorded exactly when the change is."""
        allowed = TRANSITIONS[to]
        params: dict[str, Any] = {
            "c_id": contribution_id,
            "allowed": list(allowed),
            "to": to,
            "why": reason,
            "now": self._db.clock.utcnow(),
        }
        async with self._db.write() as conn:
            # RETURNING gives the row as changed, and a subquery in it sees the new row too, so
            # the prior status comes from the UPDATE's own condition when only one state may
            # precede `to`, and otherwise from a read in this transaction before the UPDATE
            # (which stays the one compare-and-set: of two officials, one moves it).
            prior = (
                allowed[0]
                if len(allowed) == 1
                else (await conn.execute(_STATUS_NOW, {"c_id": contribution_id})).scalar()
            )
            if communes is None:
                result = await conn.execute(_MOVE, params)
            else:
                result = await conn.execute(_MOVE_IN, params | {"communes": list(communes)})
            row = result.first()
            if row is None:
                return None
            changed = _contribution(row)
            before = {"status": prior}
            await audit(
                conn,
                actor,
                f"contribution.{to}",
                "contribution",
                contribution_id,
                before,
                {"status": to, "reason": reason},
                params["now"],
            )
            if notify is not None:
                await notify(conn, changed)
            await bump(conn, "tallies")
        self._tallies.clear()
        return changed

    async def tally(
        self,
        campaign_id: int | None = None,
        commune_code: str | None = None,
        village: str | None = None,
        campaign_slugs: tuple[str, ...] | None = None,
    ) -> Tally:
        """Public totals for a campaign, a commune, a village, or several campaigns together
        (`campaign_slugs`: those funding a project; a household giving to two counts once)."""
        key = (campaign_id, commune_code, village, campaign_slugs)
        await self._tallies.fresh()
        tally: Tally | None = self._tallies.get(key)
        if tally is None:
            tally = await self._count(campaign_id, commune_code, village, campaign_slugs)
            self._tallies.put(key, tally)
        return tally

    async def _count(
        self,
        campaign_id: int | None,
        commune_code: str | None,
        village: str | None,
        campaign_slugs: tuple[str, ...] | None = None,
    ) -> Tally:
        c = contributions
        scope = []
        if campaign_id is not None:
            scope.append(c.c.campaign_id == campaign_id)
        if campaign_slugs is not None:
            funded = select(campaigns.c.id).where(campaigns.c.slug.in_(list(campaign_slugs)))
            scope.append(c.c.campaign_id.in_(funded))
        if commune_code is not None:
            scope.append(c.c.commune_code == commune_code)
        if village is not None:
            scope.append(c.c.village == village)
        tally = Tally()
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(
                    c.c.status,
                    c.c.kind,
                    c.c.unit,
                    c.c.description,
                    func.sum(c.c.amount),
                    func.count(),
                )
                .where(and_(*scope), c.c.status.in_((*COUNTED, REGISTERED)))
                .group_by(c.c.status, c.c.kind, c.c.unit, c.c.description)
            )
            # Groups come in no promised order (SQLite sorts them, PostgreSQL hashes): sorted
            # here, by code point, so the tally reads the same on both whatever the collation.
            groups = sorted(rows, key=lambda r: (r[0], r[1], r[2] or "", r[3] or ""))
            for status, kind, unit, what, total, count in groups:
                if status in COUNTED:
                    tally.totals[kind] = tally.totals.get(kind, 0) + int(total)
                    if kind == "materials":
                        key = (unit or "", what or "")
                        tally.materials[key] = tally.materials.get(key, 0) + int(total)
                else:
                    tally.pending[kind] = tally.pending.get(kind, 0) + int(total)
                    tally.pending_count += int(count)
                    if kind == "materials":
                        key = (unit or "", what or "")
                        pending = tally.pending_materials
                        pending[key] = pending.get(key, 0) + int(total)
            households = (
                select(c.c.channel, c.c.user_id)
                .where(and_(*scope), c.c.status.in_(COUNTED))
                .distinct()
                .subquery()
            )
            tally.households = int(
                (await conn.execute(select(func.count()).select_from(households))).scalar_one()
            )
        return tally

    async def export(
        self,
        commune_codes: Sequence[str] | None,
        since: datetime | None = None,
        before: datetime | None = None,
    ) -> list[Any]:
        """Rows for the commune's records, joined with their campaign; created from `since`
        and before `before` (instants: the caller decides whose days they are)."""
        c = contributions
        query = (
            select(c, campaigns.c.name.label("campaign_name"))
            .join(campaigns, campaigns.c.id == c.c.campaign_id)
            .order_by(c.c.id)
        )
        if commune_codes:
            query = query.where(c.c.commune_code.in_(commune_codes))
        # Compared in UTC, as stored: SQLite keeps the UTC wall time and no zone.
        if since is not None:
            query = query.where(c.c.created_at >= since.astimezone(UTC))
        if before is not None:
            query = query.where(c.c.created_at < before.astimezone(UTC))
        async with self._db.read() as conn:
            return list((await conn.execute(query)).all())


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in values.items()}
