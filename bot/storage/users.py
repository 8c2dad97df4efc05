"""User profiles and conversation state, keyed by (channel, user id)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from bot.storage.db import Database
from bot.storage.schema import users


@dataclass
class UserProfile:
    channel: str
    user_id: str
    locale: str
    commune_code: str | None = None
    state: str | None = None  # the conversation step, e.g. "onboarding:commune"
    state_data: dict[str, Any] = field(default_factory=dict)
    offered: list[str] = field(default_factory=list)  # see schema.users.offered
    is_new: bool = False

    def enter(self, state: str, **data: Any) -> None:
        self.state, self.state_data = state, data

    def leave(self) -> None:
        self.state, self.state_data = None, {}

    def snapshot(self) -> UserProfile:
        return replace(self, state_data=dict(self.state_data), offered=list(self.offered))


_FIELDS = ("locale", "commune_code", "state", "state_data", "offered")


class UserStore:
    """Reads profiles through a small in-memory cache; every change is written at once.

    The cache is safe because one process owns a channel's users and the dispatcher handles
    one update per user at a time.
    """

    def __init__(self, db: Database, max_cached: int = 50_000) -> None:
        self._db = db
        self._cache: dict[tuple[str, str], UserProfile] = {}
        self._max = max_cached

    async def load(self, channel: str, user_id: str, default_locale: str) -> UserProfile:
        cached = self._cache.get((channel, user_id))
        if cached is not None:
            return cached.snapshot()
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    select(users).where(users.c.channel == channel, users.c.user_id == user_id)
                )
            ).first()
        if row is None:
            return UserProfile(channel, user_id, default_locale, is_new=True)
        profile = UserProfile(
            channel,
            user_id,
            row.locale,
            row.commune_code,
            row.state,
            dict(row.state_data or {}),
            list(row.offered or []),
        )
        self._remember(profile)
        return profile.snapshot()

    async def save(self, before: UserProfile, after: UserProfile) -> None:
        """Write the profile if anything changed since `before`."""
        if not after.is_new and all(getattr(before, f) == getattr(after, f) for f in _FIELDS):
            return
        now = datetime.now(UTC)
        values = {f: getattr(after, f) for f in _FIELDS} | {"updated_at": now}
        async with self._db.write() as conn:
            if after.is_new:
                try:
                    async with conn.begin_nested():
                        await conn.execute(
                            users.insert().values(
                                channel=after.channel,
                                user_id=after.user_id,
                                created_at=now,
                                **values,
                            )
                        )
                except IntegrityError:
                    # Another process created the row first; ours is the newer state.
                    await self._update(conn, after, values)
            else:
                await self._update(conn, after, values)
        after.is_new = False
        self._remember(after.snapshot())

    @staticmethod
    async def _update(conn: Any, profile: UserProfile, values: dict[str, Any]) -> None:
        await conn.execute(
            update(users)
            .where(users.c.channel == profile.channel, users.c.user_id == profile.user_id)
            .values(**values)
        )

    def _remember(self, profile: UserProfile) -> None:
        if len(self._cache) >= self._max:
            self._cache.pop(next(iter(self._cache)))
        self._cache[(profile.channel, profile.user_id)] = profile

    def forget(self) -> None:
        self._cache.clear()
