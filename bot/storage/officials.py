"""Who may do what where: roles granted to a channel identity for an area."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, select

from bot.storage.cache import TtlCache, bump
from bot.storage.db import Database, insert_or
from bot.storage.schema import officials

ROLES = ("commune_official", "province_official", "admin")
WIDE_ROLES = ("admin", "province_official")  # they act for every commune of the province
# A principal is "<channel>:<user id>", as the dispatcher sees an official's messages. The
# channels are the adapters' CHANNEL names; a grant to anything else could never match.
USER_IDS = {
    "telegram": re.compile(r"[1-9][0-9]{0,15}"),  # a person's numeric id (groups are negative)
    "zalo": re.compile(r"[A-Za-z0-9]{1,64}"),  # Zalo Bot Platform
    "zalo_oa": re.compile(r"[0-9]{1,32}"),  # Zalo Official Account: numeric
    "terminal": re.compile(r"[A-Za-z0-9_.@-]{1,64}"),  # `chungsuc chat --user`
}
USER_ID_EXAMPLES = {
    "telegram": "123456789",
    "zalo": "a1b2c3d4e5f6",
    "zalo_oa": "8842156427713412345",
    "terminal": "local",
}


@dataclass(frozen=True)
class Grant:
    principal: str  # "telegram:123456789"
    role: str
    area_code: str
    granted_by: str
    granted_at: datetime


@dataclass(frozen=True)
class Official:
    """Someone acting as an official here: the widest role their grants give, and where."""

    principal: str  # "telegram:123456789"
    role: str  # admin | province_official | commune_official
    communes: tuple[str, ...]  # the communes they act for (all of them for the province)
    province: str

    @property
    def whole_province(self) -> bool:
        return self.role in WIDE_ROLES

    def covers(self, commune_code: str) -> bool:
        return commune_code in self.communes


_GRANTS_OF = (
    select(officials)
    .where(officials.c.principal == bindparam("principal"))
    .order_by(officials.c.principal, officials.c.role)
)
_MAX_CACHED = 10_000  # principals; the cache starts over beyond that


def _grant(row: Any) -> Grant:
    return Grant(row.principal, row.role, row.area_code, row.granted_by, row.granted_at)


class OfficialStore:
    """Grants, read at every official action. One principal's grants are kept `ttl_seconds`:
    a grant or revoke here shows at once, one made by another process (`chungsuc admin`)
    within that time."""

    def __init__(self, db: Database, ttl_seconds: float = 10.0) -> None:
        self._db = db
        self._cache = TtlCache(ttl_seconds, db.versions, "grants")

    async def grant(self, principal: str, role: str, area_code: str, granted_by: str) -> bool:
        """Grant a role; False when it was already granted."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
        try:
            async with self._db.write() as conn:
                new = insert_or(conn, officials).values(
                    principal=principal,
                    role=role,
                    area_code=area_code,
                    granted_by=granted_by,
                    granted_at=self._db.clock.utcnow(),
                )
                # A grant made at the same time elsewhere is no error: the first one stands.
                new = new.on_conflict_do_nothing(
                    index_elements=[officials.c.principal, officials.c.role, officials.c.area_code]
                )
                made = (await conn.execute(new.returning(officials.c.id))).first()
                if made is not None:
                    await bump(conn, "grants")
        finally:
            self._cache.clear()
        return made is not None

    async def revoke(self, principal: str, role: str, area_code: str) -> bool:
        async with self._db.write() as conn:
            result = await conn.execute(
                delete(officials).where(
                    officials.c.principal == principal,
                    officials.c.role == role,
                    officials.c.area_code == area_code,
                )
            )
            if result.rowcount:
                await bump(conn, "grants")
        self._cache.clear()
        return bool(result.rowcount)

    async def grants(self, principal: str | None = None) -> list[Grant]:
        """One principal's grants (cached), or everyone's."""
        if not principal:
            query = select(officials).order_by(officials.c.principal, officials.c.role)
            async with self._db.read() as conn:
                return [_grant(r) for r in await conn.execute(query)]
        await self._cache.fresh()
        cached: list[Grant] | None = self._cache.get(principal)
        if cached is None:
            async with self._db.read() as conn:
                rows = await conn.execute(_GRANTS_OF, {"principal": principal})
                cached = [_grant(r) for r in rows]
            if len(self._cache) >= _MAX_CACHED:
                self._cache.clear()
            self._cache.put(principal, cached)
        return list(cached)

    async def official(
        self, principal: str, province_code: str, communes: list[str]
    ) -> Official | None:
        """The principal as an official of this province's `communes` (all of them for an
        admin or the province's official), from one read of the cached grants; None when no
        grant covers any of them."""
        grants = await self.grants(principal)
        roles = {g.role for g in grants if g.role == "admin" or g.area_code == province_code}
        wide = next((r for r in WIDE_ROLES if r in roles), None)
        if wide is not None:
            return Official(principal, wide, tuple(communes), province_code)
        mine = tuple(
            g.area_code for g in grants if g.role == "commune_official" and g.area_code in communes
        )
        return Official(principal, "commune_official", mine, province_code) if mine else None

    async def may(self, principal: str, role: str, area_code: str, province_code: str) -> bool:
        """Whether the principal holds the role for the area, or a wider grant covers it:
        an admin may do anything; a province official what any official of the province may."""
        grants = await self.grants(principal)
        return any(
            g.role == "admin"
            or (g.role == role and g.area_code == area_code)
            or (g.role == "province_official" and g.area_code == province_code and role != "admin")
            for g in grants
        )
