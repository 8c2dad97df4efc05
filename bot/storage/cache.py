"""A small time-limited cache for read-mostly query results kept by one process."""

from __future__ import annotations

import time
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
