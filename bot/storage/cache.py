"""Small caches kept by one process, in step across processes where they can go stale.

`LruCache` holds what never changes once stored (a poll's question and options). `TtlCache`
holds read-mostly query results; each belongs to an area (statuses, campaigns, tallies,
grants). A change bumps the area's row in `cache_versions` in the transaction that makes it
(`bump`); every process compares the versions at most every `CHECK_EVERY` seconds, on the
first read after that, and drops an area's entries when its version moved. So a change made by
another worker or a `chungsuc` command is seen within a second (one indexed read of four rows a
second per process); one made here is seen at once (the store also clears its cache itself).
The TTL stays as a backstop.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage.schema import cache_versions

if TYPE_CHECKING:
    from bot.storage.db import Database

CHECK_EVERY = 1.0  # seconds: the bound on seeing another process's change


class TtlCache:
    """Values are kept `ttl_seconds`; this process's changes show at once (clear()), another
    process's within `CHECK_EVERY` when the cache watches an area of `versions`."""

    def __init__(
        self, ttl_seconds: float, versions: Versions | None = None, area: str = ""
    ) -> None:
        self._ttl = ttl_seconds
        self._items: dict[Hashable, tuple[float, Any]] = {}
        self._versions = versions
        if versions is not None:
            versions.watch(area, self)

    async def fresh(self) -> None:
        """Drop what another process changed since (checked at most every CHECK_EVERY)."""
        if self._versions is not None:
            await self._versions.check()

    def get(self, key: Hashable) -> Any:
        """The value, or None when absent or expired."""
        hit = self._items.get(key)
        if hit is not None and time.monotonic() - hit[0] < self._ttl:
            return hit[1]
        return None

    def __len__(self) -> int:
        """Entries kept, expired ones included until the next clear()."""
        return len(self._items)

    def put(self, key: Hashable, value: Any) -> None:
        self._items[key] = (time.monotonic(), value)

    def clear(self) -> None:
        self._items.clear()


class LruCache:
    """At most `size` values, the least recently used dropped first: for what never changes
    once stored (a poll's question and options), so no other process can make it stale."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()

    def get(self, key: Hashable) -> Any:
        """The value, or None when absent (or dropped)."""
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def __len__(self) -> int:
        return len(self._items)

    def put(self, key: Hashable, value: Any) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)


class Versions:
    """The version of each cached area as this process last read it."""

    def __init__(self, db: Database, every: float = CHECK_EVERY) -> None:
        self._db = db
        self.every = every
        self._seen: dict[str, int] = {}
        self._checked = float("-inf")
        self._caches: dict[str, list[TtlCache]] = {}

    def watch(self, area: str, cache: TtlCache) -> None:
        self._caches.setdefault(area, []).append(cache)

    async def check(self) -> None:
        started = time.monotonic()
        if started - self._checked < self.every:
            return
        self._checked = started
        async with self._db.read() as conn:
            rows = (await conn.execute(_VERSIONS)).all()
        for area, version in rows:
            if self._seen.get(area) != version:
                self._seen[area] = version
                for cache in self._caches.get(area, ()):
                    cache.clear()


_VERSIONS = select(cache_versions.c.area, cache_versions.c.version)


async def bump(conn: AsyncConnection, area: str) -> None:
    """Tell every process that `area` changed: call inside the changing transaction."""
    from bot.storage.db import insert_or

    new = insert_or(conn, cache_versions).values(area=area, version=1)
    await conn.execute(
        new.on_conflict_do_update(
            index_elements=[cache_versions.c.area],
            set_={"version": cache_versions.c.version + 1},
        )
    )
