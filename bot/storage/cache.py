"""Small caches kept by one process: time-limited for read-mostly query results, bounded for
what never changes."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any


class TtlCache:
    """Values are kept `ttl_seconds`; another process's changes show up once they expire,
    this process's at once when it calls clear()."""

    def __init__(self, ttl_seconds: float) -> None:
        self._ttl = ttl_seconds
        self._items: dict[Hashable, tuple[float, Any]] = {}

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
